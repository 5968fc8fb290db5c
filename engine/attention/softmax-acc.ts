// Exact softmax-weighted sums, accumulated block by block with a running max (numerically stable, O(block) scratch).
// Every attention method reduces to this: a set of (logit, value row) pairs folded into one accumulator. MagicPIG's
// merge of the exact set T with the sampled set S (spec §8) is the same accumulator fed T's scores and S's
// importance-corrected scores s_i − log(u_i + 1e-4); the max-shift is the running max.
import type { KvArray } from './kv-store';

const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);

/** Keys/values scanned per block: bounds the scratch and keeps the scores in L1/L2. */
export const BLOCK = 2048;

export class SoftmaxAcc {
  /** Running max of the logits seen. */
  m = -Infinity;
  /** Σ exp(logit − m). */
  z = 0;
  /** Σ exp(logit − m) · v. */
  readonly o: Float64Array;
  constructor(readonly d: number) {
    this.o = new Float64Array(d);
  }
  reset(): void {
    this.m = -Infinity;
    this.z = 0;
    this.o.fill(0);
  }
  /** log Σ exp(logit) over everything accumulated (−∞ when empty). */
  lse(): number {
    return this.z > 0 ? this.m + Math.log(this.z) : -Infinity;
  }
  /** Write the normalised output o / z into out[oo..oo+d) (zeros when empty). */
  finish(out: Float32Array, oo: number): void {
    const inv = this.z > 0 ? 1 / this.z : 0;
    for (let c = 0; c < this.d; c++) out[oo + c] = this.o[c] * inv;
  }
  /** Raise the running max to at least `m`, rescaling what was accumulated. */
  rebase(m: number): void {
    if (m <= this.m) return;
    if (this.z > 0) {
      const r = Math.exp(this.m - m);
      this.z *= r;
      for (let c = 0; c < this.d; c++) this.o[c] *= r;
    }
    this.m = m;
  }
}

/** q[qo..qo+d) · K[row i]. Float32 with four partial sums (V8 keeps them in registers; ~1.5× a single sum). */
export function dotRow(q: Float32Array, qo: number, K: KvArray, i: number, d: number): number {
  return K instanceof Float32Array ? dotF32(q, qo, K, i * d, d) : dotBf16(q, qo, K, i * d, d);
}

export function dotF32(q: Float32Array, qo: number, K: Float32Array, ko: number, d: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, c = 0;
  for (; c + 3 < d; c += 4) {
    s0 += q[qo + c] * K[ko + c];
    s1 += q[qo + c + 1] * K[ko + c + 1];
    s2 += q[qo + c + 2] * K[ko + c + 2];
    s3 += q[qo + c + 3] * K[ko + c + 3];
  }
  for (; c < d; c++) s0 += q[qo + c] * K[ko + c];
  return s0 + s1 + s2 + s3;
}

function dotBf16(q: Float32Array, qo: number, K: Uint16Array, ko: number, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) {
    castU32[0] = K[ko + c] << 16;
    s += q[qo + c] * castF32[0];
  }
  return s;
}

/** o += p · V[row i]. */
export function axpyRow(o: Float64Array, p: number, V: KvArray, i: number, d: number): void {
  const vo = i * d;
  if (V instanceof Float32Array) {
    let c = 0;
    for (; c + 3 < d; c += 4) {
      o[c] += p * V[vo + c];
      o[c + 1] += p * V[vo + c + 1];
      o[c + 2] += p * V[vo + c + 2];
      o[c + 3] += p * V[vo + c + 3];
    }
    for (; c < d; c++) o[c] += p * V[vo + c];
  } else {
    for (let c = 0; c < d; c++) {
      castU32[0] = V[vo + c] << 16;
      o[c] += p * castF32[0];
    }
  }
}

/** Fold keys [start, end) into acc with logits scale · q·k_i. `scores` needs BLOCK entries. */
export function accumulateRange(acc: SoftmaxAcc, q: Float32Array, qo: number, K: KvArray, V: KvArray,
  start: number, end: number, scale: number, scores: Float32Array): void {
  const d = acc.d;
  for (let b = start; b < end; b += BLOCK) {
    const e = Math.min(end, b + BLOCK);
    let bm = -Infinity;
    for (let i = b; i < e; i++) {
      const s = dotRow(q, qo, K, i, d) * scale;
      scores[i - b] = s;
      if (s > bm) bm = s;
    }
    acc.rebase(bm);
    const m = acc.m;
    let z = 0;
    for (let i = b; i < e; i++) {
      const p = Math.exp(scores[i - b] - m);
      z += p;
      axpyRow(acc.o, p, V, i, d);
    }
    acc.z += z;
  }
}

/**
 * Fold the keys ids[0..count) into acc with logits scale · q·k_i − logBias[j] (logBias null = 0). `scores` needs
 * `count` entries (callers size it to the index); the caller may pass precomputed logits via `precomputed`.
 */
export function accumulateIds(acc: SoftmaxAcc, V: KvArray, ids: Int32Array, count: number, logits: Float32Array): void {
  const d = acc.d;
  let bm = -Infinity;
  for (let j = 0; j < count; j++) if (logits[j] > bm) bm = logits[j];
  if (bm === -Infinity) return;
  acc.rebase(bm);
  const m = acc.m;
  let z = 0;
  for (let j = 0; j < count; j++) {
    const p = Math.exp(logits[j] - m);
    z += p;
    axpyRow(acc.o, p, V, ids[j], d);
  }
  acc.z += z;
}
