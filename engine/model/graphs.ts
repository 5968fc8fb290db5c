// The model's dense parts as ONNX graphs built from the weights. All activations are 2-D [n, features] for one
// sequence; n (tokens in the chunk) is dynamic, so one set of graphs serves prefill chunks and decode steps.
//
//   embed_head:  ids [n] → embeds [n, H];  hidden [m, H] → final RMSNorm → lm_head → logits [m, V]
//                (one session, so tied embeddings are held once; the unused half gets a zero-length input)
//   layer graph: [post-attention of layer l] then [pre-attention of layer l+1]; either half may be absent:
//     post(l):  attn [n, heads·D] → o_proj → + residual → RMSNorm → SwiGLU MLP → + residual → x
//     pre(l):   x → RMSNorm → fused q|k|v projection (+ bias) → RoPE on q, k (rotate_half) → q, k, v
//               [→ SimHash codes of q's last row, when the runner asks: MagicPIG's query hash in the same run]
//   By default the norms, residual+norm pairs, RoPE and biases are onnxruntime's fused kernels (FusedOps below).
//   Fusing post(l) with pre(l+1) halves the onnxruntime calls per token (L+3 instead of 2L+2). For small
//   vocabularies the embedding also moves into the first layer graph and final norm + lm_head into the last (L+1
//   calls per token; the tied matrix is then held twice, which is why large ones keep embed_head).
//   head:        hidden [m, H] → final RMSNorm → lm_head → logits [m, V], for quantized models, whose embedding is
//                looked up in the engine's compact table (forward.ts) instead of a Gather over float32.
//
// A linear layer's weight is float32 (Gemm) or a QuantMatrix (quant.ts), which becomes com.microsoft MatMulNBits:
// the packed bytes are the graph's initializers, so no float32 copy of a quantized matrix exists anywhere.
import { addSimHashNodes, type SimHashWeights } from '../attention/hash-graph';
import { GraphBuilder, attr } from '../runtime/onnx-graph';
import { blocksPerRow, isQuant, rowBytes, type QuantMatrix, type WeightTensor } from './quant';
import type { ModelSpec } from './spec';
import { embedName, finalNormName, layerWeightNames, lmHeadName } from './weights';

export type WeightSource = (name: string) => WeightTensor;

/**
 * MatMulNBits' accuracy_level: 4 quantizes the activations to int8 per block and multiplies in integers, which runs
 * at the memory bandwidth for one token and several times float32's rate for prompt chunks (bench-results/); 0
 * (float32 compute) is pathologically slow with 8-bit weights.
 */
export const matMulNBitsAccuracy = 4;

/**
 * onnxruntime's fused CPU kernels for the small ops around the matmuls. At one token a layer graph's time beyond its
 * weight reads is node dispatch (microseconds each), so fewer nodes is the gain (bench/layer-decode.ts).
 */
export interface FusedOps {
  /** RMSNorm as SimplifiedLayerNormalization, and residual add + RMSNorm as com.microsoft SkipSimplifiedLayerNormalization. */
  norm?: boolean;
  /** RoPE (rotate_half) as com.microsoft RotaryEmbedding instead of Slice/Mul/Sub/Add/Concat per tensor. */
  rope?: boolean;
  /** A linear layer's bias as MatMulNBits' own bias input instead of an Add. */
  bias?: boolean;
  /** Graph outputs named at the node that makes them (no Identity copies). */
  outputs?: boolean;
  /**
   * With `rope`: the graph takes cos/sin as RotaryEmbedding's [n, D/2] tables and returns q and k in its
   * [1, n, heads·D] layout (the same floats), so no Reshape runs around it (4 nodes a layer fewer).
   */
  ropeIo?: boolean;
}

/**
 * The fused kernels graphs are built with unless GraphOptions say otherwise: all of them (bench-results/layer-decode.md).
 * SNOUT_FUSED=0 builds the unfused graphs, for before/after runs of whole models (`snout bench peer`).
 */
export function defaultFusedOps(): FusedOps {
  if (process.env.SNOUT_FUSED === '0') return {};
  return { norm: true, rope: true, bias: true, outputs: true, ropeIo: process.env.SNOUT_FUSED_ROPE_IO !== '0' };
}

/** Whether a graph built with these options takes cos/sin as [n, D/2] (else [n, 1, D/2]): see FusedOps.ropeIo. */
export const ropeTables2d = (fused: FusedOps): boolean => !!(fused.rope && fused.ropeIo);

/** Per-graph build options. */
export interface GraphOptions {
  /** MatMulNBits accuracy_level (default matMulNBitsAccuracy); 0 computes in float32, which tests use to check the packed weights exactly. */
  accuracyLevel?: number;
  /** Fused kernels (default: defaultFusedOps()). */
  fused?: FusedOps;
  /**
   * Pre-attention graphs also hash the query (MagicPIG's SimHash, spec §3) of rows [q_hash_start, n) of q, so a
   * sampled decode step gets its codes from the same onnxruntime run instead of a graph call of its own.
   */
  queryHash?: SimHashWeights;
  /**
   * Graphs with a post-attention half can also compute that layer's attention themselves, for an exact decode step
   * (one query row) over a float32 copy of the layer's K/V that the runner feeds (decodeAttentionNodes below): the
   * step then needs no attention call of its own between two graph runs.
   */
  decodeAttention?: boolean;
}
const graphOptions = new WeakMap<GraphBuilder, GraphOptions>();

/** A 1-D weight (norms, biases): sources always give these as float32. */
function vector(w: WeightTensor, name: string): Float32Array {
  if (isQuant(w)) throw new Error(`${name}: a 1-D weight cannot be quantized`);
  return w;
}

/** Graph input/output names shared with the runner. */
export const io = {
  ids: 'ids', embeds: 'embeds', hidden: 'hidden', logits: 'logits',
  x: 'x', attn: 'attn', cos: 'cos', sin: 'sin', xOut: 'x_out', q: 'q', k: 'k', v: 'v',
  qHashStart: 'q_hash_start', qCodes: 'q_codes',
  attnQ: 'attn_q', attnKeys: 'attn_k', attnValuesT: 'attn_vt', attnPad: 'attn_pad',
} as const;

const fusedOf = (g: GraphBuilder): FusedOps => graphOptions.get(g)?.fused ?? defaultFusedOps();

function rmsNorm(g: GraphBuilder, x: string, weight: Float32Array, eps: number, stem: string): string {
  if (fusedOf(g).norm) {
    // onnxruntime registers this contrib kernel in the default ONNX domain (version 1).
    return g.node('SimplifiedLayerNormalization', [x, g.initializer(`${stem}_weight`, weight, [weight.length])], {
      attrs: { axis: attr.i(-1), epsilon: attr.f(eps) }, name: stem,
    })[0];
  }
  // transformers LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · w. This Pow/ReduceMean/Add/Sqrt/Div/Mul chain is the
  // pattern onnxruntime fuses into its SimplifiedLayerNormalization kernel.
  const sq = g.op('Pow', [x, g.float(`${stem}_two`, 2)]);
  const mean = g.op('ReduceMean', [sq], { axes: attr.ints([-1]), keepdims: attr.i(1) });
  const std = g.op('Sqrt', [g.op('Add', [mean, g.float(`${stem}_eps`, eps)])]);
  const normed = g.op('Div', [x, std]);
  return g.op('Mul', [normed, g.initializer(`${stem}_weight`, weight, [weight.length])], undefined, stem);
}

/**
 * sum = x + delta and RMSNorm(sum): one SkipSimplifiedLayerNormalization node when fused (its 4th output is the
 * sum), else an Add and the norm chain. `sumName` names the sum (a graph output).
 */
function residualNorm(g: GraphBuilder, x: string, delta: string, weight: Float32Array, eps: number, stem: string, sumName?: string): { sum: string; normed: string } {
  if (fusedOf(g).norm) {
    const normed = g.reserve(stem);
    const sum = sumName ?? g.reserve(`${stem}_sum`);
    g.node('SkipSimplifiedLayerNormalization', [x, delta, g.initializer(`${stem}_weight`, weight, [weight.length])], {
      domain: 'com.microsoft', outputs: [normed, '', '', sum], attrs: { epsilon: attr.f(eps) }, name: stem,
    });
    return { sum, normed };
  }
  const sum = g.op('Add', [x, delta], undefined, `${stem}_residual`);
  return { sum, normed: rmsNorm(g, sum, weight, eps, stem) };
}

/**
 * y = x · Wᵀ (+ b) with W stored [out, in] as in the checkpoint: float32 through Gemm (transB avoids a transposed
 * copy), packed through MatMulNBits, plus the per-block offsets as blocksum(x) · offsetsᵀ when the format has them.
 */
function linear(g: GraphBuilder, x: string, w: WeightTensor, outFeatures: number, inFeatures: number, stem: string, bias?: Float32Array): string {
  if (!isQuant(w)) {
    const inputs = [x, g.initializer(`${stem}_weight`, w, [outFeatures, inFeatures])];
    if (bias) inputs.push(g.initializer(`${stem}_bias`, bias, [outFeatures]));
    return g.op('Gemm', inputs, { transB: attr.i(1) }, stem);
  }
  if (w.N !== outFeatures || w.K !== inFeatures) throw new Error(`${stem}: packed weight is [${w.N}, ${w.K}], expected [${outFeatures}, ${inFeatures}]`);
  const nb = blocksPerRow(w);
  const rb = rowBytes(w);
  const inputs = [
    x,
    g.initializer(`${stem}_qweight`, w.data, [w.N, nb, (w.blockSize * w.bits) / 8], 'uint8'),
    g.initializer(`${stem}_scales`, w.scales, [w.N * nb]),
  ];
  if (w.zeroPoints) inputs.push(g.initializer(`${stem}_zero_points`, w.zeroPoints, [w.N * rb.zeroPoints], 'uint8'));
  // MatMulNBits' optional inputs: zero_points, g_idx, bias ('' = absent).
  const ownBias = bias && fusedOf(g).bias;
  if (ownBias) inputs.push(w.zeroPoints ? inputs.pop()! : '', '', g.initializer(`${stem}_bias`, bias, [outFeatures]));
  let y = g.node('MatMulNBits', inputs, {
    domain: 'com.microsoft',
    name: stem,
    attrs: { K: attr.i(w.K), N: attr.i(w.N), bits: attr.i(w.bits), block_size: attr.i(w.blockSize), accuracy_level: attr.i(graphOptions.get(g)?.accuracyLevel ?? matMulNBitsAccuracy) },
  })[0];
  if (w.offsets) {
    // Σ_k x[k]·(s·q + o) = MatMulNBits(x) + Σ_b o[b] · Σ_{k in b} x[k].
    const blocks = g.op('Reshape', [x, g.int64s(`${stem}_block_shape`, [-1, nb, w.blockSize])]);
    const sums = g.op('ReduceSum', [blocks, g.int64s(`${stem}_block_axis`, [2])], { keepdims: attr.i(0) });
    const shift = g.op('Gemm', [sums, g.initializer(`${stem}_offsets`, w.offsets, [w.N, nb])], { transB: attr.i(1) });
    y = g.op('Add', [y, shift]);
  }
  return bias && !ownBias ? g.op('Add', [y, g.initializer(`${stem}_bias`, bias, [outFeatures])], undefined, stem) : y;
}

function concatFloat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Rows of several packed matrices stacked into one, when they share bits, blocks, K and which arrays they carry. */
function concatQuant(parts: QuantMatrix[]): QuantMatrix | undefined {
  const [a] = parts;
  const same = parts.every((p) => p.bits === a.bits && p.blockSize === a.blockSize && p.K === a.K &&
    !p.zeroPoints === !a.zeroPoints && !p.offsets === !a.offsets);
  if (!same) return undefined;
  const cat = (arrays: Uint8Array[]) => { const out = new Uint8Array(arrays.reduce((n, x) => n + x.length, 0)); let at = 0; for (const x of arrays) { out.set(x, at); at += x.length; } return out; };
  return {
    kind: 'quant', bits: a.bits, blockSize: a.blockSize, K: a.K, N: parts.reduce((n, p) => n + p.N, 0),
    data: cat(parts.map((p) => p.data)),
    scales: concatFloat(parts.map((p) => p.scales)),
    zeroPoints: a.zeroPoints ? cat(parts.map((p) => p.zeroPoints!)) : undefined,
    offsets: a.offsets ? concatFloat(parts.map((p) => p.offsets!)) : undefined,
  };
}

/**
 * Several linear layers on the same input as one (a single weight read per token), or, when their formats differ
 * (a Q4_K_M file keeps some v projections in Q6_K), one each, concatenated.
 */
function linearStack(g: GraphBuilder, x: string, ws: WeightTensor[], outs: number[], inFeatures: number, stem: string, bias?: Float32Array): string {
  const total = outs.reduce((a, b) => a + b, 0);
  if (ws.every((w) => !isQuant(w))) return linear(g, x, concatFloat(ws as Float32Array[]), total, inFeatures, stem, bias);
  const packed = ws.every(isQuant) ? concatQuant(ws as QuantMatrix[]) : undefined;
  if (packed) return linear(g, x, packed, total, inFeatures, stem, bias);
  const ys = ws.map((w, i) => linear(g, x, w, outs[i], inFeatures, `${stem}_${i}`));
  const y = g.op('Concat', ys, { axis: attr.i(1) });
  return bias ? g.op('Add', [y, g.initializer(`${stem}_bias`, bias, [total])], undefined, stem) : y;
}

/** rotate_half RoPE on [n, heads·D]: returns [n, heads, D] with out = x·cos + rotate_half(x)·sin. */
function rope(g: GraphBuilder, x: string, heads: number, headDim: number, stem: string): string {
  const half = headDim / 2;
  const shaped = g.op('Reshape', [x, g.int64s(`${stem}_shape`, [-1, heads, headDim])]);
  const axis = g.int64s(`${stem}_axis`, [2]);
  const x1 = g.op('Slice', [shaped, g.int64s(`${stem}_s0`, [0]), g.int64s(`${stem}_e0`, [half]), axis]);
  const x2 = g.op('Slice', [shaped, g.int64s(`${stem}_s1`, [half]), g.int64s(`${stem}_e1`, [headDim]), axis]);
  // cos/sin are [n, 1, D/2] and broadcast over heads.
  const first = g.op('Sub', [g.op('Mul', [x1, io.cos]), g.op('Mul', [x2, io.sin])]);
  const second = g.op('Add', [g.op('Mul', [x2, io.cos]), g.op('Mul', [x1, io.sin])]);
  return g.op('Concat', [first, second], { axis: attr.i(2) }, stem);
}

/**
 * The same RoPE as one com.microsoft RotaryEmbedding (interleaved 0 = rotate_half) on [1, n, heads·D], position
 * offset 0 into the chunk's own cos/sin rows ([n, D/2]); `out` names the result: [1, n, heads·D] as the kernel
 * leaves it when `direct` (FusedOps.ropeIo), else reshaped to [n, heads, D].
 */
function ropeFused(g: GraphBuilder, x: string, heads: number, headDim: number, stem: string, tables: { cos: string; sin: string; start: string }, out: string, direct: boolean): string {
  const x3 = g.op('Reshape', [x, g.int64s(`${stem}_in_shape`, [1, -1, heads * headDim])]);
  const r = g.node('RotaryEmbedding', [x3, tables.start, tables.cos, tables.sin], {
    domain: 'com.microsoft', attrs: { interleaved: attr.i(0), num_heads: attr.i(heads) }, name: stem, outputs: direct ? [out] : 1,
  })[0];
  if (direct) return r;
  return g.node('Reshape', [r, g.int64s(`${stem}_out_shape`, [-1, heads, headDim])], { outputs: [out] })[0];
}

/** Pre-attention of layer l from the residual stream x; `normed` is its input RMSNorm when already computed. */
function addPreAttention(g: GraphBuilder, spec: ModelSpec, weight: WeightSource, l: number, x: string, normed?: string): void {
  const { hiddenSize: H, numHeads, numKvHeads, headDim: D } = spec;
  const n = layerWeightNames(spec, l);
  const fused = fusedOf(g);
  const h = normed ?? rmsNorm(g, x, vector(weight(n.inputNorm), n.inputNorm), spec.rmsNormEps, `l${l}_input_norm`);
  const qSize = numHeads * D;
  const kvSize = numKvHeads * D;
  // One matmul for q|k|v: a single weight read per token instead of three.
  const qkvB = n.qBias && n.kBias && n.vBias ? concatFloat([n.qBias, n.kBias, n.vBias].map((b) => vector(weight(b), b))) : undefined;
  const qkv = linearStack(g, h, [weight(n.q), weight(n.k), weight(n.v)], [qSize, kvSize, kvSize], H, `l${l}_qkv`, qkvB);
  const [q, k, v] = g.node('Split', [qkv, g.int64s(`l${l}_qkv_split`, [qSize, kvSize, kvSize])], {
    outputs: fused.outputs ? [g.reserve('q_proj'), g.reserve('k_proj'), io.v] : 3, attrs: { axis: attr.i(1) }, name: `l${l}_qkv_split`,
  });
  const direct = ropeTables2d(fused);
  if (fused.rope) {
    const tables = direct ? { cos: io.cos, sin: io.sin, start: g.int64s(`l${l}_rope_start`, [0]) } : {
      cos: g.op('Reshape', [io.cos, g.int64s(`l${l}_rope_table_shape`, [-1, D / 2])]),
      sin: g.op('Reshape', [io.sin, g.int64s(`l${l}_rope_table_shape`, [-1, D / 2])]),
      start: g.int64s(`l${l}_rope_start`, [0]),
    };
    const dims = (heads: number) => (direct ? [1, 'n', heads * D] : ['n', heads, D]);
    g.output(ropeFused(g, q, numHeads, D, `l${l}_q_rope`, tables, io.q, direct), io.q, 'float32', dims(numHeads));
    g.output(ropeFused(g, k, numKvHeads, D, `l${l}_k_rope`, tables, io.k, direct), io.k, 'float32', dims(numKvHeads));
  } else {
    g.output(rope(g, q, numHeads, D, `l${l}_q_rope`), io.q, 'float32', ['n', numHeads, D]);
    g.output(rope(g, k, numKvHeads, D, `l${l}_k_rope`), io.k, 'float32', ['n', numKvHeads, D]);
  }
  g.output(v, io.v, 'float32', ['n', kvSize]);
  const hash = graphOptions.get(g)?.queryHash;
  if (hash) {
    // The query's SimHash codes [rows·heads, L] for rows [q_hash_start, n): the runner feeds n − 1 when this layer's
    // decode step samples (one row: a [heads, D]·W product) and n otherwise (no row, no work).
    if (hash.d !== D) throw new Error(`query hash for head size ${hash.d} in a model with head size ${D}`);
    g.input(io.qHashStart, 'int64', [1]);
    const rows = g.op('Slice', [io.q, io.qHashStart, g.int64s(`l${l}_q_hash_end`, [2 ** 53]), g.int64s(`l${l}_q_hash_axis`, [direct ? 1 : 0])]);
    const flat = g.op('Reshape', [rows, g.int64s(`l${l}_q_hash_rows`, [-1, D])]);
    g.output(addSimHashNodes(g, flat, hash, `l${l}_q_hash`, io.qCodes), io.qCodes, 'int32', ['r', hash.L]);
  }
}

/**
 * Post-attention of layer l on the residual stream x; returns the new stream (named `xName` when the fused outputs
 * allow) and, when `nextNorm` is given and norms are fused, that norm of it (the next layer's input RMSNorm, fused
 * with the last residual add).
 */
function addPostAttention(g: GraphBuilder, spec: ModelSpec, weight: WeightSource, l: number, x: string, attn: string, xName: string, nextNorm?: { weight: Float32Array; stem: string }): { x: string; normed?: string } {
  const { hiddenSize: H, intermediateSize: I, numHeads, headDim: D } = spec;
  const n = layerWeightNames(spec, l);
  const fused = fusedOf(g);
  const bias = (name?: string) => (name ? vector(weight(name), name) : undefined);
  const o = linear(g, attn, weight(n.o), H, numHeads * D, `l${l}_o`, bias(n.oBias));
  let afterAttn: string, h: string;
  if (fused.norm) {
    ({ sum: afterAttn, normed: h } = residualNorm(g, x, o, vector(weight(n.postNorm), n.postNorm), spec.rmsNormEps, `l${l}_post_norm`));
  } else {
    afterAttn = g.op('Add', [x, o], undefined, `l${l}_attn_residual`);
    h = rmsNorm(g, afterAttn, vector(weight(n.postNorm), n.postNorm), spec.rmsNormEps, `l${l}_post_norm`);
  }
  const gateW = weight(n.gate), upW = weight(n.up);
  let gate: string, up: string;
  if (isQuant(gateW) || isQuant(upW)) {
    // Packed: two matmuls. Splitting one fused output would copy a prompt chunk's [n, 2I] activations, which costs
    // more than quantizing the input twice.
    gate = linear(g, h, gateW, I, H, `l${l}_gate`, bias(n.gateBias));
    up = linear(g, h, upW, I, H, `l${l}_up`, bias(n.upBias));
  } else {
    const guBias = n.gateBias && n.upBias ? concatFloat([bias(n.gateBias)!, bias(n.upBias)!]) : undefined;
    const gu = linear(g, h, concatFloat([gateW, upW]), 2 * I, H, `l${l}_gate_up`, guBias);
    [gate, up] = g.node('Split', [gu, g.int64s(`l${l}_gu_split`, [I, I])], {
      outputs: 2, attrs: { axis: attr.i(1) }, name: `l${l}_gu_split`,
    });
  }
  const swiglu = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up], undefined, `l${l}_swiglu`);
  const down = linear(g, swiglu, weight(n.down), H, I, `l${l}_down`, bias(n.downBias));
  const out = fused.outputs ? xName : undefined;
  if (fused.norm && nextNorm) {
    const { sum, normed } = residualNorm(g, afterAttn, down, nextNorm.weight, spec.rmsNormEps, nextNorm.stem, out);
    return { x: sum, normed };
  }
  return { x: g.node('Add', [afterAttn, down], { outputs: out ? [out] : 1, name: `l${l}_mlp_residual` })[0] };
}

/**
 * Exact attention of one decode step inside the graph (GraphOptions.decodeAttention), per KV head g with its G query
 * heads: scoresᵀ = K_g · (q_g / √D)ᵀ [p, G], softmax over the p keys (axis 0), outᵀ = V_gᵀ · weights [D, G]. Inputs:
 * attn_q [m, heads·D] (the step's query after RoPE, m = 1; m = 0 when the runner computed attention itself),
 * attn_k<g> [p, D] (every cached key of KV head g, the new token's included), attn_vt<g> [D, c] (the values stored
 * transposed, c ≥ p columns: the copy's capacity, columns past p unused) and attn_pad [4] = (0, 0, c − p, 0), the
 * zero rows that stretch the weights to c. With m = 0 all are empty (p = c = 0).
 * Why this way round: MLAS streams a GEMM's A operand from where it lies and packs B, so the long operands (K, and V
 * transposed) are A and the small query/weights B. As Gemm(q, K, transB) and MatMul(weights, V) the two cache
 * operands were B, copied into packed panels every call: at 16K keys that cost more than the WebAssembly step
 * (bench-results/layer-decode.md).
 * The result [m, heads·D] follows the runner's own rows in `attn` [e, heads·D] (e = n, or 0 when m = 1): the layer
 * sees whichever was given. With no rows the nodes cost a few microseconds of dispatch; onnxruntime runs every node
 * whatever is fetched, which is why "none" is zero rows rather than an unused output.
 */
function decodeAttentionNodes(g: GraphBuilder, spec: ModelSpec, attn: string, stem: string): string {
  const { numHeads, numKvHeads, headDim: D } = spec, G = numHeads / numKvHeads;
  g.input(io.attnQ, 'float32', ['m', numHeads * D]);
  g.input(io.attnPad, 'int64', [4]);
  // [m·heads, D], scaled by 1/√D before the dot products (G·D multiplies instead of p·G)
  const heads = g.op('Mul', [g.op('Reshape', [io.attnQ, g.int64s(`${stem}_q_shape`, [-1, D])]), g.float(`${stem}_scale`, 1 / Math.sqrt(D))]);
  const axis = g.int64s(`${stem}_axis`, [0]);
  const outs: string[] = [];
  for (let kv = 0; kv < numKvHeads; kv++) {
    const keys = g.input(`${io.attnKeys}${kv}`, 'float32', ['p', D]);
    const valuesT = g.input(`${io.attnValuesT}${kv}`, 'float32', [D, 'c']);
    const q = g.op('Slice', [heads, g.int64s(`${stem}_q${kv}_start`, [kv * G]), g.int64s(`${stem}_q${kv}_end`, [(kv + 1) * G]), axis]);
    const scoresT = g.op('MatMul', [keys, g.op('Transpose', [q], { perm: attr.ints([1, 0]) })], undefined, `${stem}_scores${kv}`); // [p, G]
    const weights = g.op('Pad', [g.op('Softmax', [scoresT], { axis: attr.i(0) }), io.attnPad]); // [c, G]
    const outT = g.op('MatMul', [valuesT, weights], undefined, `${stem}_out${kv}`); // [D, G]
    outs.push(g.op('Transpose', [outT], { perm: attr.ints([1, 0]) }));
  }
  const own = g.op('Reshape', [g.op('Concat', outs, { axis: attr.i(0) }), g.int64s(`${stem}_out_shape`, [-1, numHeads * D])]);
  return g.op('Concat', [attn, own], { axis: attr.i(0) }, stem);
}

export interface LayerGraphParts {
  /** Post-attention of this layer first. */
  post?: number;
  /** Then pre-attention of this layer. */
  pre?: number;
  /** Start from token ids (embedding lookup inside this graph) instead of x. */
  embed?: boolean;
  /** End with final norm + lm_head on the last position (logits output). */
  head?: boolean;
}

/**
 * One layer graph: [embedding] → post-attention of `post` → pre-attention of `pre` → [final norm + lm_head].
 * Inputs: x [n, H] (or ids [n] with embed), attn [n, heads·D] (with post), cos/sin [n, 1, D/2] (with pre; [n, D/2]
 * with FusedOps.ropeIo). Outputs: x_out [n, H] (with post or embed), q [n, heads, D], k [n, kvHeads, D] ([1, n,
 * heads·D] with ropeIo: the same floats), v [n, kvHeads·D] (with pre),
 * logits [1, V] (with head). With GraphOptions.queryHash and pre, also input q_hash_start [1] (int64) and output
 * q_codes [(n − q_hash_start)·heads, L] (int32). With GraphOptions.decodeAttention and post, attn may have 0 rows and
 * the inputs of decodeAttentionNodes come with it.
 */
export function buildLayerGraph(spec: ModelSpec, weight: WeightSource, parts: LayerGraphParts, options: GraphOptions = {}): Uint8Array {
  const { hiddenSize: H, numHeads, headDim: D } = spec;
  const name = [parts.embed ? 'embed' : '', parts.post !== undefined ? `post${parts.post}` : '',
    parts.pre !== undefined ? `pre${parts.pre}` : '', parts.head ? 'head' : ''].filter(Boolean).join('_');
  const g = new GraphBuilder(name);
  graphOptions.set(g, options);
  let x: string;
  if (parts.embed) {
    g.input(io.ids, 'int64', ['n']);
    x = g.op('Gather', [g.initializer('embed_tokens', vector(weight(embedName), embedName), [spec.vocabSize, H]), io.ids], { axis: attr.i(0) }, 'embeds');
    // The embeddings are the residual stream the next graph adds to.
    if (parts.post === undefined) g.output(x, io.xOut, 'float32', ['n', H]);
  } else {
    x = g.input(io.x, 'float32', ['n', H]);
  }
  let normed: string | undefined;
  if (parts.post !== undefined) {
    let attn = g.input(io.attn, 'float32', [options.decodeAttention ? 'e' : 'n', numHeads * D]);
    if (options.decodeAttention) attn = decodeAttentionNodes(g, spec, attn, `l${parts.post}_attn`);
    const next = parts.pre !== undefined ? layerWeightNames(spec, parts.pre).inputNorm : undefined;
    ({ x, normed } = addPostAttention(g, spec, weight, parts.post, x, attn, io.xOut,
      next ? { weight: vector(weight(next), next), stem: `l${parts.pre}_input_norm` } : undefined));
    g.output(x, io.xOut, 'float32', ['n', H]);
  }
  if (parts.pre !== undefined) {
    const tableDims = ropeTables2d(fusedOf(g)) ? ['n', D / 2] : ['n', 1, D / 2];
    g.input(io.cos, 'float32', tableDims);
    g.input(io.sin, 'float32', tableDims);
    addPreAttention(g, spec, weight, parts.pre, x, normed);
  }
  if (parts.head) {
    const last = g.op('Slice', [x, g.int64s('last_start', [-1]), g.int64s('last_end', [2 ** 53]), g.int64s('last_axis', [0])]);
    g.output(addHead(g, spec, weight, last), io.logits, 'float32', [1, spec.vocabSize]);
  }
  return g.serialize();
}

/** Final RMSNorm + lm_head (the embedding matrix when tied; `tiedTable` when that is already in the graph). */
function addHead(g: GraphBuilder, spec: ModelSpec, weight: WeightSource, hidden: string, tiedTable?: string): string {
  const normed = rmsNorm(g, hidden, vector(weight(finalNormName), finalNormName), spec.rmsNormEps, 'final_norm');
  if (tiedTable) return g.op('Gemm', [normed, tiedTable], { transB: attr.i(1) }, 'logits');
  const head = weight(spec.tieWordEmbeddings ? embedName : lmHeadName);
  // Stem "lm_head", not "logits": a packed head with per-block offsets ends in an Add, and the graph output is then
  // an Identity that must be able to claim the name "logits".
  return linear(g, normed, head, spec.vocabSize, spec.hiddenSize, 'lm_head');
}

/** Final norm + lm_head alone (quantized models: their embedding is looked up outside the graphs). */
export function buildHeadGraph(spec: ModelSpec, weight: WeightSource, options: GraphOptions = {}): Uint8Array {
  const g = new GraphBuilder('head');
  graphOptions.set(g, options);
  g.input(io.hidden, 'float32', ['m', spec.hiddenSize]);
  g.output(addHead(g, spec, weight, io.hidden), io.logits, 'float32', ['m', spec.vocabSize]);
  return g.serialize();
}

/** Embedding lookup and the output head in one graph (shared tied matrix). */
export function buildEmbedHeadGraph(spec: ModelSpec, weight: WeightSource): Uint8Array {
  const { hiddenSize: H, vocabSize: V } = spec;
  const g = new GraphBuilder('embed_head');
  g.input(io.ids, 'int64', ['n']);
  g.input(io.hidden, 'float32', ['m', H]);
  const table = g.initializer('embed_tokens', vector(weight(embedName), embedName), [V, H]);
  g.output(g.op('Gather', [table, io.ids], { axis: attr.i(0) }), io.embeds, 'float32', ['n', H]);
  g.output(addHead(g, spec, weight, io.hidden, spec.tieWordEmbeddings ? table : undefined), io.logits, 'float32', ['m', V]);
  return g.serialize();
}

/** Fusing the embedding into the first graph and the head into the last duplicates a tied matrix; only when small. */
export const fuseEmbedHeadMaxBytes = 64 * 2 ** 20;

/** A serialized ONNX model is one protobuf message, which cannot exceed 2 GiB (no external data through the JS API). */
export const maxGraphBytes = 2 ** 31 - 64 * 2 ** 20;

/**
 * Bytes of the largest graph this spec needs (embedding + head, or one fused layer pair) at `bytesPerWeight` (4 for
 * float32; a packed model holds only the head, no embedding, in its head graph).
 */
export function largestGraphBytes(spec: ModelSpec, bytesPerWeight = 4): { name: string; bytes: number } {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize: V } = spec;
  const embedHead = V * H * (spec.tieWordEmbeddings || bytesPerWeight < 4 ? 1 : 2) * bytesPerWeight;
  const layer = (H * (numHeads + 2 * numKvHeads) * D + numHeads * D * H + 3 * H * I) * bytesPerWeight;
  // A fused graph holds post(l) (o_proj + MLP) and pre(l+1) (q/k/v): at most about one layer's weights.
  return embedHead >= layer ? { name: 'embedding/lm_head', bytes: embedHead } : { name: 'one layer', bytes: layer };
}
