// The prefix cache's disk tier through the real service and tiny-coder: a prompt prefilled by one engine is read back
// by a fresh one on the same cacheDir (restart) and completes exactly as without the restart (dense and MagicPIG);
// damaged, foreign and newer files are deleted, logged and rebuilt; an unwritable folder leaves the RAM cache alone
// with one log line; two engines writing the same prefix leave one valid file; the byte cap holds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../../engine/index';
import { DiskPrefixCache } from '../../engine/generate/disk-prefix-cache';
import { PrefixCache } from '../../engine/generate/prefix-cache';
import type { ModelSequence } from '../../engine/generate/sequence';
import type { Sequence } from '../../engine/generate/types';
import type { Sequence as AttentionSequence } from '../../engine/attention/sequence';
import { bytesOf, snapshotLength } from '../../engine/attention/snapshot';
import type { AttentionSettings, CompleteResult } from '../../engine/protocol';
import { EngineService, type ModelLoader } from '../../engine/server/service';
import { modelDir, repoRoot } from '../engine/paths';

const coder = modelDir('tiny-coder-hf');
const root = mkdtempSync(path.join(os.tmpdir(), 'snout-disk-'));
after(() => rmSync(root, { recursive: true, force: true }));

const loader: ModelLoader = (dir, o) => loadModel(dir, { provider: 'cpu', contextLimit: o.contextLimit, attention: o.attention, cacheDir: null });

// ~1.6K tokens of the engine's own sources (well over the tier's 256-token threshold), then a varying tail.
const base = readFileSync(path.join(repoRoot, 'engine/attention/sequence.ts'), 'utf8').slice(0, 5200);
const prompt = (tail: string) => `${base}\n// ${tail}\nexport function `;

async function start(cacheDir: string | undefined, extra: object = {}) {
  const lines: string[] = [];
  const svc = new EngineService(loader, (_level, m) => lines.push(m));
  await svc.load({ modelDir: coder, contextLength: 4096, cacheDir, ...extra });
  return { svc, lines };
}

const complete = (svc: EngineService, tail: string, attention?: AttentionSettings): Promise<CompleteResult> =>
  svc.complete({ id: tail, prompt: prompt(tail), maxTokens: 12, attention });

const snapshots = (dir: string) => (existsSync(path.join(dir, 'prefix')) ? readdirSync(path.join(dir, 'prefix')) : []);
const only = (dir: string) => {
  const files = snapshots(dir);
  assert.equal(files.length, 1, files.join());
  assert.ok(files[0].endsWith('.snoutkv'), files[0]);
  return path.join(dir, 'prefix', files[0]);
};

for (const attention of [{ method: 'dense' }, { method: 'magicpig', K: 8, L: 40 }] as AttentionSettings[]) {
  test(`restart round trip (${attention.method}): the next engine reads the prefix from disk and completes as without the restart`, { timeout: 240_000 }, async () => {
    const dir = path.join(root, `restart-${attention.method}`);
    const a = await start(dir);
    const first = await complete(a.svc, 'first', attention);
    assert.equal(first.stats.diskCachedTokens, 0);
    assert.ok(first.stats.promptTokens > 1100, `${first.stats.promptTokens} prompt tokens`);
    await a.svc.flushDisk();
    only(dir);
    await a.svc.shutdown();

    // Without a restart (RAM cache) and cold (no cache at all): the references.
    const ram = await start(undefined);
    await complete(ram.svc, 'first', attention);
    const warmRam = await complete(ram.svc, 'second', attention);
    await ram.svc.shutdown();
    const cold = await start(undefined, { prefixCacheBytes: 0 });
    const coldRun = await complete(cold.svc, 'second', attention);
    await cold.svc.shutdown();

    const b = await start(dir);
    const warmDisk = await complete(b.svc, 'second', attention);
    await b.svc.shutdown();
    assert.equal(warmDisk.stats.cachedTokens, warmRam.stats.cachedTokens, 'the same prefix reused as from RAM');
    assert.equal(warmDisk.stats.diskCachedTokens, warmDisk.stats.cachedTokens, 'all of it from disk');
    assert.ok(warmDisk.stats.diskCachedTokens > 1000, JSON.stringify(warmDisk.stats));
    assert.equal(warmRam.stats.diskCachedTokens, 0);
    assert.equal(warmDisk.text, warmRam.text);
    assert.equal(warmDisk.text, coldRun.text);
    assert.ok(warmDisk.text.length > 0);
  });
}

test('damaged, foreign and newer files are deleted with the reason logged, and rebuilt', { timeout: 300_000 }, async () => {
  const dir = path.join(root, 'damage');
  const a = await start(dir);
  await complete(a.svc, 'seed');
  await a.svc.flushDisk();
  await a.svc.shutdown();
  const file = only(dir), good = readFileSync(file);
  // A file of another model under this model's name: made by an engine with another prefill chunk (another identity).
  const otherDir = path.join(root, 'other');
  const o = await start(otherDir);
  await o.svc.shutdown();
  const foreign = await (async () => {
    const svc = new EngineService((d, opts) => loadModel(d, { provider: 'cpu', contextLimit: opts.contextLimit, cacheDir: null, prefillChunk: 128 }), () => {});
    await svc.load({ modelDir: coder, contextLength: 4096, cacheDir: otherDir });
    await complete(svc, 'seed');
    await svc.flushDisk();
    await svc.shutdown();
    return readFileSync(only(otherDir));
  })();
  const cases: [string, () => void, RegExp][] = [
    ['truncated', () => truncateSync(file, good.length - 4096), /truncated/],
    ['flipped byte', () => { const x = Buffer.from(good); x[Math.floor(x.length / 2)] ^= 1; writeFileSync(file, x); }, /checksum/],
    ['another model', () => writeFileSync(file, foreign), /another model/],
    ['newer version', () => { const x = Buffer.from(good); x.writeUInt32LE(99, 8); writeFileSync(file, x); }, /newer/],
  ];
  for (const [what, damage, why] of cases) {
    writeFileSync(file, good);
    damage();
    const b = await start(dir);
    const r = await complete(b.svc, 'seed');
    assert.equal(r.stats.diskCachedTokens, 0, what);
    assert.ok(b.lines.some((l) => why.test(l) && l.includes('deleted')), `${what}: ${b.lines.join(' | ')}`);
    await b.svc.flushDisk();
    await b.svc.shutdown();
    assert.ok(readFileSync(only(dir)).equals(good), `${what}: rebuilt, the same bytes as before`);
  }
});

test('an unwritable folder: the RAM cache serves, with one log line', { timeout: 120_000 }, async () => {
  const dir = path.join(root, 'unwritable');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'prefix'), 'a file where the folder should be'); // root ignores chmod; this fails for anyone
  const a = await start(dir);
  await complete(a.svc, 'one');
  await a.svc.flushDisk();
  const r = await complete(a.svc, 'two');
  await complete(a.svc, 'three');
  await a.svc.flushDisk();
  await a.svc.shutdown();
  assert.ok(r.stats.cachedTokens > 1000, 'RAM cache still used');
  const said = a.lines.filter((l) => /prefix cache/.test(l));
  assert.equal(said.length, 1, said.join(' | '));
  assert.match(said[0], /RAM cache only/);
});

test('two engines writing the same prefix at once leave one valid file; the byte cap keeps the newest', { timeout: 240_000 }, async () => {
  const dir = path.join(root, 'two');
  const [a, b] = [await start(dir), await start(dir)];
  await Promise.all([complete(a.svc, 'same'), complete(b.svc, 'same')]);
  await Promise.all([a.svc.flushDisk(), b.svc.flushDisk()]);
  await a.svc.shutdown();
  await b.svc.shutdown();
  only(dir); // no temp files, one name
  const c = await start(dir);
  const r = await complete(c.svc, 'other tail');
  assert.ok((r.stats.diskCachedTokens ?? 0) > 1000, 'the file reads back');
  assert.deepEqual(c.lines.filter((l) => /prefix cache/.test(l)), []);
  await c.svc.shutdown();

  // Cap: room for one file only. A second, different prefix replaces the first (least recently used).
  const capped = path.join(root, 'capped');
  const size = readFileSync(only(dir)).length;
  const d = await start(capped, { prefixCacheMaxBytes: Math.floor(size * 1.5) });
  await d.svc.complete({ id: 'x', prompt: prompt('x'), maxTokens: 4 });
  await d.svc.flushDisk();
  const firstFile = only(capped);
  await d.svc.complete({ id: 'y', prompt: `// another file first\n${prompt('y')}`, maxTokens: 4 });
  await d.svc.flushDisk();
  await d.svc.shutdown();
  assert.notEqual(only(capped), firstFile);
});

/** Copies of a sequence's K/V rows for its savable tokens, one buffer per layer and KV head. */
function kvRows(seq: Sequence): Buffer[] {
  const att = (seq as ModelSequence).attention as AttentionSequence, n = snapshotLength(att, seq.tokens.length);
  return att.persistState().layers.flatMap((st) => st.kv.keys.map((k, g) => Buffer.from(bytesOf(k.subarray(0, n * st.kv.heads[g].stride)))));
}

test('a request taking a sequence mid-write: the rest is copied and the file is whole, or (over the copy limit) the write is dropped and redone at the next release', { timeout: 240_000 }, async () => {
  const model = await loadModel(coder, { provider: 'cpu', contextLimit: 4096, cacheDir: null });
  try {
    // ~3K tokens: one layer's K/V rows of one head (3K × 512 bytes) take the writer two turns, so the request below
    // arrives with that live segment half written.
    const more = readFileSync(path.join(repoRoot, 'engine/attention/kv-store.ts'), 'utf8').slice(0, 2400);
    const ids = model.tokenizer.encode(prompt('mid-write') + more);
    assert.ok(ids.length > 2500 && ids.length < 3900, `${ids.length} tokens`);
    const shape = { numLayers: model.spec.numLayers, numHeads: model.spec.numHeads, numKvHeads: model.spec.numKvHeads, headDim: model.spec.headDim };
    for (const [what, detachCopyMaxBytes] of [['copied', undefined], ['dropped', 0]] as const) {
      const dir = path.join(root, `mid-write-${what}`);
      const disk = new DiskPrefixCache(dir, { identity: model.kvIdentity, shape, attentionFor: (a) => model.attentionFor!(a) }, { detachCopyMaxBytes });
      const cache = new PrefixCache(model, 2 ** 30, 8, disk);
      const run = async (tail: number[]) => {
        const lease = cache.acquire([...ids, ...tail]);
        await model.generate(lease.seq, { ids: [...ids, ...tail], maxTokens: 4, sampling: { temperature: 0, topP: 1, seed: 0 } });
        cache.release(lease.seq);
        return lease;
      };
      const first = await run([]); // released: the write starts
      const atFirstRelease = kvRows(first.seq);
      await new Promise<void>((r) => setImmediate(r)); // the writer's second turn: the first 1 MiB of layer 0's rows
      // A request takes the sequence mid-write, and (at its worst) rewrites every row it holds.
      const taken = cache.acquire([...ids, 5, 6, 7]);
      assert.equal(taken.seq, first.seq);
      for (const st of ((taken.seq as ModelSequence).attention as AttentionSequence).persistState().layers) for (const k of st.kv.keys) k.fill(0);
      cache.discard(taken.seq);
      await disk.flush();
      if (what === 'dropped') assert.deepEqual(snapshots(dir), [], 'the write was dropped, no temp file left');
      const second = await run([5, 6, 7]); // a fresh sequence now: its release writes (again, when dropped)
      const atSecondRelease = kvRows(second.seq);
      await disk.flush();
      // The first request's file (copied case) or the second's (dropped case); no temp file left.
      const names = snapshots(dir);
      assert.ok(names.length >= 1 && names.every((n) => n.endsWith('.snoutkv')), names.join());
      const files = names.map((n) => path.join(dir, 'prefix', n));
      // A fresh engine reads the files back and they verify.
      const fresh = new DiskPrefixCache(dir, { identity: model.kvIdentity, shape, attentionFor: (a) => model.attentionFor!(a) }, { log: (l) => assert.fail(l) });
      const seqs = files.map((f) => { const q = model.newSequence(); assert.ok(fresh.load(f, q), what); return q; });
      const seq = seqs.find((q) => (q.tokens[ids.length] === 5) === (what === 'dropped'));
      assert.ok(seq, 'the expected file is there');
      assert.deepEqual(seq.tokens.slice(0, ids.length), ids);
      // ...and holds the K/V rows the written sequence had at its release, not rows the second request wrote over
      // while the file was being written.
      const restored = kvRows(seq), expected = what === 'copied' ? atFirstRelease : atSecondRelease;
      assert.equal(restored.length, expected.length);
      restored.forEach((r, i) => assert.ok(r.equals(expected[i]), `${what}: K/V rows of layer/head ${i}`));
      for (const q of seqs) q.dispose();
    }
  } finally {
    await model.dispose();
  }
});
