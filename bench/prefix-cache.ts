// snout bench prefix [--sizes 4096,16384] [--model DIR] [--json]
// Question: how much does the prefix cache cut time to first token when the repository context is unchanged and the
// user types one more character? TTFT = render (tokenize + layout) + prefill + first token.
//   cold:        fresh KV cache and a fresh tokenizer memo.
//   mid-file:    one keystroke with code after the cursor (PSM FIM: the capped suffix is re-prefilled each time).
//   end of file: one keystroke with nothing after the cursor (only the typed tokens are new).
// tiny-coder's trained context is 1024: the model is loaded with a larger position limit here purely for speed figures.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../engine/index';
import { PrefixCache } from '../engine/generate/prefix-cache';
import { arg } from './args';
import { CachedTokenizer, detectPromptFormat, renderCompletion, type CompletionParts } from '../engine/prompt';
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

interface Keystroke { ttftMs: number; renderMs: number; promptTokens: number; cachedTokens: number; ratio: number }
interface Row { contextTokens: number; coldTtftMs: number; coldRenderMs: number; midFile: Keystroke; endOfFile: Keystroke }

async function timed(model: LoadedModel, cache: PrefixCache, tok: CachedTokenizer, parts: CompletionParts, budget: number) {
  const t0 = performance.now();
  const { ids } = renderCompletion(tok, detectPromptFormat(tok), parts, budget);
  const renderMs = performance.now() - t0;
  const lease = cache.acquire(ids);
  try {
    const r = await model.generate(lease.seq, { ids, maxTokens: 1, sampling: { temperature: 0, topP: 1, seed: 0 } });
    return { ttftMs: performance.now() - t0, renderMs, promptTokens: ids.length, cachedTokens: r.stats.cachedTokens };
  } finally { cache.release(lease.seq); }
}

export async function run(argv: string[]): Promise<number> {
  const sizes = (arg(argv, '--sizes') ?? '4096,16384').split(',').map(Number);
  const modelDir = arg(argv, '--model') ?? path.join(sharedDir, 'models/tiny-coder-hf');
  const json = argv.includes('--json');
  const model = await loadModel(modelDir, { contextLimit: Math.max(...sizes) + 64, log: () => {} });
  const files = [...sourceFiles(path.join(repoRoot, 'engine')), ...sourceFiles(path.join(repoRoot, 'extension'))];
  const current = files.find((f) => f.path.endsWith('engine/server/service.ts'))!;
  const cut = current.text.indexOf('  status(): StatusResult');
  const parts = (typed: string, suffix: string): CompletionParts => ({ repoName: 'snout', files, path: current.path, prefix: current.text.slice(0, cut) + typed, suffix });
  const rows: Row[] = [];
  for (const size of sizes) {
    const tok = new CachedTokenizer(model.tokenizer);
    const cache = new PrefixCache(model, 8 * 2 ** 30);
    const cold = await timed(model, cache, tok, parts('', current.text.slice(cut)), size);
    const mid = await timed(model, cache, tok, parts('  s', current.text.slice(cut)), size);
    await timed(model, cache, tok, parts('  s', ''), size); // switch layout (not timed as a keystroke)
    const end = await timed(model, cache, tok, parts('  st', ''), size);
    const ks = (k: typeof mid): Keystroke => ({ ...k, ratio: k.ttftMs / cold.ttftMs });
    const row: Row = { contextTokens: cold.promptTokens, coldTtftMs: cold.ttftMs, coldRenderMs: cold.renderMs, midFile: ks(mid), endOfFile: ks(end) };
    rows.push(row);
    if (!json) process.stderr.write(`  ${size}: cold ${cold.ttftMs.toFixed(0)} ms, mid-file ${mid.ttftMs.toFixed(0)} ms, end of file ${end.ttftMs.toFixed(0)} ms\n`);
    cache.clear();
  }
  await model.dispose();
  if (json) {
    process.stdout.write(JSON.stringify({ bench: 'prefix-cache', model: modelDir, target: 'cached <= 5% of cold', rows }, null, 2) + '\n');
  } else {
    const f = (x: number) => x.toFixed(0).padStart(10);
    const p = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(8);
    process.stdout.write(`prefix cache: time to first token (ms) one keystroke after a ${path.basename(modelDir)} prompt; target cached <= 5% of cold\n`);
    process.stdout.write(`${'context'.padStart(8)}${'cold'.padStart(10)}${'mid-file'.padStart(10)}${'(new tok)'.padStart(10)}${'ratio'.padStart(8)}${'end-file'.padStart(10)}${'(new tok)'.padStart(10)}${'ratio'.padStart(8)}\n`);
    for (const r of rows) {
      const n = (k: Keystroke) => String(k.promptTokens - k.cachedTokens).padStart(10);
      process.stdout.write(`${String(r.contextTokens).padStart(8)}${f(r.coldTtftMs)}${f(r.midFile.ttftMs)}${n(r.midFile)}${p(r.midFile.ratio)}${f(r.endOfFile.ttftMs)}${n(r.endOfFile)}${p(r.endOfFile.ratio)}\n`);
    }
  }
  return rows.every((r) => r.midFile.ratio <= 0.05 && r.endOfFile.ratio <= 0.05) ? 0 : 1;
}
