// The fused layer graphs (SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization, RotaryEmbedding, MatMulNBits'
// own bias, outputs named at their node) against the same graphs written with plain ONNX ops, on the same weights and
// inputs: float32 weights (Gemm) and packed ones (4 and 8 bits, with and without zero points and per-block offsets),
// one token and a chunk, at positions far from 0 (RoPE tables from RopeTables as forward.ts makes them). The plain
// graphs are the ones the float64 golden tests were first written against; these tests pin each fusion to them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { buildHeadGraph, buildLayerGraph, io, type FusedOps, type LayerGraphParts } from '../../engine/model/graphs';
import { quantizeRtn, type QuantMatrix, type WeightTensor } from '../../engine/model/quant';
import { RopeTables } from '../../engine/model/rope';
import type { ModelSpec } from '../../engine/model/spec';
import { embedName, finalNormName, layerWeightNames } from '../../engine/model/weights';
import { createSession, ort } from '../../engine/runtime/session';
import { ropeTableDims } from '../../engine/generate/forward';

const spec: ModelSpec = {
  modelType: 'qwen2', hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
  vocabSize: 128, maxPositionEmbeddings: 4096, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: { type: 'none' },
  tieWordEmbeddings: true, attentionBias: true, eosTokenIds: [1],
};
const all: FusedOps = { norm: true, rope: true, bias: true, outputs: true, ropeIo: true };

function rand(n: number, seed: number, scale = 0.1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin((i + 1) * 12.9898 + seed * 78.233) * scale);
}

type Packing = 'f32' | 'int4' | 'int8' | 'int4-offsets';

/** Weights of every tensor the two-layer spec reads, packed as asked (matrices only). */
function weights(packing: Packing): (name: string) => WeightTensor {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize: V } = spec;
  const shapes = new Map<string, number[]>([[embedName, [V, H]]]);
  const vectors = new Map<string, number>([[finalNormName, H]]);
  for (const l of [0, 1]) {
    const n = layerWeightNames(spec, l);
    shapes.set(n.q, [numHeads * D, H]).set(n.k, [numKvHeads * D, H]).set(n.v, [numKvHeads * D, H]).set(n.o, [H, numHeads * D]);
    shapes.set(n.gate, [I, H]).set(n.up, [I, H]).set(n.down, [H, I]);
    vectors.set(n.inputNorm, H).set(n.postNorm, H).set(n.qBias!, numHeads * D).set(n.kBias!, numKvHeads * D).set(n.vBias!, numKvHeads * D);
  }
  const made = new Map<string, WeightTensor>();
  let seed = 0;
  return (name) => {
    if (made.has(name)) return made.get(name)!;
    seed++;
    let w: WeightTensor;
    if (vectors.has(name)) {
      const v = rand(vectors.get(name)!, seed, name.endsWith('bias') ? 0.05 : 0.3);
      w = name.endsWith('bias') ? v : v.map((x) => 1 + x);
    } else {
      const [N, K] = shapes.get(name)!;
      const f = rand(N * K, seed, 0.08);
      if (packing === 'f32') w = f;
      else {
        const m: QuantMatrix = quantizeRtn(f, N, K, packing === 'int8' ? 8 : 4, 32);
        if (packing === 'int4-offsets') {
          // Zero points and per-block offsets, as Q4_1/Q4_K bring them (the offsets path and MatMulNBits' bias input after zero points).
          const nb = K / 32;
          w = { ...m, zeroPoints: new Uint8Array(N * Math.ceil(nb / 2)).fill(0x88), offsets: rand(N * nb, seed + 99, 0.01) };
        } else w = m;
      }
    }
    made.set(name, w);
    return w;
  };
}

function opTypes(bytes: Uint8Array): string[] {
  return onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);
}

async function runGraph(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const { session } = await createSession(bytes, 'cpu', { large: true, threads: 1 });
  try {
    // cos/sin in the shape the graph declares ([n, D/2] with FusedOps.ropeIo, else [n, 1, D/2]; the same floats).
    const table = (t: ort.Tensor) => t.reshape(ropeTableDims(session, t.dims[0], spec.headDim / 2));
    const inputs = Object.fromEntries(session.inputNames.map((n) => [n, n === io.cos || n === io.sin ? table(feeds[n]) : feeds[n]]));
    const out = await session.run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function feedsFor(n: number, start: number): Record<string, ort.Tensor> {
  const { hiddenSize: H, numHeads, headDim: D } = spec;
  const cos = new Float32Array(n * (D / 2)), sin = new Float32Array(n * (D / 2));
  new RopeTables(spec).fill(start, n, cos, sin);
  return {
    [io.x]: new ort.Tensor('float32', rand(n * H, 5, 1), [n, H]),
    [io.attn]: new ort.Tensor('float32', rand(n * numHeads * D, 6, 0.5), [n, numHeads * D]),
    [io.cos]: new ort.Tensor('float32', cos, [n, 1, D / 2]),
    [io.sin]: new ort.Tensor('float32', sin, [n, 1, D / 2]),
    [io.ids]: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + 3) % spec.vocabSize)), [n]),
    [io.hidden]: new ort.Tensor('float32', rand(n * H, 7, 1), [n, H]),
  };
}

function assertClose(a: Record<string, Float32Array>, b: Record<string, Float32Array>, what: string): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${what}: outputs`);
  for (const k of Object.keys(a)) {
    assert.equal(a[k].length, b[k].length, `${what} ${k}: length`);
    let scale = 0, worst = 0;
    for (let i = 0; i < a[k].length; i++) { scale = Math.max(scale, Math.abs(b[k][i])); worst = Math.max(worst, Math.abs(a[k][i] - b[k][i])); }
    assert.ok(scale > 1e-3, `${what} ${k}: outputs are not all ~0`);
    assert.ok(worst <= 2e-6 * Math.max(1, scale), `${what} ${k}: fused differs from plain by ${worst} (scale ${scale})`);
  }
}

describe('fused layer graphs equal the plain ones', () => {
  const plans: [string, LayerGraphParts][] = [
    ['embed + pre 0', { embed: true, pre: 0 }],
    ['post 0 + pre 1', { post: 0, pre: 1 }],
    ['post 1 + head', { post: 1, head: true }],
    ['post 1 alone', { post: 1 }],
  ];
  for (const packing of ['f32', 'int4', 'int8', 'int4-offsets'] as Packing[]) {
    for (const [label, parts] of plans) {
      if (packing !== 'f32' && (parts.embed || parts.head)) continue; // packed models keep these out of the layer graphs
      it(`${packing}, ${label}: one token and a 7-token chunk`, async () => {
        const weight = weights(packing);
        // accuracy_level 0 (float32 compute): level 4 quantizes the activations to int8, so a last-bit difference in a
        // norm can move a rounding step and hide what is being compared.
        const plain = buildLayerGraph(spec, weight, parts, { accuracyLevel: 0, fused: {} });
        const fused = buildLayerGraph(spec, weight, parts, { accuracyLevel: 0, fused: all });
        const types = opTypes(fused);
        assert.ok(opTypes(plain).length > types.length, `${label}: the fused graph has fewer nodes`);
        assert.ok(!types.includes('Pow') && !types.includes('Slice') || parts.head === true, `${label}: no norm or RoPE chains left: ${types}`);
        if (parts.pre !== undefined) assert.ok(types.includes('RotaryEmbedding'));
        if (parts.post !== undefined && parts.pre !== undefined) assert.equal(types.filter((t) => t === 'SkipSimplifiedLayerNormalization').length, 2);
        for (const [n, start] of [[1, 4000], [7, 123]]) {
          const feeds = feedsFor(n, start);
          assertClose(await runGraph(fused, feeds), await runGraph(plain, feeds), `${label} n=${n}`);
        }
      });
    }
  }
  it('RoPE tables and outputs in RotaryEmbedding\'s own shapes (ropeIo) compute what the reshaped graph does, with 4 Reshape nodes fewer', async () => {
    const weight = weights('int4');
    const reshaped = buildLayerGraph(spec, weight, { post: 0, pre: 1 }, { accuracyLevel: 0, fused: { ...all, ropeIo: false } });
    const direct = buildLayerGraph(spec, weight, { post: 0, pre: 1 }, { accuracyLevel: 0, fused: all });
    const reshapes = (bytes: Uint8Array) => opTypes(bytes).filter((t) => t === 'Reshape').length;
    assert.equal(reshapes(reshaped) - reshapes(direct), 4);
    for (const [n, start] of [[1, 4000], [7, 123]]) {
      const feeds = feedsFor(n, start);
      const a = await runGraph(direct, feeds), b = await runGraph(reshaped, feeds);
      for (const k of Object.keys(b)) assert.deepEqual(Array.from(a[k]), Array.from(b[k]), `n=${n} ${k}`);
    }
  });
  it('head graph (final norm + packed lm_head)', async () => {
    const weight = weights('int8');
    const plain = buildHeadGraph(spec, weight, { accuracyLevel: 0, fused: {} });
    const fused = buildHeadGraph(spec, weight, { accuracyLevel: 0, fused: all });
    assert.ok(opTypes(fused).includes('SimplifiedLayerNormalization'));
    const feeds = feedsFor(3, 0);
    assertClose(await runGraph(fused, feeds), await runGraph(plain, feeds), 'head');
  });
});
