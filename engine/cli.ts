// `snout <command>`: one small module per command under engine/cli/. User errors print one clear line, never a stack.
import { UserError } from './errors';

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number | void> }>> = {
  logits: () => import('./cli/logits'),
  generate: () => import('./cli/generate'),
  serve: () => import('./cli/serve'),
  bench: () => import('./cli/bench'),
  eval: () => import('./cli/eval'),
  info: () => import('./cli/info'),
};

const usage = `usage: snout <command> [options]
  logits    --model PATH (--prompt TEXT | --ids 1,2,3) [--attention dense|magicpig|topk|quest]
  generate  --model PATH --prompt TEXT --max-tokens N [--greedy | --temperature T --top-p P --seed S] [--json]
  info      --model PATH [--weights auto|f32|int8|int4] [--json]   (what the model is and what it costs)
            PATH: a Hugging Face folder or a .gguf file; --weights and --cache-dir apply to every model command
  serve     --stdio | --http 127.0.0.1:PORT --model PATH [--token-file F]   (or env SNOUT_TOKEN)
  bench     engine|attention|prefix [--json]
  eval      repobench|build|fidelity ...`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || !(name in commands)) {
    process.stderr.write(usage + '\n');
    return name && !['--help', '-h'].includes(name) ? 2 : 0;
  }
  const mod = await commands[name]();
  return (await mod.run(rest)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    if (err instanceof UserError) {
      process.stderr.write(`snout: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`snout: internal error: ${err?.stack ?? err}\n`);
      process.exitCode = 70;
    }
  },
);
