// Per query head, one decode step: the exact set T, then MagicPIG's sampled set (spec §5-8), or the oracle TopK /
// Quest baselines, all folded into one softmax accumulator (the max-shift merge of spec §8). Scratch is owned here
// and only grows (with the index), so a step allocates nothing.
import type { KvArray } from './kv-store';
import type { HeadIndex } from './head-index';
import { PAGE } from './head-index';
import { SoftmaxAcc, accumulateIds, accumulateRange, dotRow, BLOCK } from './softmax-acc';
import { kthLargest } from './select';

/** Where the exact set T and the indexed set I lie for one layer at this step. */
export interface Ranges {
  sinks: number;
  /** I = [sinks, indexedEnd). */
  indexedEnd: number;
  /** T = [0, sinks) ∪ [indexedEnd, length). */
  length: number;
}

export interface HeadInput {
  q: Float32Array;
  qo: number;
  K: KvArray;
  V: KvArray;
  index: HeadIndex;
}

/** Probability that a key at cosine `cos` to q is sampled: spec §6 (K bits, L tables, ≥ 2 collisions). */
export function samplingProbability(cos: number, K: number, L: number): number {
  const c = cos > 1 ? 1 : cos < -1 ? -1 : cos;
  const p = 1 - Math.acos(c) / Math.PI;
  const pk = Math.pow(p, K);
  return 1 - Math.pow(1 - pk, L) - L * pk * Math.pow(1 - pk, L - 1);
}

export class DecodeKernels {
  readonly acc: SoftmaxAcc;
  private readonly block = new Float32Array(BLOCK);
  readonly scale: number;
  counts = new Uint8Array(0);
  ids = new Int32Array(0);
  logits = new Float32Array(0);
  scores = new Float32Array(0);
  work = new Float32Array(0);

  constructor(readonly d: number) {
    this.acc = new SoftmaxAcc(d);
    this.scale = 1 / Math.sqrt(d);
  }

  /** Grow scratch to hold an index of `count` keys (only when the index grows). */
  reserve(count: number): void {
    if (this.counts.length >= count) return;
    const cap = Math.max(count, this.counts.length * 2, 1024);
    this.counts = new Uint8Array(cap);
    this.ids = new Int32Array(cap);
    this.logits = new Float32Array(cap);
    this.scores = new Float32Array(cap);
    this.work = new Float32Array(cap);
  }

  /** acc ← exact attention over T. */
  exact(x: HeadInput, r: Ranges): void {
    this.acc.reset();
    accumulateRange(this.acc, x.q, x.qo, x.K, x.V, 0, Math.min(r.sinks, r.length), this.scale, this.block);
    accumulateRange(this.acc, x.q, x.qo, x.K, x.V, Math.max(r.indexedEnd, r.sinks), r.length, this.scale, this.block);
  }

  /** Ids of I sampled for q (≥ 2 collisions) into this.ids; returns how many. */
  retrieve(x: HeadInput, qCodes: Int32Array): number {
    const t = x.index.tables;
    if (!t || t.count === 0) return 0;
    return t.retrieve(qCodes, 0, this.counts, this.ids);
  }

  /**
   * acc += the m sampled keys in this.ids, each with logit s_i − log(u_i + 1e-4) (spec §7; the 1e-4 is the
   * reference code's stabiliser). Self-normalised: the accumulator's shared denominator divides by Σ w_i over S ∪ T.
   */
  sampled(x: HeadInput, m: number, K: number, L: number): void {
    const { q, qo, K: keys, index } = x, d = this.d, norms = index.norms;
    let qn = 0;
    for (let c = 0; c < d; c++) qn += q[qo + c] * q[qo + c];
    qn = Math.sqrt(qn);
    for (let j = 0; j < m; j++) {
      const i = this.ids[j];
      const dot = dotRow(q, qo, keys, i, d);
      const den = qn * norms[i];
      const u = samplingProbability(den > 0 ? dot / den : 0, K, L);
      this.logits[j] = dot * this.scale - Math.log(u + 1e-4);
    }
    accumulateIds(this.acc, x.V, this.ids, m, this.logits);
  }

  /** acc += the `budget` highest-scoring keys of I (oracle TopK: every score computed). Returns keys kept. */
  topk(x: HeadInput, r: Ranges, budget: number): number {
    const n = r.indexedEnd - r.sinks;
    const b = Math.min(n, Math.max(0, budget));
    if (b === 0) return 0;
    const { q, qo, K } = x, d = this.d;
    for (let j = 0; j < n; j++) {
      const s = dotRow(q, qo, K, r.sinks + j, d) * this.scale;
      this.scores[j] = s;
      this.work[j] = s;
    }
    const tau = kthLargest(this.work, n, b);
    let m = 0, ties = 0;
    for (let j = 0; j < n; j++) if (this.scores[j] > tau) m++;
    ties = b - m; // keys equal to tau that still fit in the budget, first come first kept
    m = 0;
    for (let j = 0; j < n; j++) {
      const s = this.scores[j];
      if (s > tau || (s === tau && ties-- > 0)) { this.ids[m] = r.sinks + j; this.logits[m] = s; m++; }
    }
    accumulateIds(this.acc, x.V, this.ids, m, this.logits);
    return m;
  }

  /** acc += exact attention over the `pages` best Quest pages of I. Returns keys attended. */
  quest(x: HeadInput, r: Ranges, pages: number): number {
    const { q, qo, index } = x, d = this.d;
    const n = r.indexedEnd - r.sinks, total = Math.ceil(n / PAGE);
    const b = Math.min(total, Math.max(0, pages));
    if (b === 0) return 0;
    for (let p = 0; p < total; p++) {
      const o = p * d;
      let s = 0;
      for (let c = 0; c < d; c++) {
        const a = q[qo + c] * index.pageMin[o + c], z = q[qo + c] * index.pageMax[o + c];
        s += a > z ? a : z;
      }
      this.scores[p] = s;
      this.work[p] = s;
    }
    const tau = kthLargest(this.work, total, b);
    let ties = b;
    for (let p = 0; p < total; p++) if (this.scores[p] > tau) ties--;
    let kept = 0;
    for (let p = 0; p < total; p++) {
      const s = this.scores[p];
      if (s > tau || (s === tau && ties-- > 0)) {
        const start = r.sinks + p * PAGE, end = Math.min(r.indexedEnd, start + PAGE);
        accumulateRange(this.acc, q, qo, x.K, x.V, start, end, this.scale, this.block);
        kept += end - start;
      }
    }
    return kept;
  }
}
