// MagicPIG's decode step, fast path: the same algorithm as ../reference/magicpig.ts (read that first), organised for
// memory traffic. Per KV head, each of its query heads lists its exact set T and its sampled set S (spec §1, §5) in the
// head's workspace; then the group attends together: one softmax per query head over [s_T, s_S − log(u_S + 1e-4)],
// which is spec §7's estimator and §8's merge in one (the 1/u weight is the −log u logit offset, applied in the
// `logWeights` kernel, kernels.c, or the TypeScript loop in sampledBlock below).
import { SLOTS, type HeadCache } from '../head-cache';
import type { HeadIndex } from '../head-index';
import { LogWeightTable } from './log-weights';
import { hashHead, listExact, retrieveHead, type DecodeMethod, type DecodeStep } from './method';

/** Sampled rows (all heads of a group together) per block of attend: about 64 KB of f32 K rows, inside L2. */
const BLOCK_ROWS = 128;

/**
 * attend moves a head's softmax shift only when a block's max logit passes it by this much: weights stay ≤ e^20 (far
 * from float32 overflow), and block bounds leave the result unchanged unless that happens.
 */
const RESCALE = 20;

export class MagicPig implements DecodeMethod {
  readonly name = 'magicpig';
  readonly threaded = true;
  private table: LogWeightTable | null = null;
  readonly scale: number;
  /** The last attend's slot-0 max logit and Σ exp(logit − max): its log-sum-exp is lastMax + log(lastZ) (tests). */
  lastMax = -Infinity;
  lastZ = 0;
  /** Per workspace slot: where its list starts, |T|, |S|, its softmax denominator, and block cursors. */
  private readonly at = new Int32Array(SLOTS);
  private readonly nT = new Int32Array(SLOTS);
  private readonly m = new Int32Array(SLOTS);
  private readonly z = new Float64Array(SLOTS);
  /** Per slot: the running softmax shift, |q| and q·k̄. */
  private readonly mx = new Float64Array(SLOTS);
  private readonly qn = new Float64Array(SLOTS);
  private readonly qk = new Float64Array(SLOTS);
  private readonly ptr = new Int32Array(SLOTS);
  private readonly end = new Int32Array(SLOTS);
  private norms: Float32Array<ArrayBufferLike> | null = null;

  constructor(readonly d: number) {
    this.scale = 1 / Math.sqrt(d);
  }

  /**
   * The query heads of KV head g: per head list T and retrieve S into its own part of the workspace (as many heads
   * at once as the workspace holds), then attend for them together. Writes their out rows and used[h] = |S|.
   */
  group(step: DecodeStep, g: number): void {
    const d = this.d, group = step.numHeads / step.numKvHeads, cache = step.caches[g], index = step.indexes[g];
    const obs = step.observer, length = step.ranges.length;
    for (let h0 = g * group, hEnd = h0 + group; h0 < hEnd;) {
      const t0 = obs ? performance.now() : 0;
      let at = 0, s = 0, hashMs = 0;
      // A head's list is at most |T| + |I| = length ids; start a new batch when the next one might not fit.
      for (; h0 + s < hEnd && s < SLOTS && (s === 0 || at + length <= cache.capacity); s++) {
        const h = h0 + s;
        const nT = listExact(step, cache, h, s, at);
        const th = obs ? performance.now() : 0;
        hashHead(step, h);
        if (obs) hashMs += performance.now() - th;
        const m = retrieveHead(step, cache, index, h, at + nT);
        this.list(s, at, nT, m);
        step.used[h] = m;
        at += nT + m;
        if (obs) obs.head(g, nT, index.tables?.walked(step.codes, h * step.L) ?? 0, cache.ids, at - m, at);
      }
      const t1 = obs ? performance.now() : 0;
      this.attend(cache, index, s, step.K, step.L, step.out, h0 * d);
      if (obs) {
        obs.time('hash', hashMs);
        obs.time('retrieve', t1 - t0 - hashMs);
        obs.time('attend', performance.now() - t1);
      }
      h0 += s;
    }
  }

  /** Record slot s's list in the workspace: T at ids[at, at + nT), then its m sampled ids. */
  list(slot: number, at: number, nT: number, m: number): void {
    this.at[slot] = at;
    this.nT[slot] = nT;
    this.m[slot] = m;
  }

  /**
   * Spec §6-8 for the query heads in workspace slots 0..slots−1 of one KV head (lists set by list(), queries in
   * cache.qs), into out rows oo + s·d. Each head keeps its own sampled set and its own softmax over
   * [s_T, s_S − log(u_S + 1e-4)]; what the heads share is memory traffic. The sampled rows are visited in blocks of key
   * ids, every head's rows of a block back to back, and each block is scored, weighted and summed before the next (a
   * running shift per head, flash-decoding style): a row sampled by several heads is fetched once, and a token's value
   * is read right after its key, from the same page (K and V interleave, head-cache.ts). The shift starts at T's max
   * and moves only when a block's max passes it by RESCALE, so the result does not depend on the block bounds unless
   * a logit exceeds T's max by that much.
   */
  attend(c: HeadCache, index: HeadIndex, slots: number, K: number, L: number, out: Float32Array, oo: number): void {
    const d = this.d, ids = c.ids, kbar = index.kbar;
    this.norms = index.norms;
    // The sampled ids of every slot are ascending (retrieval lists them in id order): the blocks walk memory forward.
    let total = 0, lo = 0x7fffffff, hi = -1;
    for (let s = 0; s < slots; s++) {
      const b = this.at[s] + this.nT[s], m = this.m[s];
      if (m === 0) continue;
      if (ids[b] < lo) lo = ids[b];
      if (ids[b + m - 1] > hi) hi = ids[b + m - 1];
      total += m;
    }
    let table = this.table;
    if (!table || table.K !== K || table.L !== L) table = this.table = new LogWeightTable(K, L);
    if (c.hasMath) c.useLogWeights(table.t);
    // The exact set T of every head: scores q·k/√d, shift = their max, weights, values.
    for (let s = 0; s < slots; s++) {
      // Keys are stored raw (sequence.ts); the sampling probability needs the angle to k̃_i = k_i − k̄:
      // q·k̃_i = q·k_i − q·k̄, and norms hold |k̃_i|.
      const q = c.qs[s], a = this.at[s], b = a + this.nT[s];
      let qn = 0, qk = 0;
      for (let j = 0; j < d; j++) qn += q[j] * q[j];
      if (kbar) for (let j = 0; j < d; j++) qk += q[j] * kbar[j];
      this.qn[s] = Math.sqrt(qn);
      this.qk[s] = qk;
      const mx = c.dotsScaledAt(s, a, this.nT[s], this.scale);
      this.mx[s] = mx;
      this.z[s] = c.expAt(a, b - a, mx);
      c.os[s].fill(0);
      c.axpyAt(s, a, this.nT[s]);
    }
    // The sampled sets S, block by block of key ids.
    if (total > 0) {
      const ptr = this.ptr, end = this.end;
      const span = Math.max(64, Math.floor(((hi - lo + 1) * BLOCK_ROWS) / total));
      for (let s = 0; s < slots; s++) { ptr[s] = this.at[s] + this.nT[s]; end[s] = ptr[s] + this.m[s]; }
      for (let limit = lo + span; ; limit += span) {
        let left = false;
        for (let s = 0; s < slots; s++) {
          const p = ptr[s], E = end[s];
          let e = p;
          while (e < E && ids[e] < limit) e++;
          if (e > p) {
            this.sampledBlock(c, table, s, p, e);
            ptr[s] = e;
          }
          if (e < E) left = true;
        }
        if (!left) break;
      }
    }
    for (let s = 0; s < slots; s++) {
      const o = c.os[s], inv = this.z[s] > 0 ? 1 / this.z[s] : 0, r = oo + s * d;
      for (let j = 0; j < d; j++) out[r + j] = o[j] * inv;
    }
    this.lastMax = this.mx[0];
    this.lastZ = this.z[0];
  }

  /**
   * Slot s's sampled ids [p, e): logits s_i − log(u_i + 1e-4) (spec §7), weights under the running shift, values.
   * |k̃_i| comes from the index's norms (computed once, when key i was indexed); on the SIMD path they are gathered
   * into the workspace for the logWeights kernel (measured against computing them from the row: bench-results/attention-decisions.md).
   */
  private sampledBlock(c: HeadCache, table: LogWeightTable, s: number, p: number, e: number): void {
    const ids = c.ids, logits = c.logits, qn = this.qn[s], qk = this.qk[s], norms = this.norms!, gathered = c.norms;
    let bmax = -Infinity;
    c.dotsAt(s, p, e - p);
    if (c.hasMath && gathered) {
      for (let j = p; j < e; j++) gathered[j] = norms[ids[j]];
      bmax = c.logWeightsAt(p, e - p, qn, qk, this.scale);
    } else {
      for (let j = p; j < e; j++) {
        const dot = logits[j], den = qn * norms[ids[j]];
        const x = dot * this.scale - table.at(den > 0 ? (dot - qk) / den : 0); // the 1/u weight, as a logit offset
        logits[j] = x;
        if (x > bmax) bmax = x;
      }
    }
    let mx = this.mx[s];
    if (bmax > mx + RESCALE || mx === -Infinity) {
      const r = mx === -Infinity ? 0 : Math.exp(mx - bmax), o = c.os[s];
      this.z[s] *= r;
      for (let j = 0; j < this.d; j++) o[j] *= r;
      this.mx[s] = mx = bmax;
    }
    this.z[s] += c.expAt(p, e - p, mx);
    c.axpyAt(s, p, e - p);
  }
}
