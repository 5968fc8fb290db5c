// The L bucket tables of one layer and KV head (spec §4): for table l, the ids of the indexed keys grouped by code
// (counting sort, so ids stay ascending inside a bucket), with bucket offsets. Retrieval (spec §5) walks q's L buckets
// counting collisions per key and emits a key the moment its count reaches 2.
//
// Layout: ids[l·count + p] for table l; bucket c of table l is p ∈ [offsets[l·(B+1) + c], offsets[l·(B+1) + c + 1]).
// Indexed ids are the contiguous range [base, base + count) of token positions.

/** Int32Array on a SharedArrayBuffer, so attention worker threads read the tables in place. */
const sharedInt32 = (n: number) => new Int32Array(new SharedArrayBuffer(Math.max(4, 4 * n)));

export class LshTables {
  readonly B: number;
  count = 0;
  offsets: Int32Array<ArrayBufferLike>;
  ids: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(readonly K: number, readonly L: number, readonly base: number) {
    this.B = 1 << K;
    this.offsets = sharedInt32(L * (this.B + 1));
  }

  /** A view of another thread's tables (the arrays are SharedArrayBuffers). */
  static attach(K: number, L: number, base: number, count: number, offsets: Int32Array, ids: Int32Array): LshTables {
    const t = new LshTables(K, L, base);
    t.count = count;
    t.offsets = offsets;
    t.ids = ids;
    return t;
  }

  /**
   * Add ids [base + count, base + count + n) with codes[j·L + l] (table l's code of the j-th new id). Old and new ids
   * are merged bucket by bucket: O(L · (count + n)), one new id array (the old one is dropped).
   */
  fold(codes: Uint16Array | Int32Array, n: number): void {
    const { L, B } = this;
    const oldCount = this.count, newCount = oldCount + n, first = this.base + oldCount;
    const ids = sharedInt32(L * newCount);
    const offsets = sharedInt32(L * (B + 1));
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
    this.ids = ids;
    this.offsets = offsets;
    this.count = newCount;
  }

  /** Drop ids >= end (prefix reuse). Ids are ascending inside each bucket, so each bucket is cut at one point. */
  truncate(end: number): void {
    const keep = Math.max(0, Math.min(this.count, end - this.base));
    if (keep === this.count) return;
    const { L, B } = this;
    const ids = sharedInt32(L * keep);
    const offsets = sharedInt32(L * (B + 1));
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
    this.ids = ids;
    this.offsets = offsets;
    this.count = keep;
  }

  /**
   * Ids colliding with qCodes in at least 2 tables, in emission order, into out from index `at`; returns how many.
   * `marks` (≥ count bytes, per thread) records per key the last query that touched it: marks = gen after one
   * collision, gen + 1 once emitted. Callers pass a gen larger than every earlier gen + 1 (they step by 2 and clear
   * the bytes when gen would pass 255), so no clearing pass per query is needed (one walk of the buckets, not two).
   * Bytes, not words: 4× less scratch to keep in cache (measured ~15% faster at 128K keys).
   */
  retrieve(qCodes: Int32Array, qo: number, marks: Uint8Array, gen: number, out: Int32Array, at = 0): number {
    const { L, B, ids, offsets, count, base } = this;
    const emitted = gen + 1;
    let m = at;
    for (let l = 0; l < L; l++) {
      const ob = l * (B + 1) + qCodes[qo + l], t = l * count;
      for (let p = offsets[ob], e = offsets[ob + 1]; p < e; p++) {
        const id = ids[t + p], j = id - base;
        const v = marks[j];
        if (v === gen) { marks[j] = emitted; out[m++] = id; } // second collision: emit once
        else if (v !== emitted) marks[j] = gen; // first collision this query
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

  bytes(): number {
    return this.ids.byteLength + this.offsets.byteLength;
  }
}
