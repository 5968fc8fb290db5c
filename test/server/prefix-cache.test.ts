// The prefix-cache pool with tiny-coder's real sequences: which entry a prompt gets, LRU eviction under the byte
// budget, and busy entries never handed out twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../engine/index';
import { commonPrefix, PrefixCache } from '../../engine/generate/prefix-cache';
import type { LoadedModel } from '../../engine/generate/types';
import { modelDir } from './engine-process';

let model: LoadedModel;
before(async () => { model = await loadModel(modelDir('tiny-coder-hf'), { log: () => {} }); });
after(async () => { await model.dispose(); });

const greedy = { temperature: 0, topP: 1, seed: 0 };
const ids = (start: number, n: number) => Array.from({ length: n }, (_, i) => 10 + ((start + i * 7) % 1900));

async function run(cache: PrefixCache, prompt: number[]) {
  const lease = cache.acquire(prompt);
  try {
    const r = await model.generate(lease.seq, { ids: prompt, maxTokens: 2, sampling: greedy });
    return { lease, r };
  } finally { cache.release(lease.seq); }
}

test('commonPrefix', { timeout: 120000 }, () => {
  assert.equal(commonPrefix([1, 2, 3], [1, 2, 4]), 2);
  assert.equal(commonPrefix([], [1]), 0);
  assert.equal(commonPrefix([5, 6], [5, 6]), 2);
});

test('an extended prompt reuses its entry; an unrelated one gets its own; both stay cached', { timeout: 120000 }, async () => {
  const cache = new PrefixCache(model, 1 << 30);
  const a = ids(0, 120);
  const b = ids(500, 120);
  const first = await run(cache, a);
  const again = await run(cache, [...a, 42, 43]);
  assert.equal(again.lease.seq, first.lease.seq);
  assert.equal(again.r.stats.cachedTokens, 120);
  const other = await run(cache, b);
  assert.notEqual(other.lease.seq, first.lease.seq);
  assert.equal(other.r.stats.cachedTokens, 0);
  assert.equal(cache.size, 2);
  const back = await run(cache, [...a, 42, 44]);
  assert.equal(back.lease.seq, first.lease.seq, 'the first file is still cached after the second one ran');
  assert.equal(back.r.stats.cachedTokens, 121);
});

test('busy sequences are never shared; idle ones are evicted LRU-first under the byte budget', { timeout: 120000 }, async () => {
  const probe = new PrefixCache(model, 1 << 30);
  const one = await run(probe, ids(0, 100));
  const perEntry = one.lease.seq.bytes();
  assert.ok(perEntry > 0);
  probe.clear();

  const cache = new PrefixCache(model, Math.floor(perEntry * 2.5));
  const l1 = cache.acquire(ids(0, 100));
  const l2 = cache.acquire(ids(0, 100));
  assert.notEqual(l1.seq, l2.seq, 'the same prompt twice at once gets two sequences');
  cache.release(l1.seq);
  cache.release(l2.seq);
  for (const start of [0, 300, 600, 900]) await run(cache, ids(start, 100));
  assert.ok(cache.bytes() <= perEntry * 2.5, `${cache.bytes()} bytes held`);
  const recent = cache.acquire(ids(900, 100));
  assert.equal(recent.cachedTokens, 100, 'the most recent prompt survived eviction');
  cache.release(recent.seq);
  const oldest = cache.acquire(ids(0, 100));
  assert.equal(oldest.cachedTokens, 0, 'the least recently used prompt was evicted');
  cache.release(oldest.seq);
});
