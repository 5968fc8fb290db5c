// The L bucket tables of one layer and KV head (spec §4): for table l, the ids of the indexed keys grouped by code
// (counting sort, so ids stay ascending inside a bucket). Retrieval (spec §5) walks q's L buckets counting collisions
// per key; a key that collides at least twice is sampled (listed once, in id order).
//
// Gapped buckets (the spec is silent on how folds work; the reference re-sorts): each table has room for `capacity`
// ids, and each bucket keeps a share of the free room after its ids. A fold appends its ids to their buckets in place,
// O(L · n) for n new ids. A full bucket borrows from the nearest gap by moving the buckets between (makeRoom); with no
// gap near enough, its table is rebuilt in place with the free room shared out again, O(capacity). Past 3/4 of the
// room (`limit`), everything is copied into a new memory with room for max(1/8, 4 a bucket) more. A cut lowers bucket
// sizes in place. So a keystroke that adds a block costs what it adds, not what is indexed, and retrieval still walks
// one bucket per table (measured: bench-results/attention-decisions.md, `snout bench folds`).
//
// Layout of one shared memory (a WebAssembly memory: retrieval is a WebAssembly loop, kernels/kernels.c `retrieve`): buckets
// (start, size) for bucket c of table l at buckets[2·(l·B + c)], starts relative to table l's ids at ids[l·capacity],
// then the retrieval scratch. Indexed ids are the contiguous range [base, base + count) of token positions; the tables
// hold them relative to base (id − base), as 2-byte integers while a table's room fits 16 bits (capacity ≤ 65536: a
// context up to ~58K keys) and 4-byte ones past that. The ids are most of an index's memory (L of them per key, where
// K and V are ~1 row), so half-width ids halve it (bench-results/peer-2026-12-07b.md: 4-byte ids put MagicPIG's peak
// RSS at 16K at 1.32× llama.cpp's).
import { instantiate, kernelModule, type WasmKernels } from './kernels/kernels';

/** Bytes before the first region of a tables memory (kept free, so no region starts at address 0). */
const HEADER = 64;
const align = (x: number) => (x + 63) & ~63;

/** Largest room per table whose relative ids (0 … capacity − 1) fit 2 bytes. */
export const NARROW_MAX_CAPACITY = 65536;
/** Bytes per stored id for room `cap`: 2 up to NARROW_MAX_CAPACITY, else 4. */
export const idBytesFor = (cap: number) => (cap <= NARROW_MAX_CAPACITY ? 2 : 4);
/** A table set's stored ids (relative to base): 2-byte or 4-byte, by capacity. */
export type IdArray = Uint16Array<ArrayBufferLike> | Int32Array<ArrayBufferLike>;
const idView = (buffer: ArrayBufferLike, offset: number, cap: number, length: number): IdArray =>
  (idBytesFor(cap) === 2 ? new Uint16Array(buffer, offset, length) : new Int32Array(buffer, offset, length));

/**
 * Room per table for n ids in B buckets: n plus an eighth, and at least ROOM_PER_BUCKET slots a bucket (with ~1 a
 * bucket nearly every fold rebuilt every table: bench-results/attention-decisions.md) — but never more than n extra:
 * the room is sized by the context, not by 2^K (a large K and L would otherwise reserve gigabytes per head for a short
 * prompt).
 */
export const ROOM_RATIO = 8, ROOM_PER_BUCKET = 4;
export const capacityFor = (n: number, B: number) =>
  (n === 0 ? 0 : n + Math.max(Math.min(ROOM_PER_BUCKET * B, n), Math.ceil(n / ROOM_RATIO)));
const limitFor = (n: number, cap: number) => n + Math.floor((3 * (cap - n)) / 4);
/** Furthest a fold looks (in buckets, each way) for a gap to move buckets into before it rebuilds the table. */
const MAX_SHIFT = 8;

/**
 * Where each region of a tables memory lies, for room for `cap` ids per table: the buckets' (start, size) pairs, the
 * ids, then the retrieval scratch (seen and sampled: one bit per id each, all zero between retrievals; out: the ids
 * a retrieval emits; q: one query's L codes; spans: the kernel's bucket bounds).
 */
function layout(L: number, B: number, cap: number) {
  const words = Math.ceil(cap / 32);
  const buckets = HEADER, ids = align(buckets + 8 * L * B), seen = align(ids + idBytesFor(cap) * L * cap);
  const sampled = align(seen + 4 * words), out = align(sampled + 4 * words), q = align(out + 4 * cap);
  const spans = align(q + 4 * L), end = align(spans + 8 * L);
  return { buckets, ids, seen, sampled, out, q, spans, end };
}

/**
 * Bytes of one table set (one layer and KV head) holding n ids: the L·2^K bucket bounds are there even when n is 0,
 * the ids and scratch grow with n (before a regrow, up to capacityFor of the count at the last regrow).
 */
export function tablesBytes(K: number, L: number, n: number): number {
  const B = 1 << K, bytes = layout(L, B, capacityFor(n, B)).end;
  return kernelModule() ? Math.ceil(bytes / 65536) * 65536 : bytes;
}

/**
 * One shared memory holding a table set: a WebAssembly.Memory where SIMD-era WebAssembly is available (retrieval
 * then runs as a WebAssembly loop, kernels.c `retrieve`), else a
 * SharedArrayBuffer. Shared either way, so attention worker threads read the tables in place. Fresh memory is zero.
 */
function allocate(L: number, B: number, cap: number): { buffer: SharedArrayBuffer; memory: WebAssembly.Memory | null } {
  const bytes = layout(L, B, cap).end;
  if (kernelModule()) {
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
  capacity: number;
}

/** Counters of how folds were served (tests and benches read them). */
export interface FoldStats {
  appends: number;
  /** Buckets moved aside to make room (makeRoom). */
  shifts: number;
  tableRebuilds: number;
  regrows: number;
}

export class LshTables {
  readonly B: number;
  count = 0;
  /** Room per table, in ids (capacityFor of the count at the last regrow). */
  capacity = 0;
  /**
   * Ids past which a fold regrows: 3/4 of the free room in. The last quarter would go to long bucket moves and table
   * rebuilds, each fold growing several times slower as the gaps run out (bench-results/attention-decisions.md, gapped buckets).
   */
  limit = 0;
  /** Bucket c of table l: ids[l·capacity + buckets[2·(l·B + c)] ..] for buckets[2·(l·B + c) + 1] ids. */
  buckets!: Int32Array<ArrayBufferLike>;
  /** Stored ids, relative to base (token base + ids[p]); 2 or 4 bytes each (idBytesFor(capacity)). */
  ids!: IdArray;
  /** The memory all of the above live in (posted to worker threads); null without WebAssembly. */
  memory: WebAssembly.Memory | null = null;
  buffer: SharedArrayBuffer;
  readonly foldStats: FoldStats = { appends: 0, shifts: 0, tableRebuilds: 0, regrows: 0 };
  private seen!: Int32Array;
  private sampled!: Int32Array;
  private out!: Int32Array;
  private qCodes!: Int32Array;
  private kernel: WasmKernels['retrieve'] | null = null;
  private regions!: ReturnType<typeof layout>;

  /** Empty tables, or (`existing`) a view of tables another thread made: same memory, same layout, nothing copied. */
  constructor(readonly K: number, readonly L: number, readonly base: number, existing?: Allocation) {
    this.B = 1 << K;
    const a = existing ?? { ...allocate(L, this.B, 0), count: 0, capacity: 0 };
    this.buffer = a.buffer;
    this.memory = a.memory;
    this.views(a.count, a.capacity);
    this.limit = limitFor(a.count, a.capacity);
  }

  /** A view of another thread's tables (same memory, same layout: nothing copied). */
  static attach(K: number, L: number, base: number, count: number, capacity: number, buffer: SharedArrayBuffer, memory: WebAssembly.Memory | null): LshTables {
    return new LshTables(K, L, base, { buffer, memory, count, capacity });
  }

  /**
   * Tables holding ids [base, base + count) whose codes are given table-major (codes[l·count + j]: table l's code of
   * id base + j; snapshot.ts's form of the tables). The layout is the one a single fold of those ids into empty
   * tables makes (a cold prepare()), so a restored sequence's tables are a cold run's, byte for byte.
   */
  static fromCodes(K: number, L: number, base: number, codes: Uint16Array, count: number): LshTables {
    const t = new LshTables(K, L, base);
    if (count <= 0) return t;
    const B = t.B, cap = capacityFor(count, B);
    const { buffer, memory } = allocate(L, B, cap), r = layout(L, B, cap);
    const buckets = new Int32Array(buffer, r.buckets, 2 * L * B), ids = idView(buffer, r.ids, cap, L * cap);
    // The counting sort runs on local arrays: reads of the shared memory in the inner loop were ~3× slower.
    const sizes = new Int32Array(B), starts = new Int32Array(B), next = new Int32Array(B);
    for (let l = 0; l < L; l++) {
      const bb = 2 * l * B, row = l * cap, o = l * count;
      sizes.fill(0);
      for (let j = 0; j < count; j++) {
        const c = codes[o + j];
        if (c >= B) throw new RangeError(`code ${c} out of range for K = ${K}`);
        sizes[c]++;
      }
      LshTables.place(sizes, cap, starts);
      for (let c = 0; c < B; c++) { buckets[bb + 2 * c] = starts[c]; buckets[bb + 2 * c + 1] = sizes[c]; next[c] = row + starts[c]; }
      for (let j = 0; j < count; j++) ids[next[codes[o + j]]++] = j;
    }
    t.buffer = buffer;
    t.memory = memory;
    t.views(count, cap);
    t.limit = limitFor(count, cap);
    return t;
  }

  /**
   * Every indexed id's code in tables [l0, l1), table-major (out[(l − l0)·count + j] for id base + j): what fromCodes
   * takes, made a few tables at a time by the disk writer.
   */
  codes(l0 = 0, l1 = this.L, out = new Uint16Array((l1 - l0) * this.count)): Uint16Array {
    const { B, buckets, ids, capacity: cap, count } = this;
    for (let l = l0; l < l1; l++) {
      const bb = 2 * l * B, row = l * cap, o = (l - l0) * count;
      for (let c = 0; c < B; c++) {
        const s = row + buckets[bb + 2 * c], e = s + buckets[bb + 2 * c + 1];
        for (let p = s; p < e; p++) out[o + ids[p]] = c;
      }
    }
    return out;
  }

  /** Point the typed views at this.buffer (and instantiate the retrieval kernel on its memory). */
  private views(count: number, capacity: number): void {
    const { L, B } = this, r = (this.regions = layout(L, B, capacity)), b = this.buffer;
    this.count = count;
    this.capacity = capacity;
    this.buckets = new Int32Array(b, r.buckets, 2 * L * B);
    this.ids = idView(b, r.ids, capacity, L * capacity);
    this.seen = new Int32Array(b, r.seen, Math.ceil(capacity / 32));
    this.sampled = new Int32Array(b, r.sampled, Math.ceil(capacity / 32));
    this.out = new Int32Array(b, r.out, capacity);
    this.qCodes = new Int32Array(b, r.q, L);
    this.kernel = this.memory ? instantiate(this.memory)!.retrieve : null;
  }

  /**
   * Starts for buckets of the given sizes in a table with room for `cap` ids: each bucket gets its ids plus a share
   * of the free room in proportion to its size + 1 (buckets that fill fast get more room), in bucket order.
   */
  private static place(sizes: Int32Array, cap: number, starts: Int32Array): void {
    let total = 0;
    for (let c = 0; c < sizes.length; c++) total += sizes[c];
    const free = cap - total, weight = total + sizes.length;
    // Cumulative shares, so the rounding does not pile up at the end: Σ rooms = free exactly.
    let at = 0, cum = 0;
    for (let c = 0; c < sizes.length; c++) {
      starts[c] = at + Math.floor((free * cum) / weight);
      at += sizes[c];
      cum += sizes[c] + 1;
    }
  }

  /**
   * Add ids [base + count, base + count + n) with codes[j·L + l] (table l's code of the j-th new id). Appended in
   * place; a bucket without room first borrows a nearby gap (makeRoom), or else its table is rebuilt in place; a
   * fold past `limit` regrows the whole set.
   */
  fold(codes: Uint16Array | Int32Array, n: number): void {
    if (n <= 0) return;
    if (this.count + n > this.limit) return this.regrow(codes, n);
    const { L, B, buckets, ids, capacity: cap } = this, first = this.count; // relative ids
    const add = new Int32Array(B), sizes = new Int32Array(B), starts = new Int32Array(B);
    let rebuilt = 0;
    for (let l = 0; l < L; l++) {
      add.fill(0);
      for (let j = 0; j < n; j++) add[codes[j * L + l]]++;
      const bb = 2 * l * B, row = l * cap;
      let full = false;
      for (let c = 0; c < B && !full; c++) {
        if (add[c] === 0) continue;
        const end = c + 1 < B ? buckets[bb + 2 * (c + 1)] : cap, need = buckets[bb + 2 * c] + buckets[bb + 2 * c + 1] + add[c] - end;
        if (need > 0 && !this.makeRoom(l, c, need, add)) full = true;
      }
      if (full) {
        // No single gap near enough: rebuild table l in place, its ids compacted aside and the free room re-shared.
        const tmp = this.scratch(this.count);
        let t = 0;
        for (let c = 0; c < B; c++) {
          const s = row + buckets[bb + 2 * c], m = buckets[bb + 2 * c + 1];
          for (let p = s; p < s + m; p++) tmp[t++] = ids[p];
          sizes[c] = m + add[c];
        }
        LshTables.place(sizes, cap, starts);
        t = 0;
        for (let c = 0; c < B; c++) {
          const m = sizes[c] - add[c];
          let w = row + starts[c];
          for (let k = 0; k < m; k++) ids[w++] = tmp[t++];
          buckets[bb + 2 * c] = starts[c];
          buckets[bb + 2 * c + 1] = m;
        }
        rebuilt++;
      }
      for (let j = 0; j < n; j++) {
        const c = codes[j * L + l], at = bb + 2 * c;
        ids[row + buckets[at] + buckets[at + 1]++] = first + j;
      }
    }
    this.count += n;
    this.foldStats.appends++;
    this.foldStats.tableRebuilds += rebuilt;
  }

  /**
   * Give bucket c of table l `need` more slots: take them from the nearest gap (after some bucket k, less the k's own
   * pending ids, add[k]) holding at least that many, by moving the buckets between one way or the other (a memmove of
   * their ids, ~128 ids a bucket at 128K keys). False when no single gap suffices within MAX_SHIFT buckets (the caller
   * rebuilds the table).
   */
  private makeRoom(l: number, c: number, need: number, add: Int32Array): boolean {
    const { B, buckets: bk, ids, capacity: cap } = this, bb = 2 * l * B, row = l * cap;
    const gapAfter = (k: number) => (k + 1 < B ? bk[bb + 2 * (k + 1)] : cap) - bk[bb + 2 * k] - bk[bb + 2 * k + 1] - add[k];
    for (let dist = 1; dist <= MAX_SHIFT; dist++) {
      const r = c + dist; // buckets c+1..r move right by `take` (≥ need), into the gap after r
      const gr = r < B ? gapAfter(r) : -1;
      if (gr >= need) {
        const take = Math.max(need, gr >> 1); // half the gap: the next arrivals here need no move
        const from = row + bk[bb + 2 * (c + 1)], to = row + bk[bb + 2 * r] + bk[bb + 2 * r + 1];
        ids.copyWithin(from + take, from, to);
        for (let k = c + 1; k <= r; k++) bk[bb + 2 * k] += take;
        this.foldStats.shifts++;
        return true;
      }
      const k0 = c - dist; // buckets k0+1..c move left by `take` (≥ need), out of the gap after k0
      const gl = k0 >= 0 ? gapAfter(k0) : -1;
      if (gl >= need) {
        const take = Math.max(need, gl >> 1);
        const from = row + bk[bb + 2 * (k0 + 1)], to = row + bk[bb + 2 * c] + bk[bb + 2 * c + 1];
        ids.copyWithin(from - take, from, to);
        for (let k = k0 + 1; k <= c; k++) bk[bb + 2 * k] -= take;
        this.foldStats.shifts++;
        return true;
      }
      if (r >= B && k0 < 0) break;
    }
    return false;
  }

  private tmp = new Int32Array(0); // relative ids of one table (any width)
  private scratch(n: number): Int32Array {
    if (this.tmp.length < n) this.tmp = new Int32Array(Math.max(n, 2 * this.tmp.length));
    return this.tmp;
  }

  /** Everything indexed plus n new ids into a new memory with room for capacityFor(count + n) per table. */
  private regrow(codes: Uint16Array | Int32Array, n: number): void {
    this.rebuildInto(capacityFor(this.count + n, this.B), this.count, codes, n);
    this.foldStats.regrows++;
  }

  /** A new memory with room for `cap` per table: the first `keep` indexed ids (they are ascending) and n new ones. */
  private rebuildInto(cap: number, keep: number, codes: Uint16Array | Int32Array | null, n: number): void {
    const { L, B } = this, end = keep, first = keep; // relative ids: those past the cut are >= keep
    const { buffer, memory } = allocate(L, B, cap), r = layout(L, B, cap);
    const buckets = new Int32Array(buffer, r.buckets, 2 * L * B), ids = idView(buffer, r.ids, cap, L * cap);
    const sizes = new Int32Array(B), starts = new Int32Array(B), kept = new Int32Array(B);
    const oldB = this.buckets, oldIds = this.ids, oldCap = this.capacity;
    for (let l = 0; l < L; l++) {
      const bb = 2 * l * B, row = l * cap, oldRow = l * oldCap;
      // Nothing kept (a first fold): the old buckets are not read (an empty set's memory is untouched, and reading
      // it would fault in its zero pages).
      if (keep > 0) {
        for (let c = 0; c < B; c++) {
          const s = oldRow + oldB[bb + 2 * c];
          let m = oldB[bb + 2 * c + 1];
          while (m > 0 && oldIds[s + m - 1] >= end) m--; // ascending: the ids past the cut are a bucket's last ones
          kept[c] = m;
          sizes[c] = m;
        }
      } else sizes.fill(0);
      for (let j = 0; j < n; j++) sizes[codes![j * L + l]]++;
      LshTables.place(sizes, cap, starts);
      for (let c = 0; c < B; c++) {
        if (keep > 0) {
          const s = oldRow + oldB[bb + 2 * c];
          let w = row + starts[c];
          for (let p = s, e = s + kept[c]; p < e; p++) ids[w++] = oldIds[p];
        }
        buckets[bb + 2 * c] = starts[c];
        buckets[bb + 2 * c + 1] = kept[c];
      }
      for (let j = 0; j < n; j++) {
        const at = bb + 2 * codes![j * L + l];
        ids[row + buckets[at] + buckets[at + 1]++] = first + j;
      }
    }
    this.buffer = buffer;
    this.memory = memory;
    this.views(keep + n, cap);
    this.limit = limitFor(keep + n, cap);
  }

  /**
   * Drop ids >= end (prefix reuse). Ids are ascending inside each bucket, so each bucket loses its last few: sizes
   * shrink in place. A cut that leaves under a quarter of the room moves to a smaller memory (memory goes back).
   */
  truncate(end: number): void {
    const keep = Math.max(0, Math.min(this.count, end - this.base));
    if (keep === this.count) return;
    if (keep < this.capacity / 4) return this.rebuildInto(capacityFor(keep, this.B), keep, null, 0);
    const { L, B, buckets, ids, capacity: cap } = this;
    for (let l = 0; l < L; l++) {
      const bb = 2 * l * B, row = l * cap;
      for (let c = 0; c < B; c++) {
        const s = row + buckets[bb + 2 * c];
        let m = buckets[bb + 2 * c + 1];
        while (m > 0 && ids[s + m - 1] >= keep) m--; // relative ids
        buckets[bb + 2 * c + 1] = m;
      }
    }
    this.count = keep;
  }

  /**
   * Ids colliding with qCodes in at least 2 tables into out from index `at`, ascending; returns how many.
   * Two bitmaps of one bit per key (all zero between calls): walking q's L buckets, a key already in `seen` goes
   * into `sampled` (its second collision), and every key goes into `seen`. A scan of `sampled` then lists the keys in
   * id order (so the attention's gathers run forward through memory with no sort) and zeroes both bitmaps.
   * 2 bits of scratch per key stay in L1 where a mark byte per key (a generation counter) did not (README
   * "Decisions"). The same set as spec §5's "emit at the second collision", listed in id order instead of
   * emission order (the estimator does not depend on order). The bitmaps live with the tables, so one thread at a time
   * may retrieve from a table set (a KV head belongs to one thread in a step).
   */
  retrieve(qCodes: Int32Array, qo: number, out: Int32Array, at = 0): number {
    if (this.count === 0) return 0;
    if (this.kernel) {
      // Plain loops, not set(subarray): a subarray is an allocation, and the decode step makes none.
      const r = this.regions, qc = this.qCodes, o = this.out;
      for (let l = 0; l < this.L; l++) qc[l] = qCodes[qo + l];
      const m = this.kernel(r.q, r.buckets, r.ids, idBytesFor(this.capacity), r.seen, r.out, this.L, this.B, this.capacity, this.base, r.sampled, r.spans, this.count);
      for (let i = 0; i < m; i++) out[at + i] = o[i];
      return m;
    }
    const { L, B, ids, buckets, capacity, base, seen, sampled } = this;
    for (let l = 0; l < L; l++) {
      const at2 = 2 * (l * B + qCodes[qo + l]), s = l * capacity + buckets[at2];
      for (let p = s, e = s + buckets[at2 + 1]; p < e; p++) {
        const j = ids[p], w = j >>> 5, bit = 1 << (j & 31), sn = seen[w];
        sampled[w] |= sn & bit; // a second (or later) collision
        seen[w] = sn | bit;
      }
    }
    let m = at;
    for (let w = 0, words = Math.ceil(this.count / 32); w < words; w++) {
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
    for (let l = 0; l < this.L; l++) w += this.buckets[2 * (l * this.B + qCodes[qo + l]) + 1];
    return w;
  }

  /** Bytes held: the buckets, room for `capacity` ids per table, and the retrieval scratch. */
  bytes(): number {
    return this.regions.end;
  }
}
