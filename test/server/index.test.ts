// Background indexing (snout/index) on the real engine in-process with tiny-coder and 32-token prefill chunks: the
// repository prefix is what the next completion's prompt starts with; a completion or another request preempts it
// between chunks and the part already prefilled is kept; it resumes where it stopped; a newer index request
// supersedes an older one; progress counts tokens. Preemption is triggered from inside a prefill chunk's progress
// callback (requests reach the scheduler synchronously), so the chunk it stops at is known exactly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../engine/index';
import { commonPrefix } from '../../engine/generate/prefix-cache';
import type { GenerateRequest, GenerateResult, LoadedModel, Sequence } from '../../engine/generate/types';
import { CachedTokenizer, detectPromptFormat, renderCompletion, renderRepositoryPrefix } from '../../engine/prompt';
import type { IndexParams, ProgressParams } from '../../engine/protocol';
import { EngineService, type ModelLoader } from '../../engine/server/service';
import { indexParams, ParamError } from '../../engine/server/validate';
import { EngineProcess, modelDir, repoRoot } from './engine-process';

const coder = modelDir('tiny-coder-hf');
const CHUNK = 32;

/** Every generate() call the service makes: its request and result, and a hook run after each prefill chunk. */
interface Spy { calls: { req: GenerateRequest; result?: GenerateResult }[]; onChunk?: (done: number, total: number) => void }

function service(spy: Spy, prefixCacheBytes?: number): { svc: EngineService; load: () => Promise<unknown>; model: () => LoadedModel } {
  let loaded: LoadedModel | undefined;
  const loader: ModelLoader = async (dir, o) => {
    const m = await loadModel(dir, { provider: o.provider, attention: o.attention, cacheDir: null, prefillChunk: CHUNK });
    const orig = m.generate.bind(m);
    m.generate = async (seq: Sequence, req: GenerateRequest) => {
      const call: Spy['calls'][number] = { req };
      spy.calls.push(call);
      call.result = await orig(seq, { ...req, onPrefillProgress: (d, t) => { req.onPrefillProgress?.(d, t); spy.onChunk?.(d, t); } });
      return call.result;
    };
    loaded = m;
    return m;
  };
  const svc = new EngineService(loader, () => {});
  return { svc, load: () => svc.load({ modelDir: coder, prefixCacheBytes, attention: { method: 'dense' } }), model: () => loaded! };
}

const source = (f: string, chars: number) => {
  const t = readFileSync(path.join(repoRoot, f), 'utf8');
  return { path: f, text: t.slice(0, t.lastIndexOf('\n', chars) + 1) };
};
const files = [source('engine/generate/prefix-cache.ts', 1400), source('engine/server/scheduler.ts', 1000)];
const context: Omit<IndexParams, 'id'> = { repoName: 'snout', files, path: 'engine/server/example.ts', prefix: 'export function lcp(a: number[], b: number[]) {\n', suffix: '\n}\n', maxTokens: 16 };
const complete = (id: string, extra: object = {}) => ({ id, ...context, ...extra });

const spy: Spy = { calls: [] };
const main = service(spy);
before(async () => { await main.load(); });
after(async () => { await main.svc.shutdown(); });

test('the repository prefix is what the completion prompt starts with, up to the current file\'s code', () => {
  const m = main.model();
  const tok = new CachedTokenizer(m.tokenizer);
  const fmt = detectPromptFormat(m.tokenizer);
  const parts = { repoName: 'snout', files, path: context.path, prefix: context.prefix!, suffix: context.suffix };
  const repo = renderRepositoryPrefix(tok, fmt, parts, 1024 - 16);
  const full = renderCompletion(tok, fmt, parts, 1024 - 16);
  assert.deepEqual(repo.ids, full.ids.slice(0, repo.ids.length));
  // It ends where the current file's code starts: the decoded tail is the current file's header, not its code.
  const text = m.tokenizer.decode(repo.ids, { skipSpecialTokens: false });
  assert.ok(text.includes(files[1].text), 'holds the context files');
  // (and the FIM prefix marker, which every prompt with a suffix has there too)
  assert.ok(text.endsWith(`${context.path}\n${fmt.fim?.prefix ?? ''}`), `ends with the current file's header: …${JSON.stringify(text.slice(-60))}`);
  assert.ok(repo.ids.length > 300 && repo.ids.length < full.ids.length - 10, `${repo.ids.length} of ${full.ids.length}`);
  // Typing in the current file does not move it.
  const typed = renderRepositoryPrefix(tok, fmt, { ...parts, prefix: parts.prefix + '  let i = 0;\n' }, 1024 - 16);
  assert.deepEqual(typed.ids, repo.ids);
});

test('index, then complete: the completion finds the whole prefix cached and answers as a cold engine does', { timeout: 120000 }, async () => {
  const progress: ProgressParams[] = [];
  const r = await main.svc.index(indexParams(complete('i1')), { client: 'a', onProgress: (p) => progress.push(p) });
  assert.equal(r.finishReason, 'done');
  assert.equal(r.cachedTokens, 0);
  assert.equal(r.indexedTokens, r.totalTokens);
  assert.equal(r.segments, 1);
  // Progress: kind index, tokens done never go back, the last one is the total.
  assert.ok(progress.length >= 2 && progress.every((p) => p.kind === 'index' && p.id === 'i1' && p.total === r.totalTokens));
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].done! >= progress[i - 1].done!);
  assert.equal(progress.at(-1)!.done, r.totalTokens);

  const c = await main.svc.complete(complete('c1'), { client: 'a' });
  assert.equal(c.stats.cachedTokens, r.totalTokens, JSON.stringify(c.stats));
  // Indexing again finds it all cached and prefills nothing.
  const before = spy.calls.length;
  const again = await main.svc.index(indexParams(complete('i2')), { client: 'a' });
  assert.deepEqual([again.finishReason, again.cachedTokens, again.totalTokens], ['done', r.totalTokens, r.totalTokens]);
  assert.equal(spy.calls.length, before, 'no generate call');

  const coldSpy: Spy = { calls: [] };
  const cold = service(coldSpy, 0);
  await cold.load();
  try {
    const cc = await cold.svc.complete(complete('c1'), { client: 'a' });
    assert.equal(cc.stats.cachedTokens, 0);
    assert.equal(c.text, cc.text);
  } finally { await cold.svc.shutdown(); }
});

test('a completion preempts indexing between prefill chunks, uses what was prefilled, and indexing then completes', { timeout: 120000 }, async () => {
  // Another repository name: nothing cached yet shares this prefix.
  const ctx = { repoName: 'other' };
  let completion: Promise<Awaited<ReturnType<EngineService['complete']>>> | undefined;
  const first = spy.calls.length;
  spy.onChunk = (done) => {
    if (done >= 3 * CHUNK && !completion) completion = main.svc.complete(complete('c2', ctx), { client: 'a' });
  };
  try {
    const r = await main.svc.index(indexParams(complete('i3', ctx)), { client: 'a' });
    const c = await completion!;
    const mine = spy.calls.slice(first);
    // generate calls: the index's first segment (stopped after 3 chunks), the completion, and no second index
    // segment (the completion prefilled the rest of the prefix, since its prompt starts with it).
    assert.equal(mine[0].result!.finishReason, 'cancelled');
    assert.equal(mine[0].req.maxTokens, 0);
    assert.equal(c.stats.cachedTokens, 3 * CHUNK, 'the completion reused exactly the chunks indexed before it');
    assert.equal(mine.length, 2);
    assert.deepEqual([r.finishReason, r.segments, r.indexedTokens, r.cachedTokens], ['done', 2, r.totalTokens, 0]);
  } finally { spy.onChunk = undefined; }
});

test('preempted by an unrelated request, indexing resumes from the chunk where it stopped', { timeout: 120000 }, async () => {
  const ctx = { repoName: 'third' };
  let other: Promise<unknown> | undefined;
  const first = spy.calls.length;
  spy.onChunk = (done, total) => {
    // A raw prompt shares nothing with the repository prefix, so it runs on a sequence of its own.
    if (done >= 2 * CHUNK && done < total && !other) other = main.svc.complete({ id: 'raw', prompt: 'def main():\n', maxTokens: 4 }, { client: 'b' });
  };
  try {
    const r = await main.svc.index(indexParams(complete('i4', ctx)), { client: 'a' });
    await other;
    const idx = spy.calls.slice(first).filter((x) => x.req.maxTokens === 0);
    assert.equal(idx.length, 2);
    assert.equal(idx[0].result!.finishReason, 'cancelled');
    assert.equal(idx[1].result!.stats.cachedTokens, 2 * CHUNK, 'resumed where it stopped');
    assert.deepEqual([r.finishReason, r.segments, r.indexedTokens], ['done', 2, r.totalTokens]);
    const c = await main.svc.complete(complete('c4', ctx), { client: 'a' });
    assert.equal(c.stats.cachedTokens, r.totalTokens);
  } finally { spy.onChunk = undefined; }
});

test('a newer index request supersedes the older one, which keeps its partial work in the cache', { timeout: 120000 }, async () => {
  const ctx = { repoName: 'fourth' };
  let newer: ReturnType<EngineService['index']> | undefined;
  spy.onChunk = (done) => {
    if (done >= 4 * CHUNK && !newer) newer = main.svc.index(indexParams(complete('i6', ctx)), { client: 'a' });
  };
  try {
    const older = await main.svc.index(indexParams(complete('i5', ctx)), { client: 'a' });
    const r = await newer!;
    assert.equal(older.finishReason, 'cancelled');
    assert.equal(older.indexedTokens, 4 * CHUNK);
    assert.deepEqual([r.finishReason, r.cachedTokens, r.indexedTokens], ['done', 4 * CHUNK, r.totalTokens]);
  } finally { spy.onChunk = undefined; }
  // Another client's index request does not supersede this one's.
  const [x, y] = await Promise.all([
    main.svc.index(indexParams(complete('i7', { repoName: 'fifth' })), { client: 'a' }),
    main.svc.index(indexParams(complete('i8', { repoName: 'sixth' })), { client: 'b' }),
  ]);
  assert.deepEqual([x.finishReason, y.finishReason], ['done', 'done']);
});

test('index params are checked like a completion\'s', () => {
  assert.throws(() => indexParams({ id: 'x', prompt: 'raw' }), ParamError);
  assert.throws(() => indexParams({ id: 'x', files: 'no' }), /index\.files must be an array/);
  assert.throws(() => indexParams({ id: 'x', maxTokens: 0 }), /index\.maxTokens must be an integer/);
  assert.throws(() => indexParams({ id: 'x', files: [{ path: 'a' }] }), /index\.files\[0\]\.text is required/);
  assert.throws(() => indexParams({ files: [] }), /index\.id is required/);
  assert.deepEqual(commonPrefix([1, 2, 3], [1, 2, 4]), 2);
});

test('over stdio: snout/index streams snout/progress {kind index, done, total} and the next completion finds the prefix cached', { timeout: 120000 }, async () => {
  const engine = new EngineProcess();
  try {
    await engine.call('snout/load', { modelDir: coder });
    const r = await engine.call('snout/index', complete('s1'));
    assert.equal(r.finishReason, 'done');
    assert.ok(r.totalTokens > 300, JSON.stringify(r));
    const progress = engine.received.filter((m) => m.method === 'snout/progress' && m.params.kind === 'index' && m.params.id === 's1').map((m) => m.params);
    assert.ok(progress.length >= 2, JSON.stringify(progress));
    assert.deepEqual([progress[0].done, progress.at(-1).done, progress.at(-1).total], [0, r.totalTokens, r.totalTokens]);
    const c = await engine.call('snout/complete', complete('s2'));
    assert.equal(c.stats.cachedTokens, r.totalTokens);
    const bad = await engine.request('snout/index', { id: 's3', prompt: 'raw' }).response;
    assert.equal(bad.error?.code, -32602);
    assert.match(bad.error!.message, /index takes structured parts/);
  } finally { await engine.close(); }
});
