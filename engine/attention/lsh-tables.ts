// The L bucket tables of one layer and KV head (spec §4): for table l, the ids of the indexed keys grouped by code
// (counting sort, so ids stay ascending inside a bucket), with bucket offsets. Retrieval (spec §5) walks q's L buckets
// counting collisions per key; a key that collides at least twice is sampled (listed once, in id order).
//
// Layout: ids[l·count + p] for table l; bucket c of table l is p ∈ [offsets[l·(B+1) + c], offsets[l·(B+1) + c + 1]).
// Indexed ids are the contiguous range [base, base + count) of token positions. Offsets, ids and the retrieval scratch
// share one memory per table set (a WebAssembly memory: retrieval is a WebAssembly loop, wasm-kernels.ts).
import { retrievalKernel, type RetrievalKernel } from './wasm-kernels';

/** Bytes before the first region of a tables memory (kept free, so no region starts at address 0). */
const HEADER = 64;
const align = (x: number) => (x + 63) & ~63;

/**
 * Where each region of a tables memory lies, for `count` ids: the bucket offsets, the ids, then the retrieval scratch
 * (seen and sampled: one bit per id each, all zero between retrievals; out: the ids a retrieval emits; q: one query's
 * L codes; spans: the kernel's bucket bounds).
 */
function layout(L: number, B: number, count: number) {
  const words = Math.ceil(count / 32);
  const offsets = HEADER, ids = align(offsets + 4 * L * (B + 1)), seen = align(ids + 4 * L * count);
  const sampled = align(seen + 4 * words), out = align(sampled + 4 * words), q = align(out + 4 * count);
  const spans = align(q + 4 * L), end = align(spans + 8 * L);
  return { offsets, ids, seen, sampled, out, q, spans, end };
}

/**
 * One shared memory holding a table set: a WebAssembly.Memory where SIMD-era WebAssembly is available (retrieval
 * then runs as a WebAssembly loop, 1.35× the TypeScript loop: 4.1 → 3.0 ms for 32 heads at 64K keys), else a
 * SharedArrayBuffer. Shared either way, so attention worker threads read the tables in place.
 */
function allocate(L: number, B: number, count: number): { buffer: SharedArrayBuffer; memory: WebAssembly.Memory | null } {
  const bytes = layout(L, B, count).end;
  if (retrievalKernel) {
    const pages = Math.max(1, Math.ceil(bytes / 65536));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    return { buffer: memory.buffer as unknown as SharedArrayBuffer, memory };
  }
  return { buffer: new SharedArrayBuffer(bytes), memory: null };
}

interface Allocation {
  buffer: SharedArrayBuffer;
  memory: WebAssembly.Memory | null;
  count: number;
}

export class LshTables {
  readonly B: number;
  count = 0;
  offsets!: Int32Array<ArrayBufferLike>;
  ids!: Int32Array<ArrayBufferLike>;
  /** The memory all of the above live in (posted to worker threads); null without WebAssembly. */
  memory: WebAssembly.Memory | null = null;
  buffer: SharedArrayBuffer;
  private seen!: Int32Array;
  private sampled!: Int32Array;
  private out!: Int32Array;
  private qCodes!: Int32Array;
  private kernel: RetrievalKernel | null = null;
  private regions!: ReturnType<typeof layout>;

  /** Empty tables, or (`existing`) a view of tables another thread made: same memory, same layout, nothing copied. */
  constructor(readonly K: number, readonly L: number, readonly base: number, existing?: Allocation) {
    this.B = 1 << K;
    const a = existing ?? { ...allocate(L, this.B, 0), count: 0 };
    this.buffer = a.buffer;
    this.memory = a.memory;
    this.views(a.count);
  }

  /** A view of another thread's tables (same memory, same layout: nothing copied). */
  static attach(K: number, L: number, base: number, count: number, buffer: SharedArrayBuffer, memory: WebAssembly.Memory | null): LshTables {
    return new LshTables(K, L, base, { buffer, memory, count });
  }

  /** Point the typed views at this.buffer for `count` ids (and instantiate the retrieval kernel on its memory). */
  private views(count: number): void {
    const r = (this.regions = layout(this.L, this.B, count)), b = this.buffer;
    this.count = count;
    this.offsets = new Int32Array(b, r.offsets, this.L * (this.B + 1));
    this.ids = new Int32Array(b, r.ids, this.L * count);
    this.seen = new Int32Array(b, r.seen, Math.ceil(count / 32));
    this.sampled = new Int32Array(b, r.sampled, Math.ceil(count / 32));
    this.out = new Int32Array(b, r.out, count);
    this.qCodes = new Int32Array(b, r.q, this.L);
    this.kernel = this.memory && retrievalKernel ? retrievalKernel(this.memory) : null;
  }

  /** A new, zeroed memory laid out for `count` ids (fold and truncate write it, then adopt it). */
  private reallocate(count: number): Allocation & { offsets: Int32Array; ids: Int32Array } {
    const { buffer, memory } = allocate(this.L, this.B, count);
    const r = layout(this.L, this.B, count);
    return { buffer, memory, count, offsets: new Int32Array(buffer, r.offsets, this.L * (this.B + 1)), ids: new Int32Array(buffer, r.ids, this.L * count) };
  }

  /** Switch to a memory made by reallocate() (its bitmaps are zero, as retrieve() expects). */
  private adopt(a: Allocation): void {
    this.buffer = a.buffer;
    this.memory = a.memory;
    this.views(a.count);
  }

  /**
   * Add ids [base + count, base + count + n) with codes[j·L + l] (table l's code of the j-th new id). Old and new ids
   * are merged bucket by bucket: O(L · (count + n)), one new id array (the old one is dropped).
   */
  fold(codes: Uint16Array | Int32Array, n: number): void {
    const { L, B } = this;
    const oldCount = this.count, newCount = oldCount + n, first = this.base + oldCount;
    const next = this.reallocate(newCount), { ids, offsets } = next;
    const hist = new Int32Array(B + 1);
    for (let l = 0; l < L; l++) {
      hist.fill(0);
      for (let j = 0; j < n; j++) hist[codes[j * L + l] + 1]++;
      for (let c = 0; c < B; c++) hist[c + 1] += hist[c]; // hist[c] = new ids in buckets < c
      const ob = l * (B + 1), src = l * oldCount, dst = l * newCount;
      for (let c = 0; c <= B; c++) offsets[ob + c] = this.offsets[ob + c] + hist[c];
      // Old ids of bucket c, then room for its new ids (cursor per bucket reuses hist as the write position).
      // A plain loop, not ids.set(subarray): buckets hold a few ids each, and 2^K · L subarray views per fold cost
      // more than the copying (measured in a tiny-coder keystroke that adds a 256-key block at 4K keys, K = 10, L = 150,
      // 8 heads: prepare() 188 → 74 ms).
      const oldIds = this.ids, oldOff = this.offsets;
      for (let c = 0; c < B; c++) {
        const s = oldOff[ob + c], e = oldOff[ob + c + 1];
        let w = dst + offsets[ob + c];
        for (let p = src + s, pe = src + e; p < pe; p++) ids[w++] = oldIds[p];
        hist[c] = offsets[ob + c] + (e - s);
      }
      for (let j = 0; j < n; j++) {
        const c = codes[j * L + l];
        ids[dst + hist[c]++] = first + j;
      }
    }
    this.adopt(next);
  }

  /** Drop ids >= end (prefix reuse). Ids are ascending inside each bucket, so each bucket is cut at one point. */
  truncate(end: number): void {
    const keep = Math.max(0, Math.min(this.count, end - this.base));
    if (keep === this.count) return;
    const { L, B } = this;
    const next = this.reallocate(keep), { ids, offsets } = next;
    for (let l = 0; l < L; l++) {
      const ob = l * (B + 1), src = l * this.count, dst = l * keep;
      let w = 0;
      for (let c = 0; c < B; c++) {
        offsets[ob + c] = w;
        for (let p = this.offsets[ob + c], e = this.offsets[ob + c + 1]; p < e; p++) {
          const id = this.ids[src + p];
          if (id < end) ids[dst + w++] = id;
        }
      }
      offsets[ob + B] = w;
    }
    this.adopt(next);
  }

  /**
   * Ids colliding with qCodes in at least 2 tables into out from index `at`, ascending; returns how many.
   * Two bitmaps of one bit per key (all zero between calls): walking q's L buckets, a key already in `seen` goes
   * into `sampled` (its second collision), and every key goes into `seen`. A scan of `sampled` then lists the keys in
   * id order (so the attention's gathers run forward through memory with no sort) and zeroes both bitmaps.
   * 2 bits of scratch per key stay in L1 where a mark byte per key (a generation counter) did not (figures in
   * wasm-kernels.ts). The same set as spec §5's "emit at the second collision", listed in id order instead of
   * emission order (the estimator does not depend on order). The bitmaps live with the tables, so one thread at a time
   * may retrieve from a table set (a KV head belongs to one thread in a step).
   */
  retrieve(qCodes: Int32Array, qo: number, out: Int32Array, at = 0): number {
    if (this.count === 0) return 0;
    if (this.kernel) {
      // Plain loops, not set(subarray): a subarray is an allocation, and the decode step makes none.
      const r = this.regions, qc = this.qCodes, o = this.out;
      for (let l = 0; l < this.L; l++) qc[l] = qCodes[qo + l];
      const m = this.kernel(r.q, r.offsets, r.ids, r.seen, r.out, this.L, this.B + 1, this.count, this.base, r.sampled, r.spans);
      for (let i = 0; i < m; i++) out[at + i] = o[i];
      return m;
    }
    const { L, B, ids, offsets, count, base, seen, sampled } = this;
    for (let l = 0; l < L; l++) {
      const ob = l * (B + 1) + qCodes[qo + l], t = l * count;
      for (let p = offsets[ob], e = offsets[ob + 1]; p < e; p++) {
        const j = ids[t + p] - base, w = j >>> 5, bit = 1 << (j & 31), s = seen[w];
        sampled[w] |= s & bit; // a second (or later) collision
        seen[w] = s | bit;
      }
    }
    let m = at;
    for (let w = 0, words = seen.length; w < words; w++) {
      seen[w] = 0;
      let mask = sampled[w];
      if (mask === 0) continue;
      sampled[w] = 0;
      while (mask !== 0) {
        out[m++] = base + 32 * w + (31 - Math.clz32(mask & -mask));
        mask &= mask - 1;
      }
    }
    return m - at;
  }

  /** Ids a retrieval for qCodes walks (Σ of its L bucket sizes): the table traffic of one query. */
  walked(qCodes: Int32Array, qo: number): number {
    let w = 0;
    for (let l = 0; l < this.L; l++) {
      const ob = l * (this.B + 1) + qCodes[qo + l];
      w += this.offsets[ob + 1] - this.offsets[ob];
    }
    return w;
  }

  /** Bytes held: ids, offsets and the retrieval scratch (out and two bitmaps: 4¼ bytes per id). */
  bytes(): number {
    return this.regions.end;
  }
}
