// A sequence written to disk and read back (engine/attention/snapshot.ts) holds the same bytes (K/V rows, k̄, norms,
// tables) and decodes bit for bit like the original kept in RAM and like a cold sequence fed the same tokens — for
// dense, MagicPIG (same SimHash seed) and a bfloat16 cache. Damaged and foreign files are refused with a reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSequenceAttention, defaultAttentionConfig, type AttentionConfig, type AttentionShape } from '../../engine/attention';
import type { LshTables } from '../../engine/attention/lsh-tables';
import { Sequence } from '../../engine/attention/sequence';
import { SnapshotAborted, SnapshotError, readTokens, restoreSnapshot, restoreSnapshotAsync, snapshotLength, writeSnapshotSync } from '../../engine/attention/snapshot';
import { rng, tokenStream } from './data';

const shape: AttentionShape = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 16 };
const { numKvHeads: G } = shape;
const identity = { source: 'synthetic', weights: 'f32' };
const { feed } = tokenStream(shape);

/** One request: truncate to `cached`, prefill the rest in chunks of 100, index, decode `gen`; the decode outputs. */
async function request(attn: Sequence, prompt: number[], cached: number, gen: number[]): Promise<Float32Array[]> {
  attn.truncate(cached);
  for (let at = cached; at < prompt.length; at += 100) feed(attn, prompt.slice(at, Math.min(prompt.length, at + 100)), at);
  attn.endPrefill();
  await attn.prepare({ provider: 'cpu' });
  const outs: Float32Array[] = [];
  gen.forEach((id, j) => outs.push(...feed(attn, [id], prompt.length + j)));
  return outs;
}

const tokens = (n: number, seed: number) => { const r = rng(seed); return Array.from({ length: n }, () => Math.floor(r() * 1000)); };
const bytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** Table l's buckets as lists of ids (what retrieval reads; the layout of gaps between them is free). */
const lists = (t: LshTables) => Array.from({ length: t.L * t.B }, (_, lc) => {
  const l = Math.floor(lc / t.B), s = l * t.capacity + t.buckets[2 * lc];
  return Array.from(t.ids.subarray(s, s + t.buckets[2 * lc + 1])).join();
});

/** Same K/V bytes, k̄, norms and index bounds; tables with the same ids in every bucket (`exact`: the same bytes). */
function sameState(a: Sequence, b: Sequence, n: number, exact: boolean) {
  const sa = a.persistState(), sb = b.persistState();
  for (let l = 0; l < shape.numLayers; l++) {
    const la = sa.layers[l], lb = sb.layers[l];
    assert.equal(lb.kv.length, n);
    assert.equal(lb.indexedEnd, la.indexedEnd, `layer ${l} indexedEnd`);
    assert.equal(lb.kbarSpan, la.kbarSpan);
    for (let g = 0; g < G; g++) {
      const stride = la.kv.heads[g].stride;
      assert.ok(bytes(la.kv.keys[g].subarray(0, n * stride)).equals(bytes(lb.kv.keys[g].subarray(0, n * stride))), `K/V rows layer ${l} head ${g}`);
      const ha = la.heads[g], hb = lb.heads[g];
      assert.equal(!!hb.tables, !!ha.tables);
      if (!ha.tables) continue;
      assert.ok(bytes(ha.kbar!).equals(bytes(hb.kbar!)));
      assert.ok(bytes(ha.norms.subarray(0, la.indexedEnd)).equals(bytes(hb.norms.subarray(0, lb.indexedEnd))));
      assert.equal(hb.tables!.count, ha.tables.count);
      assert.deepEqual(lists(hb.tables!), lists(ha.tables), `layer ${l} head ${g}: bucket contents`);
      if (exact) {
        assert.ok(bytes(ha.tables.buckets).equals(bytes(hb.tables!.buckets)));
        assert.ok(bytes(ha.tables.ids).equals(bytes(hb.tables!.ids)));
        assert.deepEqual([hb.tables!.capacity, hb.tables!.limit], [ha.tables.capacity, ha.tables.limit]);
      }
    }
  }
}

for (const cfg of [
  { method: 'dense' },
  { method: 'magicpig', K: 6, L: 20, seed: 99 },
  { method: 'magicpig', K: 6, L: 20, kvDtype: 'bfloat16' },
] as Partial<AttentionConfig>[]) {
  test(`snapshot round trip, ${JSON.stringify(cfg)}: same bytes, and decodes bit for bit like RAM and like cold`, async () => {
    const config = { ...defaultAttentionConfig(shape.numLayers), ...cfg, denseLayers: [0] };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-snap-'));
    try {
      const prompt = tokens(1400, 7), gen = tokens(5, 8);
      const a = createSequenceAttention(shape, config) as Sequence;
      // A history of folds (a shorter prompt, then the whole one), so a's tables are not laid out as a cold run's.
      await request(a, prompt.slice(0, 700), 0, gen.slice(0, 2));
      await request(a, prompt, 700, gen); // decoded tokens (sampled for magicpig) sit past the prompt: never saved
      const n = snapshotLength(a, prompt.length + gen.length);
      assert.equal(n, cfg.method === 'dense' ? prompt.length + gen.length : prompt.length); // dense decode steps are exact
      const file = path.join(dir, 'a.snoutkv');
      writeSnapshotSync(file, a, [...prompt, ...gen], n, identity);
      const b = createSequenceAttention(shape, config) as Sequence;
      const ids = restoreSnapshot(file, b, { identity, config, shape });
      assert.deepEqual(Array.from(ids), [...prompt, ...gen].slice(0, n));
      if (cfg.method !== 'dense') assert.ok(b.persistState().layers[1].indexedEnd > config.sinks, 'the index came back');
      a.truncate(n);
      sameState(a, b, n, false);
      const fresh = createSequenceAttention(shape, config) as Sequence; // one cold request: the canonical layout
      await request(fresh, prompt, 0, gen);
      fresh.truncate(n);
      sameState(fresh, b, n, true);
      // The next request (an edit near the end of the prompt) on the RAM copy, the restored copy and a cold one.
      const next = [...prompt.slice(0, 1300), ...tokens(150, 9)], gen2 = tokens(6, 10);
      const cached = Math.min(1300, n);
      const outA = await request(a, next, cached, gen2), outB = await request(b, next, cached, gen2);
      const cold = createSequenceAttention(shape, config) as Sequence;
      const outC = await request(cold, next, 0, gen2);
      for (let i = 0; i < outA.length; i++) {
        assert.ok(bytes(outA[i]).equals(bytes(outB[i])), `restored vs RAM, output ${i}`);
        assert.ok(bytes(outC[i]).equals(bytes(outB[i])), `restored vs cold, output ${i}`);
      }
      if (cfg.method !== 'dense') assert.ok(b.stats().sampledFraction < 1, 'the restored index was sampled from');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('snapshot: truncated, flipped, foreign, newer and other-settings files are refused with a reason', async () => {
  const config = { ...defaultAttentionConfig(shape.numLayers), method: 'magicpig' as const, K: 6, L: 20 };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-snap-'));
  try {
    const prompt = tokens(800, 3);
    const a = createSequenceAttention(shape, config) as Sequence;
    await request(a, prompt, 0, []);
    const good = path.join(dir, 'good.snoutkv');
    const size = writeSnapshotSync(good, a, prompt, prompt.length, identity);
    const bad = path.join(dir, 'bad.snoutkv');
    const refuse = (damage: (f: string) => void, expect: object, why: RegExp) => {
      writeFileSync(bad, readFileSync(good));
      damage(bad);
      const b = createSequenceAttention(shape, config) as Sequence;
      assert.throws(() => restoreSnapshot(bad, b, { identity, config, shape, ...expect }), (e: unknown) => e instanceof SnapshotError && why.test(e.message));
      assert.equal(b.length, 0, 'the sequence is untouched');
    };
    const flip = (at: number) => (f: string) => { const x = readFileSync(f); x[at] ^= 0x10; writeFileSync(f, x); };
    refuse((f) => truncateSync(f, size - 1000), {}, /truncated/);
    refuse((f) => truncateSync(f, 20), {}, /truncated/);
    refuse(flip(size - 5000), {}, /payload checksum/);
    refuse(flip(40), {}, /header checksum/);
    refuse(flip(0), {}, /magic/);
    refuse((f) => { const x = readFileSync(f); x.writeUInt32LE(2, 8); writeFileSync(f, x); }, {}, /newer/);
    refuse(() => {}, { identity: { source: 'another model', weights: 'f32' } }, /another model/);
    refuse(() => {}, { config: { ...config, L: 21 } }, /other attention settings/);
    refuse(() => {}, { config: { ...config, kvDtype: 'bfloat16' } }, /other attention settings/);
    // The good file still reads, and its token ids alone too.
    assert.deepEqual(Array.from(readTokens(good).tokens), prompt);
    const ok = createSequenceAttention(shape, config) as Sequence;
    restoreSnapshot(good, ok, { identity, config, shape });
    assert.equal(ok.length, prompt.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot: the service\'s read gives the event loop turns, equals the one-call read, and stops on abort', async () => {
  const config = { ...defaultAttentionConfig(shape.numLayers), method: 'magicpig' as const, K: 6, L: 20 };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-snap-'));
  try {
    const prompt = tokens(3000, 5);
    const a = createSequenceAttention(shape, config) as Sequence;
    await request(a, prompt, 0, []);
    const file = path.join(dir, 'a.snoutkv');
    writeSnapshotSync(file, a, prompt, prompt.length, identity);
    const sync = createSequenceAttention(shape, config) as Sequence;
    restoreSnapshot(file, sync, { identity, config, shape });
    // sliceMs 0: a turn after every slice read and table rebuilt.
    let turns = 0, done = false;
    const tick = () => { if (!done) { turns++; setImmediate(tick); } };
    setImmediate(tick);
    const sliced = createSequenceAttention(shape, config) as Sequence;
    const ids = await restoreSnapshotAsync(file, sliced, { identity, config, shape }, undefined, 0);
    done = true;
    assert.deepEqual(Array.from(ids), prompt);
    assert.ok(turns >= 10, `${turns} event-loop turns during the read`);
    sameState(sync, sliced, prompt.length, true);
    const ac = new AbortController();
    const stopped = createSequenceAttention(shape, config) as Sequence;
    const reading = restoreSnapshotAsync(file, stopped, { identity, config, shape }, ac.signal, 0);
    ac.abort();
    await assert.rejects(reading, (e: unknown) => e instanceof SnapshotAborted);
    assert.equal(stopped.length, 0, 'an aborted read leaves the sequence untouched');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
