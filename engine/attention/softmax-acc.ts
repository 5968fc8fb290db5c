// Exact softmax-weighted sums, accumulated block by block with a running max (numerically stable, O(block) scratch).
// Every attention method reduces to this: a set of (logit, value row) pairs folded into one accumulator. MagicPIG's
// merge of the exact set T with the sampled set S (spec §8) is the same accumulator fed T's scores and S's
// importance-corrected scores s_i − log(u_i + 1e-4); the max-shift is the running max.
import { axpyRow, dotRow, type KvArray } from './rows';

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
