// snout bench engine [--model DIR] [--contexts 512,4096,16384] [--decode N] [--attention METHOD] [--provider P]
//                    [--chunk N] [--no-fuse] [--json]
// How fast does the engine run a real checkpoint end to end? For each context length: prefill tokens/s (chunked
// prompt of that many tokens), decode tokens/s (N greedy tokens after it) and the process's peak RSS so far.
// Contexts beyond the model's trained length are allowed (speed only; the text there is not meaningful).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { attentionConfigArg, attentionFlags, numberArg, parseArgs, providerArg, stringArg } from '../engine/cli/model-args';
import { UserError } from '../engine/errors';
import { loadModel } from '../engine/generate/load';

interface Row {
  context: number;
  prefill_tokens_per_s: number;
  prefill_s: number;
  decode_tokens: number;
  decode_tokens_per_s: number;
  decode_ms_per_token: number;
  peak_rss_mb: number;
}

/** Real code as prompt text: this repository's engine sources, repeated as needed. */
export function promptText(repoRoot: string): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(readFileSync(p, 'utf8'));
    }
  };
  walk(path.join(repoRoot, 'engine'));
  return files.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const cmd = 'bench engine';
  const args = parseArgs(cmd, argv, {
    model: 'value', contexts: 'value', decode: 'value', provider: 'value', chunk: 'value',
    'no-fuse': 'switch', json: 'switch', ...attentionFlags,
  });
  const repoRoot = path.resolve(__dirname, '..');
  const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
  const dir = stringArg(args, 'model') ?? process.env.SNOUT_MODEL ?? path.join(shared, 'models', 'tiny-coder-hf');
  const contexts = (stringArg(args, 'contexts') ?? '512,4096,16384').split(',').map(Number);
  if (contexts.some((n) => !Number.isInteger(n) || n < 2)) throw new UserError(`${cmd}: --contexts must be integers >= 2`);
  const decode = numberArg(cmd, args, 'decode', (x) => Number.isInteger(x) && x > 0, 'a positive integer') ?? 32;
  const chunk = numberArg(cmd, args, 'chunk', (x) => Number.isInteger(x) && x > 0, 'a positive integer');
  const attention = { method: 'dense' as const, ...attentionConfigArg(cmd, args) };
  const method = attention.method;
  const json = args.switches.has('json');

  const model = await loadModel(dir, {
    provider: providerArg(cmd, args),
    contextLimit: Math.max(...contexts) + decode + 1,
    prefillChunk: chunk,
    fuseLayers: !args.switches.has('no-fuse'),
    attention,
  });
  const rows: Row[] = [];
  try {
    const corpus = model.tokenizer.encode(promptText(repoRoot), { addSpecialTokens: false });
    for (const n of contexts) {
      const ids = Array.from({ length: n }, (_, i) => corpus[i % corpus.length]);
      const seq = model.newSequence();
      try {
        const r = await model.generate(seq, { ids, maxTokens: decode, sampling: { temperature: 0, topP: 1, seed: 0 } });
        const rssMb = process.resourceUsage().maxRSS / 1024;
        rows.push({
          context: n,
          prefill_tokens_per_s: round(n / (r.stats.prefillMs / 1000)),
          prefill_s: round(r.stats.prefillMs / 1000, 2),
          decode_tokens: r.stats.decodeTokens,
          decode_tokens_per_s: round(r.stats.decodeTokens / (r.stats.decodeMs / 1000)),
          decode_ms_per_token: round(r.stats.decodeMs / Math.max(1, r.stats.decodeTokens), 2),
          peak_rss_mb: Math.round(rssMb),
        });
        process.stderr.write(`context ${n}: prefill ${rows.at(-1)!.prefill_s} s, decode ${rows.at(-1)!.decode_ms_per_token} ms/token\n`);
      } finally {
        seq.dispose();
      }
    }
  } finally {
    await model.dispose();
  }

  const meta = { model: path.basename(dir), provider: model.provider, attention: method, spec: model.spec };
  if (json) {
    process.stdout.write(JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  } else {
    process.stdout.write(`engine bench: ${meta.model} (${model.spec.numLayers} layers, hidden ${model.spec.hiddenSize}), ` +
      `provider ${meta.provider}, attention ${method}\n`);
    const header = ['context', 'prefill tok/s', 'prefill s', 'decode tok/s', 'ms/token', 'peak RSS MB'];
    const table = rows.map((r) => [r.context, r.prefill_tokens_per_s, r.prefill_s, r.decode_tokens_per_s, r.decode_ms_per_token, r.peak_rss_mb].map(String));
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
    process.stdout.write(line(header) + '\n' + table.map(line).join('\n') + '\n');
  }
  return 0;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
