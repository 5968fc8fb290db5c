// MagicPIG's query hash inside the layer graphs (graphs.ts GraphOptions.queryHash): the pre-attention graph's q_codes
// against a float64 SimHash written from the spec (§3, W drawn from the seed as engine/random.ts documents) and against
// the key-hash graph the engine used before; no row hashed when the runner says so, and q/k/v untouched. Then a whole
// model: tiny-coder with a K·L large enough for the layer graphs to carry the hash decodes the same greedy tokens as
// with the hash on a graph of its own (SNOUT_FUSED_QHASH=0), and its sampled steps really took the graph's codes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyHashGraph } from '../../engine/attention/hash-graph';
import { simhashFor } from '../../engine/attention/simhash';
import type { QueryCodes } from '../../engine/attention/types';
import { loadModel, type LoadedModel } from '../../engine/index';
import { buildLayerGraph, io } from '../../engine/model/graphs';
import { RopeTables } from '../../engine/model/rope';
import type { ModelSpec } from '../../engine/model/spec';
import { layerWeightNames } from '../../engine/model/weights';
import { gaussianStream } from '../../engine/random';
import { createSession, ort } from '../../engine/runtime/session';
import { ropeTableDims } from '../../engine/generate/forward';
import { hasModel, modelDir, readGolden } from '../engine/paths';

const spec: ModelSpec = {
  modelType: 'qwen2', hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 16,
  vocabSize: 128, maxPositionEmbeddings: 4096, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: { type: 'none' },
  tieWordEmbeddings: true, attentionBias: true, eosTokenIds: [1],
};
const K = 10, L = 150, seed = 1234;

function rand(n: number, s: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin((i + 1) * 12.9898 + s * 78.233) * scale);
}

/** Float32 weights for layer 0's pre-attention (norm, q|k|v with bias). */
function weight(name: string): Float32Array {
  const { hiddenSize: H, numHeads, numKvHeads, headDim: D } = spec;
  const n = layerWeightNames(spec, 0);
  const sizes: Record<string, number> = {
    [n.inputNorm]: H, [n.q]: numHeads * D * H, [n.k]: numKvHeads * D * H, [n.v]: numKvHeads * D * H,
    [n.qBias!]: numHeads * D, [n.kBias!]: numKvHeads * D, [n.vBias!]: numKvHeads * D,
  };
  if (!(name in sizes)) throw new Error(`unexpected weight ${name}`);
  const s = Object.keys(sizes).indexOf(name) + 1;
  return name === n.inputNorm ? rand(H, s, 0.3).map((x) => 1 + x) : rand(sizes[name], s, name.endsWith('bias') ? 0.05 : 0.3);
}

/** The spec's SimHash of x in float64; bits whose projection is within `eps` of 0 are reported, not trusted. */
function referenceCodes(x: Float32Array, d: number, rows: number): { codes: number[]; nearZero: Set<number> } {
  const next = gaussianStream(seed);
  const W = Float64Array.from({ length: d * K * L }, () => next()); // W[r, c] = the (r·K·L + c)-th normal
  const codes: number[] = [], nearZero = new Set<number>();
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < L; l++) {
      let code = 0;
      for (let b = 0; b < K; b++) {
        let proj = 0;
        for (let c = 0; c < d; c++) proj += x[r * d + c] * W[c * K * L + l * K + b];
        if (proj > 0) code |= 1 << b;
        if (Math.abs(proj) < 1e-5) nearZero.add(r * L + l);
      }
      codes.push(code);
    }
  }
  return { codes, nearZero };
}

describe('query hash in the layer graph', () => {
  const n = 3, start = 40;
  const { hiddenSize: H, numHeads, headDim: D } = spec;
  const cos = new Float32Array(n * (D / 2)), sin = new Float32Array(n * (D / 2));
  new RopeTables(spec).fill(start, n, cos, sin);
  const feeds = (hashStart: number): Record<string, ort.Tensor> => ({
    [io.x]: new ort.Tensor('float32', rand(n * H, 77, 1), [n, H]),
    [io.cos]: new ort.Tensor('float32', cos, [n, 1, D / 2]),
    [io.sin]: new ort.Tensor('float32', sin, [n, 1, D / 2]),
    [io.qHashStart]: new ort.Tensor('int64', BigInt64Array.of(BigInt(hashStart)), [1]),
  });
  async function run(withHash: boolean, hashStart: number) {
    const bytes = buildLayerGraph(spec, weight, { pre: 0 }, withHash ? { queryHash: simhashFor(D, K, L, seed) } : {});
    const { session } = await createSession(bytes, 'cpu', { threads: 2 });
    try {
      const f = feeds(hashStart);
      const table = (t: ort.Tensor) => t.reshape(ropeTableDims(session, n, D / 2));
      return await session.run(Object.fromEntries(session.inputNames.map((name) => [name, name === io.cos || name === io.sin ? table(f[name]) : f[name]])));
    } finally {
      await session.release();
    }
  }

  it('hashes the last row of q like the float64 reference and the key-hash graph', async () => {
    const out = await run(true, n - 1);
    const q = out[io.q].data as Float32Array;
    const last = q.slice((n - 1) * numHeads * D);
    const codes = out[io.qCodes];
    assert.deepEqual(codes.dims, [numHeads, L]);
    const got = codes.data as Int32Array;
    const ref = referenceCodes(last, D, numHeads);
    assert.ok(ref.nearZero.size < 3, `few near-zero projections (${ref.nearZero.size})`);
    let checked = 0;
    for (let i = 0; i < ref.codes.length; i++) {
      if (ref.nearZero.has(i)) continue;
      assert.equal(got[i], ref.codes[i], `head ${Math.floor(i / L)} table ${i % L}`);
      checked++;
    }
    assert.ok(checked > numHeads * L - 3);
    // The graph the engine hashed queries with before: the same product, so the same bits.
    const graph = await KeyHashGraph.create(simhashFor(D, K, L, seed), 'cpu', 1);
    assert.deepEqual(Array.from(await graph.hash(last, numHeads)), Array.from(got));
  });

  it('hashes no row when told to start at n, and leaves q, k, v as they are without the hash', async () => {
    const none = await run(true, n);
    assert.deepEqual(none[io.qCodes].dims, [0, L]);
    const plain = await run(false, n);
    for (const name of [io.q, io.k, io.v]) {
      assert.deepEqual(Array.from(none[name].data as Float32Array), Array.from(plain[name].data as Float32Array), name);
    }
  });
});

const model = 'tiny-coder-hf';
describe('tiny-coder: sampled decode steps with the query hash from the layer graphs', { skip: !hasModel(model) && `${model} not found` }, () => {
  // L 400: 4 heads · 64 · K·L ≥ 1M multiply-adds, so the engine puts the hash in the layer graphs (load.ts).
  const attention = { method: 'magicpig' as const, K: 10, L: 400, sinks: 4, window: 16, tailThreshold: 16, minIndexed: 0 };
  let fused: LoadedModel, separate: LoadedModel;
  before(async () => {
    fused = await loadModel(modelDir(model), { provider: 'cpu', attention });
    const saved = process.env.SNOUT_FUSED_QHASH;
    process.env.SNOUT_FUSED_QHASH = '0';
    try {
      separate = await loadModel(modelDir(model), { provider: 'cpu', attention });
    } finally {
      if (saved === undefined) delete process.env.SNOUT_FUSED_QHASH; else process.env.SNOUT_FUSED_QHASH = saved;
    }
  });
  after(async () => { await fused?.dispose(); await separate?.dispose(); });

  /**
   * Greedy decode, counting the attention calls that came with a full set of codes from the runner, and the query
   * hashes the sequence ran on a key-hash graph of its own during those calls.
   */
  async function decode(m: LoadedModel, ids: number[]) {
    const seq = m.newSequence();
    const att = (seq as unknown as { attention: { forwardAsync: (...a: unknown[]) => Promise<void> } }).attention;
    const inner = att.forwardAsync.bind(att);
    let withCodes = 0, ownHashes = 0, inside = false;
    att.forwardAsync = async (...a: unknown[]) => {
      const codes = a[6] as QueryCodes | undefined;
      if (codes) {
        assert.deepEqual([codes.K, codes.L, codes.seed, codes.codes.length], [attention.K, attention.L, 1234, 4 * attention.L]);
        withCodes++;
      }
      inside = true;
      try { await inner(...a); } finally { inside = false; }
    };
    const hash = KeyHashGraph.prototype.hash;
    KeyHashGraph.prototype.hash = function (x: Float32Array, rows: number) {
      if (inside) ownHashes++;
      return hash.call(this, x, rows);
    };
    try {
      const r = await m.generate(seq, { ids, maxTokens: 12, sampling: { temperature: 0, topP: 1, seed: 0 }, attention });
      return { r, withCodes, ownHashes };
    } finally {
      KeyHashGraph.prototype.hash = hash;
      seq.dispose();
    }
  }

  it('decodes the same tokens as the hash on its own graph, from the layer graphs\' codes', async () => {
    const ids: number[] = readGolden(model).cases.flatMap((c: { input_ids: number[] }) => c.input_ids).slice(0, 300);
    const a = await decode(fused, ids);
    const b = await decode(separate, ids);
    assert.deepEqual(a.r.ids, b.r.ids);
    assert.equal(a.r.stats.sampledFraction, b.r.stats.sampledFraction);
    assert.ok(a.r.stats.sampledFraction! < 0.9, `the index is used: sampled fraction ${a.r.stats.sampledFraction}`);
    // Every decode step after the first token hashes on each sampled layer (6 layers, 2 of them dense).
    const steps = a.r.ids.length - 1;
    assert.ok(steps > 0);
    assert.equal(a.withCodes, steps * 4);
    assert.equal(a.ownHashes, 0, 'the sequence used the codes it was given');
    assert.equal(b.withCodes, 0);
    assert.equal(b.ownHashes, steps * 4);
  });
});
