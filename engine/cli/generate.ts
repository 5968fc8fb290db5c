// snout generate --model DIR --prompt TEXT --max-tokens N [--greedy | --temperature T --top-p P --seed S]
//                [--stop S]... [--attention METHOD [--k K --l L --sinks N --window N --dense-layers 0,3 --budget F --min-indexed N]]
//                [--provider P] [--cache-dir DIR] [--json]
// Streams the completion to stdout; with --json a final line {"ids", "text", "stats": {...}} follows. With --cache-dir,
// a prompt of 256+ tokens is kept in DIR/prefix/ and a later run with the same start reads it back
// (stats.disk_cached_tokens).
import { UserError } from '../errors';
import { DiskPrefixCache } from '../generate/disk-prefix-cache';
import { attentionShape, loadModel } from '../generate/load';
import { PrefixCache } from '../generate/prefix-cache';
import { attentionConfigArg, attentionFlags, modelArg, numberArg, parseArgs, providerArg, stringArg, weightArgs, weightFlags } from './model-args';

export async function run(argv: string[]): Promise<number> {
  const cmd = 'generate';
  const args = parseArgs(cmd, argv, {
    model: 'value', prompt: 'value', 'max-tokens': 'value', greedy: 'switch', temperature: 'value', 'top-p': 'value',
    seed: 'value', stop: 'value', provider: 'value', json: 'switch', ...attentionFlags, ...weightFlags,
  });
  const dir = modelArg(cmd, args);
  const prompt = stringArg(args, 'prompt');
  if (prompt === undefined) throw new UserError(`${cmd}: --prompt TEXT is required`);
  const maxTokens = numberArg(cmd, args, 'max-tokens', (x) => Number.isInteger(x) && x >= 0, 'a whole number >= 0') ?? 64;
  const temperature = numberArg(cmd, args, 'temperature', (x) => x >= 0, 'a number >= 0');
  const topP = numberArg(cmd, args, 'top-p', (x) => x > 0 && x <= 1, 'in (0, 1]') ?? 1;
  const seed = numberArg(cmd, args, 'seed', (x) => Number.isInteger(x), 'an integer') ?? 0;
  if (args.switches.has('greedy') && temperature !== undefined && temperature > 0) {
    throw new UserError(`${cmd}: --greedy and --temperature > 0 contradict each other`);
  }
  const attention = attentionConfigArg(cmd, args);
  const json = args.switches.has('json');

  const weights = weightArgs(cmd, args);
  const model = await loadModel(dir, { provider: providerArg(cmd, args), ...weights });
  // The disk tier only where asked for (--cache-dir): a one-off run elsewhere leaves nothing behind.
  const disk = weights.cacheDir ? new DiskPrefixCache(weights.cacheDir, {
    identity: model.kvIdentity, shape: attentionShape(model.spec), attentionFor: (a) => model.attentionFor!(a),
  }, { log: (line) => process.stderr.write(line + '\n') }) : undefined;
  const cache = new PrefixCache(model, Infinity, 1, disk);
  try {
    const ids = model.tokenizer.encode(prompt);
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    const lease = cache.acquire(ids, attention);
    const result = await model.generate(lease.seq, {
      ids,
      maxTokens,
      sampling: { temperature: args.switches.has('greedy') ? 0 : temperature ?? 0, topP, seed },
      stop: args.values.get('stop'),
      attention,
      signal: abort.signal,
      onText: (t) => process.stdout.write(t),
    });
    process.off('SIGINT', onSigint);
    cache.release(lease.seq);
    await disk?.flush();
    process.stdout.write('\n');
    if (json) {
      const s = result.stats;
      process.stdout.write(JSON.stringify({
        ids: result.ids,
        text: result.text,
        finish_reason: result.finishReason,
        stats: {
          prefill_tokens: s.promptTokens - s.cachedTokens,
          disk_cached_tokens: Math.min(lease.diskTokens, s.cachedTokens),
          prefill_ms: round(s.prefillMs),
          decode_tokens: s.decodeTokens,
          decode_ms: round(s.decodeMs),
          attention: s.attention,
          sampled_fraction: s.sampledFraction,
          provider: model.provider,
        },
      }) + '\n');
    }
    return result.finishReason === 'cancelled' ? 130 : 0;
  } finally {
    await model.dispose();
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
