// Exact causal attention for a prefill chunk as one ONNX graph (onnxruntime's multi-threaded GEMMs), instead of one
// pass over the cache per query (DenseKernel.causal re-reads a KV head's whole K and V for every query: memory-bound,
// O(n · chunk) bytes). Per KV head g, with the G = numHeads / numKvHeads query heads that read it stacked:
//   S = Q_g Kᵀ  [G, c, n]  (Q pre-scaled by 1/√d)   + causal bias (0 / −∞; only the last c keys need it)
//   O_g = softmax(S) V      [G, c, d]
// K and V are copied once per chunk out of the cache memory (onnxruntime-node rejects SharedArrayBuffer-backed tensors)
// into reused plain buffers: 2·n·d floats per KV head, a memcpy small beside the O(n·c·d) products. A bfloat16 cache
// is widened on that copy (exact: a bfloat16 is the top half of a float32), so it gets the same GEMMs: the per-query
// loop it used to take re-reads the cache for every query and was most of a packed model's prefill at a few thousand
// tokens (bench-results/prefill-bf16.md). The scratch holds one layer's K and V (the largest layer seen) until
// releaseScratch().
// The bias is a constant [c, c] triangle padded on the left with `past` zeros inside the graph, so nothing O(n · c) is
// built in JS. Long contexts split the chunk's queries into sub-chunks so the score matrices stay under SCORE_BUDGET
// floats (still exact: each sub-chunk sees every key it may, no online merge needed).
// Many times faster than the per-query loop on a long prompt (bench-results/attention-decisions.md). onnxruntime's contrib
// GroupQueryAttention was faster per call but needs the past keys restacked per sub-chunk, writes a `present` copy of
// the whole cache and keeps [H, c, n] probabilities at once, so it is not used.
// Bits: outputs agree with causal() and with a float64 reference to float32 rounding (~1e-7), but not bit for bit,
// and a query's output can differ in the last bit depending on how many queries share its graph call (MLAS picks its
// GEMM path by size: chunks of ≥ 32 queries matched exactly in tests, smaller ones did not).
import { GraphBuilder, attr } from '../runtime/onnx-graph';
import { createSession, ort, type ProviderSetting } from '../runtime/session';
import type { KvStore } from './kv-store';
import { widenRows, type KvArray } from './rows';

/**
 * Score floats alive in one graph call (all KV heads together): 16M floats = 64 MB. Smaller budgets make sub-chunks
 * of a few queries, whose GEMMs are inefficient; larger ones gained nothing (bench-results/attention-decisions.md).
 */
export const SCORE_BUDGET = 1 << 24;

/** One compiled graph per head shape and provider, shared by every sequence (session.run is thread-safe). */
const sessions = new Map<string, Promise<{ session: ort.InferenceSession; provider: string }>>();

export class PrefillGraph {
  private triangles = new Map<number, ort.Tensor>();
  private qBufs: Float32Array[] = [];
  private kBufs: Float32Array[] = [];
  private vBufs: Float32Array[] = [];
  /** Score floats per graph call (SCORE_BUDGET; tests lower it to force sub-chunks). */
  scoreBudget = SCORE_BUDGET;

  private constructor(private readonly session: ort.InferenceSession, readonly numHeads: number,
    readonly numKvHeads: number, readonly headDim: number, readonly provider: string) {}

  /** A graph runner with its own scratch (one per sequence: concurrent sequences must not share buffers). */
  static async create(numHeads: number, numKvHeads: number, headDim: number, provider: ProviderSetting = 'cpu'): Promise<PrefillGraph> {
    const key = `${numHeads}/${numKvHeads}/${headDim}/${provider}`;
    let made = sessions.get(key);
    if (!made) {
      made = PrefillGraph.build(numHeads, numKvHeads, headDim, provider);
      sessions.set(key, made);
      made.catch(() => sessions.delete(key));
    }
    const { session, provider: used } = await made;
    return new PrefillGraph(session, numHeads, numKvHeads, headDim, used);
  }

  private static async build(numHeads: number, numKvHeads: number, headDim: number, provider: ProviderSetting) {
    const G = numHeads / numKvHeads;
    const b = new GraphBuilder('prefill_attention');
    const tri = b.input('tri', 'float32', ['c', 'c']);
    const pads = b.input('pads', 'int64', [4]);
    // bias [c, n] = [0 … 0 | triangle]: key i is visible to chunk query j iff i ≤ past + j.
    const bias = b.op('Pad', [tri, pads], { mode: attr.s('constant') });
    for (let g = 0; g < numKvHeads; g++) {
      const q = b.input(`q${g}`, 'float32', [G, 'c', headDim]);
      const k = b.input(`k${g}`, 'float32', ['n', headDim]);
      const v = b.input(`v${g}`, 'float32', ['n', headDim]);
      const kT = b.op('Transpose', [k], { perm: attr.ints([1, 0]) });
      const s = b.op('Add', [b.op('MatMul', [q, kT]), bias]);
      const p = b.op('Softmax', [s], { axis: attr.i(-1) });
      b.output(b.op('MatMul', [p, v]), `o${g}`, 'float32', [G, 'c', headDim]);
    }
    // 'auto' falling back to cpu was already reported by the model's own sessions: stay quiet then.
    const log = provider === 'auto' ? () => {} : undefined;
    return createSession(b.serialize({ opset: 17 }), provider, { log });
  }

  /** [c, c] additive causal triangle: 0 on and below the diagonal, −∞ above. */
  private triangle(c: number): ort.Tensor {
    let t = this.triangles.get(c);
    if (!t) {
      const data = new Float32Array(c * c);
      for (let j = 0; j < c; j++) for (let i = j + 1; i < c; i++) data[j * c + i] = -Infinity;
      t = new ort.Tensor('float32', data, [c, c]);
      if (this.triangles.size > 8) this.triangles.clear();
      this.triangles.set(c, t);
    }
    return t;
  }

  /** Largest sub-chunk whose scores fit scoreBudget with `keys` keys (at least 1). */
  subChunk(keys: number): number {
    return Math.max(1, Math.floor(this.scoreBudget / (this.numHeads * keys)));
  }

  /**
   * Same contract as DenseKernel.causal: queries for the last n tokens of kv (already appended), query j sees tokens
   * [0, kv.length − n + j]; q/out [n, numHeads, headDim]. kv is float32 or bfloat16.
   */
  async causal(kv: KvStore, q: Float32Array, n: number, out: Float32Array, scale: number): Promise<void> {
    const past = kv.length - n;
    // The keys: the cache's own float32 copy where it keeps one in step (KvStore.mirrorRows: decode attention in the
    // layer graphs), else this graph's scratch copy. The values always in the scratch: the copy holds them transposed.
    const mirror = kv.currentMirror();
    const keys: Float32Array[] = [], values: Float32Array[] = [];
    for (let g = 0; g < this.numKvHeads; g++) {
      keys[g] = mirror ? mirror.keys[g] : copyRows(this.kBufs, g, kv.keys[g], kv.length, this.headDim, kv.heads[g].stride);
      values[g] = copyRows(this.vBufs, g, kv.values[g], kv.length, this.headDim, kv.heads[g].stride); // the copy's are transposed
    }
    const step = this.subChunk(kv.length);
    for (let j0 = 0; j0 < n; j0 += step) await this.run(q, keys, values, j0, Math.min(n, j0 + step), past, out, scale);
  }

  /** Chunk queries [j0, j1): keys [0, past + j1) of keys/values (float32 rows of d per KV head). */
  private async run(q: Float32Array, keyRows: Float32Array[], valueRows: Float32Array[], j0: number, j1: number, past: number,
    out: Float32Array, scale: number): Promise<void> {
    const H = this.numHeads, Hkv = this.numKvHeads, G = H / Hkv, d = this.headDim;
    const c = j1 - j0, keys = past + j1;
    const feeds: Record<string, ort.Tensor> = {
      tri: this.triangle(c),
      pads: new ort.Tensor('int64', BigInt64Array.from([0n, BigInt(past + j0), 0n, 0n]), [4]),
    };
    for (let g = 0; g < Hkv; g++) {
      // q_g [G, c, d] ← q [n, H, d] rows (j, g·G + r), scaled.
      let qb = this.qBufs[g];
      if (!qb || qb.length < G * c * d) qb = this.qBufs[g] = new Float32Array(G * c * d);
      for (let r = 0; r < G; r++) {
        for (let j = 0; j < c; j++) {
          const src = ((j0 + j) * H + g * G + r) * d, dst = (r * c + j) * d;
          for (let x = 0; x < d; x++) qb[dst + x] = q[src + x] * scale;
        }
      }
      feeds[`q${g}`] = new ort.Tensor('float32', qb.subarray(0, G * c * d), [G, c, d]);
      feeds[`k${g}`] = new ort.Tensor('float32', keyRows[g].subarray(0, keys * d), [keys, d]);
      feeds[`v${g}`] = new ort.Tensor('float32', valueRows[g].subarray(0, keys * d), [keys, d]);
    }
    const res = await this.session.run(feeds);
    for (let g = 0; g < Hkv; g++) {
      const o = res[`o${g}`].data as Float32Array;
      for (let r = 0; r < G; r++) {
        for (let j = 0; j < c; j++) {
          const src = (r * c + j) * d, dst = ((j0 + j) * H + g * G + r) * d;
          for (let x = 0; x < d; x++) out[dst + x] = o[src + x];
        }
      }
    }
  }

  /** Drop the scratch copies (they hold one layer's K and V); they are re-made on the next call. */
  releaseScratch(): void {
    this.qBufs = [];
    this.kBufs = [];
    this.vBufs = [];
  }
}

/** `rows` rows of d values from src (rows `stride` apart) packed into bufs[g] as float32 (grown by doubling); returns the view. */
function copyRows(bufs: Float32Array[], g: number, src: KvArray, rows: number, d: number, stride: number): Float32Array {
  const len = rows * d;
  let b = bufs[g];
  if (!b || b.length < len) b = bufs[g] = new Float32Array(Math.max(len, 2 * (b?.length ?? 0)));
  const view = b.subarray(0, len);
  widenRows(src, stride, view, d, 0, rows);
  return view;
}
