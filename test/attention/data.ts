// Test data for the attention tests (seeded streams, rows of a [n, heads, d] tensor, error measures). The float64
// references they check against are engine/attention/reference/ (sharing no code with the kernels).

import type { AttentionShape, SequenceAttention } from '../../engine/attention';

/** Deterministic uniform [0,1) stream for test data (xorshift32; independent of the engine's PRNG). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function gaussians(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12), v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Row r of head h in a row-major [n, heads, d] tensor. */
export function row(t: Float32Array, r: number, h: number, heads: number, d: number): Float32Array {
  return t.subarray((r * heads + h) * d, (r * heads + h + 1) * d);
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Synthetic attention inputs that are a function of (token, position, layer) alone, so two sequences fed the same
 * tokens hold the same cache: `rows` gives q, k, v (keys share an offset, as real keys do, so k̄ matters); `feed` runs
 * tokens [start, start + ids.length) through every layer as one forward call each and returns the layer outputs.
 */
export function tokenStream(shape: AttentionShape) {
  const { numHeads: H, numKvHeads: G, headDim: d } = shape;
  const rows = (id: number, pos: number, layer: number) => {
    const rand = rng(1 + id * 7919 + pos * 104729 + layer * 15485863);
    const k = gaussians(G * d, rand);
    for (let i = 0; i < k.length; i++) k[i] += 1.5 * Math.sin(i + layer);
    return { q: gaussians(H * d, rand), k, v: gaussians(G * d, rand) };
  };
  const feed = (attn: SequenceAttention, ids: readonly number[], start: number): Float32Array[] => {
    const n = ids.length, outs: Float32Array[] = [];
    for (let l = 0; l < shape.numLayers; l++) {
      const q = new Float32Array(n * H * d), k = new Float32Array(n * G * d), v = new Float32Array(n * G * d);
      ids.forEach((id, j) => {
        const r = rows(id, start + j, l);
        q.set(r.q, j * H * d); k.set(r.k, j * G * d); v.set(r.v, j * G * d);
      });
      const out = new Float32Array(n * H * d);
      attn.forward(l, q, k, v, n, out);
      outs.push(out);
    }
    return outs;
  };
  return { rows, feed };
}
