// snout bench restart [--model DIR] [--contexts 16k,32k] [--attention dense|magicpig] [--k K] [--l L] [--json]
// Question: after an engine restart, how long until the first token of a completion over a long repository prefix,
// with the prefix read from the disk tier (engine/generate/disk-prefix-cache.ts) against prefilling it cold? And
// what does the tier cost: bytes per token on disk (against the RAM cache's) and the time to write a prefix.
// For each context n (the engine's own sources, as bench engine packs them):
//   cold:  a fresh engine (model loaded, empty caches) completes prefix + tail A (n tokens in all): time to first token;
//          its sequence is released and written to the disk tier (write_ms: the chunked write, start to rename).
//   warm:  another fresh engine on the same folder completes prefix + tail B (the user typed on: the last 16 tokens
//          differ): time to first token, the file's read included.
// Models load before the clock starts. tiny-coder's trained context is 1024: it is loaded with a larger position
// limit, for speed figures only. The two runs are sequential (a 32K cold prefill takes most of a minute here), so
// on a shared machine the ratio carries the noise of two separate windows.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attentionConfigArg, attentionFlags, parseArgs, stringArg } from '../engine/cli/model-args';
import { UserError } from '../engine/errors';
import { attentionShape, loadModel } from '../engine/generate/load';
import { DiskPrefixCache } from '../engine/generate/disk-prefix-cache';
import { PrefixCache } from '../engine/generate/prefix-cache';
import type { LoadedModel } from '../engine/generate/types';
import { sizes } from './args';
import { promptText } from './engine';

interface Row {
  model: string;
  context: number;
  attention: string;
  cold_first_token_ms: number;
  warm_first_token_ms: number;
  /** Of warm_first_token_ms: finding and reading the file (the rest: prefill of the new tail, indexing, first token). */
  warm_read_ms: number;
  warm_disk_tokens: number;
  ratio: number;
  cache_bytes_per_token: number;
  ram_bytes_per_token: number;
  write_ms: number;
  /** Longest event-loop turn of the chunked write (what a request arriving meanwhile waits at most). */
  write_max_turn_ms: number;
  file_mb: number;
}

const TAIL = 16;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function run(argv: string[]): Promise<number> {
  const cmd = 'bench restart';
  const args = parseArgs(cmd, argv, { model: 'value', contexts: 'value', json: 'switch', ...attentionFlags });
  const repoRoot = path.resolve(__dirname, '..');
  const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
  const dir = stringArg(args, 'model') ?? path.join(shared, 'models', 'tiny-coder-hf');
  const contexts = sizes(stringArg(args, 'contexts') ?? '16k,32k');
  if (contexts.some((n) => !Number.isInteger(n) || n < 2 * TAIL)) throw new UserError(`${cmd}: --contexts must be integers >= ${2 * TAIL}`);
  const attention = { method: 'magicpig' as const, ...attentionConfigArg(cmd, args) };
  const json = args.switches.has('json');
  const say = (s: string) => process.stderr.write(s + '\n');
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'snout-bench-restart-'));
  const rows: Row[] = [];
  const open = () => loadModel(dir, { contextLimit: Math.max(...contexts) + 2, attention, cacheDir: null, log: () => {} });
  const tier = (model: LoadedModel) => new DiskPrefixCache(cacheDir, {
    identity: model.kvIdentity, shape: attentionShape(model.spec), attentionFor: (a) => model.attentionFor!(a),
  }, { maxBytes: 64 * 2 ** 30, log: say });
  /** Time to first token of `ids` on `cache` (acquire, disk read if any, prefill, index, one token). */
  const firstToken = async (model: LoadedModel, cache: PrefixCache, ids: number[]) => {
    const t0 = performance.now();
    const lease = cache.acquire(ids);
    const acquireMs = performance.now() - t0;
    try {
      const r = await model.generate(lease.seq, { ids, maxTokens: 1, sampling: { temperature: 0, topP: 1, seed: 0 } });
      return { ms: performance.now() - t0, acquireMs, disk: Math.min(lease.diskTokens, r.stats.cachedTokens), ram: lease.seq.bytes() };
    } finally {
      cache.release(lease.seq);
    }
  };
  try {
    for (const n of contexts) {
      rmSync(path.join(cacheDir, 'prefix'), { recursive: true, force: true });
      let model = await open();
      const corpus = model.tokenizer.encode(promptText(repoRoot), { addSpecialTokens: false });
      const at = (i: number) => corpus[i % corpus.length];
      const prefix = Array.from({ length: n - TAIL }, (_, i) => at(i));
      const a = [...prefix, ...Array.from({ length: TAIL }, (_, i) => at(n + 1000 + i))];
      const b = [...prefix, ...Array.from({ length: TAIL }, (_, i) => at(n + 5000 + i))];

      let disk = tier(model);
      let cache = new PrefixCache(model, 64 * 2 ** 30, 8, disk);
      const cold = await firstToken(model, cache, a); // empty folder: nothing to read
      await disk.flush();
      const written = disk.lastWrite;
      if (!written) throw new Error('the disk tier wrote nothing');
      cache.clear();
      await model.dispose();

      model = await open(); // the restart
      disk = tier(model);
      cache = new PrefixCache(model, 64 * 2 ** 30, 8, disk);
      const warm = await firstToken(model, cache, b);
      await disk.flush();
      cache.clear();
      await model.dispose();

      const row: Row = {
        model: path.basename(dir), context: n, attention: attention.method,
        cold_first_token_ms: round(cold.ms), warm_first_token_ms: round(warm.ms), warm_read_ms: round(warm.acquireMs), warm_disk_tokens: warm.disk,
        ratio: round(warm.ms / cold.ms, 4),
        cache_bytes_per_token: Math.round(written.bytes / written.tokens), ram_bytes_per_token: Math.round(cold.ram / n),
        write_ms: round(written.ms), write_max_turn_ms: round(written.maxChunkMs), file_mb: round(written.bytes / 2 ** 20),
      };
      rows.push(row);
      say(`${n}: cold ${row.cold_first_token_ms} ms, warm ${row.warm_first_token_ms} ms (read ${row.warm_read_ms} ms; ${(100 * row.ratio).toFixed(2)}%, ${warm.disk} tokens from disk), `
        + `${row.cache_bytes_per_token} B/token on disk vs ${row.ram_bytes_per_token} in RAM, write ${row.write_ms} ms (longest turn ${row.write_max_turn_ms} ms)`);
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  if (!json) {
    process.stdout.write(`restart: time to first token after an engine restart, ${path.basename(dir)}, ${attention.method}; target warm <= 2% of cold at 32K\n`);
    process.stdout.write(`${'context'.padStart(8)}${'cold ms'.padStart(10)}${'warm ms'.padStart(10)}${'warm/cold'.padStart(11)}${'disk B/tok'.padStart(12)}${'RAM B/tok'.padStart(11)}${'write ms'.padStart(10)}${'file MB'.padStart(9)}\n`);
    for (const r of rows) {
      process.stdout.write(`${String(r.context).padStart(8)}${String(r.cold_first_token_ms).padStart(10)}${String(r.warm_first_token_ms).padStart(10)}`
        + `${`${(100 * r.ratio).toFixed(2)}%`.padStart(11)}${String(r.cache_bytes_per_token).padStart(12)}${String(r.ram_bytes_per_token).padStart(11)}`
        + `${String(r.write_ms).padStart(10)}${String(r.file_mb).padStart(9)}\n`);
    }
  }
  if (json) process.stdout.write(JSON.stringify({ rows }) + '\n');
  const big = rows.filter((r) => r.context >= 32768);
  return big.every((r) => r.ratio <= 0.02) && rows.every((r) => r.cache_bytes_per_token <= r.ram_bytes_per_token) ? 0 : 1;
}
