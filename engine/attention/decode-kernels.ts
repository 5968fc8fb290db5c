// Per query head, one decode step of a sampled layer. Every method gathers a list of key ids into the KV head's
// workspace — the exact set T first (sinks, then the tail), then MagicPIG's sampled set S (spec §5), or the TopK /
// Quest selection — scores them with one kernel call, turns scores into logits (S: s_i − log(u_i + 1e-4), spec §7),
// and finishes with one softmax over the whole list. A single softmax over [s_T, s_S − log u_S] is exactly the
// max-shift merge of spec §8. The kernels (dots, axpy) are WebAssembly SIMD where the cache allows (head-cache.ts).
import { SLOTS, type HeadCache } from './head-cache';
import type { HeadIndex } from './head-index';
import type { SimHash } from './simhash';
import { PAGE } from './head-index';
import { kthLargest } from './select';
import { LOG_WEIGHT_POINTS } from './wasm-kernels';

/** Where the exact set T and the indexed set I lie for one layer at this step. */
export interface Ranges {
  sinks: number;
  /** I = [sinks, indexedEnd). */
  indexedEnd: number;
  /** T = [0, sinks) ∪ [indexedEnd, length). */
  length: number;
}

export interface HeadInput {
  /** The query row (copied into cache.q by load()). */
  q: Float32Array;
  qo: number;
  cache: HeadCache;
  index: HeadIndex;
}

/** Probability that a key at cosine `cos` to q is sampled: spec §6 (K bits, L tables, ≥ 2 collisions). */
export function samplingProbability(cos: number, K: number, L: number): number {
  const c = cos > 1 ? 1 : cos < -1 ? -1 : cos;
  const p = 1 - Math.acos(c) / Math.PI;
  let pk = p;
  for (let b = 1; b < K; b++) pk *= p; // p^K by K−1 products: cheaper than Math.pow for K ≤ 16
  const a = 1 - pk, aL1 = Math.exp((L - 1) * Math.log1p(-pk)); // (1 − p^K)^(L−1)
  return 1 - a * aL1 - L * pk * aL1;
}

/**
 * arccos by Abramowitz & Stegun 4.4.46 (|error| ≤ 2e-8 rad): √(1−x)·Σ a_k x^k on [0, 1], π − acos(−x) below 0.
 * Several times cheaper than Math.acos, and far inside the table's 1e-4 budget.
 */
function acos(x: number): number {
  const a = x < 0 ? -x : x;
  const r = Math.sqrt(1 - a) * (1.5707963050 + a * (-0.2145988016 + a * (0.0889789874 + a * (-0.0501743046
    + a * (0.0308918810 + a * (-0.0170881256 + a * (0.0066700901 + a * -0.0012624911)))))));
  return x < 0 ? Math.PI - r : r;
}

/** Sampled rows (all heads of a group together) per block of attendGroup: ~64 KB of f32 K rows, well inside L2. */
const BLOCK_ROWS = 128;

/**
 * attendGroup moves a head's softmax shift only when a block's max logit passes it by this much: weights stay
 * ≤ e^20 (far from float32 overflow), and block bounds leave the result unchanged unless that happens.
 */
const RESCALE = 20;

/** Points of the log-weight table over θ ∈ [0, π] (see LogWeightTable). */
const TABLE = LOG_WEIGHT_POINTS;

/**
 * log(u(θ) + 1e-4) for fixed K, L, tabulated over the angle θ = arccos(cos) and linearly interpolated.
 * Deviation from spec §6-7 (numerical only): the exact formula costs ~190 ns per sampled key (exp, log1p, log) —
 * a quarter of a 64K step — the table ~20 ns. In θ the function is smooth (its slope is bounded by 2K/(π·p)), so with
 * 16384 points the interpolation error stays below 1e-4 in log-weight (checked in test/attention/magicpig.test.ts).
 */
export class LogWeightTable {
  readonly t = new Float32Array(TABLE + 2); // 64 KB: stays in L2
  constructor(readonly K: number, readonly L: number) {
    for (let i = 0; i <= TABLE + 1; i++) {
      const theta = Math.min(Math.PI, (Math.PI * i) / TABLE);
      this.t[i] = Math.log(samplingProbability(Math.cos(theta), K, L) + 1e-4);
    }
  }
  /** log(u + 1e-4) for a key at cosine `cos` to the query. */
  at(cos: number): number {
    const c = cos > 1 ? 1 : cos < -1 ? -1 : cos;
    const x = acos(c) * (TABLE / Math.PI), i = x | 0, t = this.t;
    return t[i] + (x - i) * (t[i + 1] - t[i]);
  }
}

export class DecodeKernels {
  private table: LogWeightTable | null = null;
  readonly scale: number;
  /** The last softmax's max logit and Σ exp(logit − max): its log-sum-exp is lastMax + log(lastZ). */
  lastMax = -Infinity;
  lastZ = 0;
  scores = new Float32Array(0);
  work = new Float32Array(0);
  /** Per workspace slot: where its list starts, |T|, |S|, its softmax denominator, and block cursors. */
  private readonly at = new Int32Array(SLOTS);
  private readonly nT = new Int32Array(SLOTS);
  private readonly m = new Int32Array(SLOTS);
  private readonly z = new Float64Array(SLOTS);
  /** Per slot: the running softmax shift, |q| and q·k̄ (attendGroup). */
  private readonly mx = new Float64Array(SLOTS);
  private readonly qn = new Float64Array(SLOTS);
  private readonly qk = new Float64Array(SLOTS);
  private norms: Float32Array<ArrayBufferLike> | null = null;
  private readonly ptr = new Int32Array(SLOTS);
  private readonly end = new Int32Array(SLOTS);
  /** magicpigGroup's per-head input, reused across steps (its fields are set per call). */
  readonly input: HeadInput = { q: new Float32Array(0), qo: 0, cache: null as unknown as HeadCache, index: null as unknown as HeadIndex };

  constructor(readonly d: number) {
    this.scale = 1 / Math.sqrt(d);
  }

  /** Grow scratch to hold an index of `count` keys (only when the index grows). */
  reserve(count: number): void {
    if (this.scores.length >= count) return;
    const cap = Math.max(count, this.scores.length * 2, 1024);
    this.scores = new Float32Array(cap);
    this.work = new Float32Array(cap);
  }

  /** Copy the query into workspace slot `slot` and list T's ids from ids[at]; returns |T|. */
  begin(x: HeadInput, r: Ranges, slot = 0, at = 0): number {
    const c = x.cache, ids = c.ids;
    const cq = c.qs[slot], q = x.q, qo = x.qo;
    for (let j = 0; j < this.d; j++) cq[j] = q[qo + j];
    let n = at;
    for (let i = 0, e = Math.min(r.sinks, r.length); i < e; i++) ids[n++] = i;
    for (let i = Math.max(r.indexedEnd, r.sinks); i < r.length; i++) ids[n++] = i;
    return n - at;
  }

  /** Append the ids of I sampled for q (≥ 2 collisions) after the first `at` entries; returns how many. */
  retrieve(x: HeadInput, qCodes: Int32Array, qo: number, at: number): number {
    const t = x.index.tables;
    if (!t || t.count === 0) return 0;
    return t.retrieve(qCodes, qo, x.cache.ids, at);
  }

  /** Record slot s's list in the workspace: T at ids[at, at + nT), then its m sampled ids. */
  list(slot: number, at: number, nT: number, m: number): void {
    this.at[slot] = at;
    this.nT[slot] = nT;
    this.m[slot] = m;
  }

  /**
   * Score T (first nT ids) and S (next m) and softmax them into out[oo..oo+d): T with s_i = q·k_i/√d, S with
   * s_i − log(u_i + 1e-4) (spec §7; the 1e-4 is the reference code's stabiliser). Self-normalised: one denominator.
   */
  magicpig(x: HeadInput, nT: number, m: number, K: number, L: number, out: Float32Array, oo: number): void {
    this.list(0, 0, nT, m);
    this.attendGroup(x.cache, x.index, 1, K, L, out, oo);
  }

  /**
   * MagicPIG's attention (spec §7-8) for the query heads in workspace slots 0..slots−1 of one KV head (lists set by
   * list(), queries in cache.qs), into out rows oo + s·d. Each head keeps its own sampled set and its own softmax over
   * [s_T, s_S − log(u_S + 1e-4)] (= the max-shift merge of spec §8); what the heads share is memory traffic. The
   * sampled rows are visited in blocks of key ids, every head's rows of a block back to back, and each block is
   * scored, weighted and summed before the next (a running max per head, flash-decoding style): a row sampled by
   * several heads is fetched once, and a token's value is read right after its key, from the same page (K and V
   * interleave, head-cache.ts), while that page's translation is still cached. The gathers are bound by page walks
   * (README "Decisions"). The shift starts at T's max and moves only when a block's max passes it by RESCALE, so
   * the result does not depend on the block bounds unless a logit exceeds T's max by that much.
   */
  attendGroup(c: HeadCache, index: HeadIndex, slots: number, K: number, L: number, out: Float32Array, oo: number): void {
    const d = this.d, ids = c.ids, logits = c.logits, kbar = index.kbar;
    this.norms = index.norms;
    // Gather in address order (the K/V row reads run forward through memory and the hardware prefetcher helps:
    // measured ~17% off the step at 16K): retrieval lists the sampled ids ascending (lsh-tables.ts).
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
      c.dotsAt(s, a, this.nT[s]);
      let mx = -Infinity;
      for (let j = a; j < b; j++) {
        const x = logits[j] * this.scale;
        logits[j] = x;
        if (x > mx) mx = x;
      }
      this.mx[s] = mx;
      this.z[s] = c.expAt(a, b - a, mx);
      c.os[s].fill(0);
      c.axpyAt(s, a, this.nT[s]);
    }
    // The sampled sets S, block by block.
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
   * |k̃_i| comes from the index's norms (computed once, when key i was indexed). On the SIMD path they are gathered
   * into the workspace for the logWeights kernel; computing |k − k̄| from the row in hand instead (a "dotsNorm" kernel,
   * the score and the norm in one pass) saved that 4-byte gather, but once the score kernel loaded q once per 4 rows
   * it cost more than the gather: steps 1.05-1.10× faster with the gather (f32, 1 thread, 16K-128K, side by side).
   */
  private sampledBlock(c: HeadCache, table: LogWeightTable, s: number, p: number, e: number): void {
    const ids = c.ids, logits = c.logits, qn = this.qn[s], qk = this.qk[s], norms = this.norms!, gathered = c.norms;
    let bmax = -Infinity;
    c.dotsAt(s, p, e - p);
    if (c.hasMath && gathered) {
      // The SIMD path: the norms gathered, then logits and weights as WebAssembly loops.
      for (let j = p; j < e; j++) gathered[j] = norms[ids[j]];
      bmax = c.logWeightsAt(p, e - p, qn, qk, this.scale);
    } else {
      for (let j = p; j < e; j++) {
        const dot = logits[j], den = qn * norms[ids[j]];
        const x = dot * this.scale - table.at(den > 0 ? (dot - qk) / den : 0);
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

  /** Oracle TopK: T plus the `budget` highest-scoring keys of I (every score computed). Returns keys kept. */
  topk(x: HeadInput, r: Ranges, nT: number, budget: number, out: Float32Array, oo: number): number {
    const c = x.cache, n = r.indexedEnd - r.sinks, b = Math.min(n, Math.max(0, budget));
    if (b > 0) {
      c.dotsRange(r.sinks, n);
      const lg = c.logits, sc = this.scores, wk = this.work;
      for (let j = 0; j < n; j++) { sc[j] = lg[j]; wk[j] = lg[j]; }
      const tau = kthLargest(this.work, n, b);
      let ties = b;
      for (let j = 0; j < n; j++) if (this.scores[j] > tau) ties--;
      let m = nT;
      for (let j = 0; j < n; j++) {
        const s = this.scores[j];
        if (s > tau || (s === tau && ties-- > 0)) c.ids[m++] = r.sinks + j; // ties: first come, first kept
      }
    }
    this.exact(c, nT + b, out, oo);
    return b;
  }

  /** Quest: T plus every key of the `pages` best pages of I (page score Σ_j max(q_j·min_j, q_j·max_j)). */
  quest(x: HeadInput, r: Ranges, nT: number, pages: number, out: Float32Array, oo: number): number {
    const { q, qo, index } = x, c = x.cache, d = this.d;
    const n = r.indexedEnd - r.sinks, total = Math.ceil(n / PAGE), b = Math.min(total, Math.max(0, pages));
    let m = nT;
    if (b > 0) {
      for (let p = 0; p < total; p++) {
        const o = p * d;
        let s = 0;
        for (let j = 0; j < d; j++) {
          const lo = q[qo + j] * index.pageMin[o + j], hi = q[qo + j] * index.pageMax[o + j];
          s += lo > hi ? lo : hi;
        }
        this.scores[p] = s;
        this.work[p] = s;
      }
      const tau = kthLargest(this.work, total, b);
      let ties = b;
      for (let p = 0; p < total; p++) if (this.scores[p] > tau) ties--;
      for (let p = 0; p < total; p++) {
        const s = this.scores[p];
        if (s > tau || (s === tau && ties-- > 0)) {
          for (let i = r.sinks + p * PAGE, e = Math.min(r.indexedEnd, i + PAGE); i < e; i++) c.ids[m++] = i;
        }
      }
    }
    this.exact(c, m, out, oo);
    return m - nT;
  }

  /** Exact softmax attention over the first m gathered ids. */
  exact(c: HeadCache, m: number, out: Float32Array, oo: number): void {
    c.dotsIds(m);
    for (let j = 0; j < m; j++) c.logits[j] *= this.scale;
    this.softmax(c, m, out, oo);
  }

  /** out = Σ softmax(logits)_j · V[ids[j]] over the first m gathered ids (zeros when m = 0). */
  private softmax(c: HeadCache, m: number, out: Float32Array, oo: number): void {
    const logits = c.logits, d = this.d;
    let mx = -Infinity;
    for (let j = 0; j < m; j++) if (logits[j] > mx) mx = logits[j];
    let z = 0;
    for (let j = 0; j < m; j++) {
      const w = Math.exp(logits[j] - mx);
      logits[j] = w;
      z += w;
    }
    this.lastMax = mx;
    this.lastZ = z;
    c.o.fill(0);
    if (m > 0) c.axpyIds(m);
    const inv = z > 0 ? 1 / z : 0;
    for (let j = 0; j < d; j++) out[oo + j] = c.o[j] * inv;
  }
}

/** Timings and traffic of decode steps (Sequence.profile; benches only). */
export interface StepProfile {
  hashMs: number;
  retrieveMs: number;
  attendMs: number;
  walkedIds: number;
  sampledKeys: number;
  exactKeys: number;
  heads: number;
  /** When set (benches: Sequence.sampledRows), the distinct key ids sampled per KV head are collected here. */
  rows: Set<number>[] | null;
}

/**
 * MagicPIG for the query heads of KV head g (one worker task): per head hash (unless codes are ready) and retrieve
 * into its own list in the workspace, then attend for the group together (attendGroup). Writes out rows and
 * sampled[h] = |S| per query head.
 */
export function magicpigGroup(ker: DecodeKernels, cache: HeadCache, index: HeadIndex, g: number, H: number, G: number,
  r: Ranges, K: number, L: number, q: Float32Array, codes: Int32Array, hash: SimHash | null,
  out: Float32Array, sampled: Int32Array, prof: StepProfile | null = null): void {
  const d = ker.d, group = H / G, x = ker.input; // reused: no allocation per step
  x.q = q; x.cache = cache; x.index = index;
  for (let h0 = g * group, hEnd = h0 + group; h0 < hEnd;) {
    const t0 = prof ? performance.now() : 0;
    let at = 0, s = 0, hashMs = 0;
    // A head's list is at most |T| + |I| = r.length ids; start a new batch when the next one might not fit.
    for (; h0 + s < hEnd && s < SLOTS && (s === 0 || at + r.length <= cache.capacity); s++) {
      const h = h0 + s;
      x.qo = h * d;
      const nT = ker.begin(x, r, s, at);
      if (hash) {
        const th = prof ? performance.now() : 0;
        hash.hashInto(q, h * d, codes, h * L);
        if (prof) hashMs += performance.now() - th;
      }
      const m = ker.retrieve(x, codes, h * L, at + nT);
      ker.list(s, at, nT, m);
      sampled[h] = m;
      at += nT + m;
      if (prof) {
        prof.walkedIds += index.tables ? index.tables.walked(codes, h * L) : 0;
        prof.sampledKeys += m;
        prof.exactKeys += nT;
        prof.heads++;
        if (prof.rows) {
          const seen = (prof.rows[g] ??= new Set<number>()), ids = cache.ids;
          for (let j = at - m; j < at; j++) seen.add(ids[j]); // this head's S: the m ids before `at` (advanced above)
        }
      }
    }
    const t1 = prof ? performance.now() : 0;
    ker.attendGroup(cache, index, s, K, L, out, h0 * d);
    if (prof) {
      prof.hashMs += hashMs;
      prof.retrieveMs += t1 - t0 - hashMs;
      prof.attendMs += performance.now() - t1;
    }
    h0 += s;
  }
}
