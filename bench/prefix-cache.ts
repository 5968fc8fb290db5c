// snout bench prefix [--sizes 4096,16384] [--model DIR] [--json]
// Question: how much does the prefix cache cut time to first token when the repository context is unchanged and the
// user types one more character? Cold = fresh KV cache and a fresh tokenizer memo; cached = the previous keystroke's
// sequence from the pool and the warm memo. TTFT = render (tokenize + layout) + prefill + first token. tiny-coder's
// trained context is 1024: the model is loaded with a larger position limit here purely for speed figures.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../engine/index';
import { PrefixCache } from '../engine/generate/prefix-cache';
import { CachedTokenizer, detectPromptFormat, renderCompletion } from '../engine/prompt';
import type { LoadedModel } from '../engine/generate/types';
import type { RepoFile } from '../engine/protocol';

const repoRoot = path.resolve(__dirname, '..');
const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');

function sourceFiles(dir: string, out: RepoFile[] = []): RepoFile[] {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts')) out.push({ path: path.relative(repoRoot, p), text: readFileSync(p, 'utf8') });
  }
  return out;
}

interface Row { contextTokens: number; coldRenderMs: number; coldTtftMs: number; cachedRenderMs: number; cachedTtftMs: number; cachedTokens: number; ratio: number }

async function ttft(model: LoadedModel, cache: PrefixCache, ids: number[]): Promise<{ ms: number; cachedTokens: number }> {
  const t0 = performance.now();
  const lease = cache.acquire(ids);
  try {
    const r = await model.generate(lease.seq, { ids, maxTokens: 1, sampling: { temperature: 0, topP: 1, seed: 0 } });
    return { ms: performance.now() - t0, cachedTokens: r.stats.cachedTokens };
  } finally { cache.release(lease.seq); }
}

export async function run(argv: string[]): Promise<number> {
  const arg = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  const sizes = (arg('--sizes') ?? '4096,16384').split(',').map(Number);
  const modelDir = arg('--model') ?? path.join(sharedDir, 'models/tiny-coder-hf');
  const json = argv.includes('--json');
  const maxSize = Math.max(...sizes);
  const model = await loadModel(modelDir, { contextLimit: maxSize + 64, log: () => {} });
  const fmt = detectPromptFormat(model.tokenizer);
  const files = [...sourceFiles(path.join(repoRoot, 'engine')), ...sourceFiles(path.join(repoRoot, 'extension'))];
  const current = files.find((f) => f.path.endsWith('engine/server/service.ts'))!;
  const cut = current.text.indexOf('  status(): StatusResult');
  const prefix = current.text.slice(0, cut);
  const rows: Row[] = [];
  for (const size of sizes) {
    const parts = (typed: string) => ({ repoName: 'snout', files, path: current.path, prefix: prefix + typed, suffix: current.text.slice(cut) });
    // Cold: new tokenizer memo, empty pool.
    const coldTok = new CachedTokenizer(model.tokenizer);
    const cache = new PrefixCache(model, 4 * 2 ** 30);
    let t0 = performance.now();
    const a = renderCompletion(coldTok, fmt, parts(''), size);
    const coldRenderMs = performance.now() - t0;
    const cold = await ttft(model, cache, a.ids);
    // Cached: one more keystroke.
    t0 = performance.now();
    const b = renderCompletion(coldTok, fmt, parts('  s'), size);
    const cachedRenderMs = performance.now() - t0;
    const cached = await ttft(model, cache, b.ids);
    const row = {
      contextTokens: a.ids.length,
      coldRenderMs, coldTtftMs: coldRenderMs + cold.ms,
      cachedRenderMs, cachedTtftMs: cachedRenderMs + cached.ms,
      cachedTokens: cached.cachedTokens,
      ratio: (cachedRenderMs + cached.ms) / (coldRenderMs + cold.ms),
    };
    rows.push(row);
    if (!json) process.stderr.write(`  ${size}: cold ${row.coldTtftMs.toFixed(0)} ms, cached ${row.cachedTtftMs.toFixed(0)} ms\n`);
    cache.clear();
  }
  await model.dispose();
  if (json) {
    process.stdout.write(JSON.stringify({ bench: 'prefix-cache', model: modelDir, target: 'cached <= 5% of cold', rows }, null, 2) + '\n');
  } else {
    const f = (x: number) => x.toFixed(1).padStart(10);
    process.stdout.write(`prefix cache: time to first token, one keystroke after a ${path.basename(modelDir)} prompt (target cached <= 5% of cold)\n`);
    process.stdout.write(`${'context'.padStart(8)}${'cold ms'.padStart(10)}${'(render)'.padStart(10)}${'cached ms'.padStart(10)}${'(render)'.padStart(10)}${'reused'.padStart(8)}${'ratio'.padStart(8)}\n`);
    for (const r of rows) {
      process.stdout.write(`${String(r.contextTokens).padStart(8)}${f(r.coldTtftMs)}${f(r.coldRenderMs)}${f(r.cachedTtftMs)}${f(r.cachedRenderMs)}${String(r.cachedTokens).padStart(8)}${(100 * r.ratio).toFixed(1).padStart(7)}%\n`);
    }
  }
  return rows.every((r) => r.ratio <= 0.05) ? 0 : 1;
}
