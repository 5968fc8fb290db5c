// What MagicPIG (and the TopK/Quest baselines) keep per layer and KV head beside the cache itself: the centring
// offset k̄, the norms |k̃_i| of indexed keys, the L bucket tables and Quest's per-page channel min/max. The keys in
// the KvStore stay raw (k̃ = k − k̄ is formed when a key is indexed and, as q·k̄, at each step), so none of this
// duplicates the cache.
import type { KvStore } from './kv-store';
import { LshTables } from './lsh-tables';

/** Quest page size (tokens). */
export const PAGE = 16;

export class HeadIndex {
  /** k̄ (spec §2; which keys it averages: sequence.ts, KBAR_SPAN). Codes and norms of indexed keys are of k − k̄. */
  kbar: Float32Array | null = null;
  /** |k̃_i| for indexed token i (indexed by absolute position; capacity grows by doubling). */
  norms: Float32Array<ArrayBufferLike> = new Float32Array(0);
  tables: LshTables | null = null;
  /** Quest: per page of PAGE indexed keys, channel-wise min and max, [pages, d]. Valid for `pagesValid` pages. */
  pageMin = new Float32Array(0);
  pageMax = new Float32Array(0);
  pagesValid = 0;

  constructor(readonly g: number, readonly d: number) {}

  ensureNorms(capacity: number): void {
    if (this.norms.length >= capacity) return;
    const n = new Float32Array(new SharedArrayBuffer(4 * Math.max(capacity, this.norms.length * 2))); // shared with workers
    n.set(this.norms);
    this.norms = n;
  }

  bytes(): number {
    return this.norms.byteLength + (this.tables?.bytes() ?? 0) + this.pageMin.byteLength + this.pageMax.byteLength
      + (this.kbar?.byteLength ?? 0);
  }

  /**
   * Bring Quest pages up to date for indexed range [base, end). Pages are recomputed from the first one whose range
   * changed (a fold extends the last partial page; a truncate cuts it).
   */
  updatePages(kv: KvStore, base: number, end: number, row: Float32Array): void {
    const d = this.d, pages = Math.ceil(Math.max(0, end - base) / PAGE);
    if (this.pageMin.length < pages * d) {
      const cap = Math.max(pages, (this.pageMin.length / d) * 2) * d;
      const mn = new Float32Array(cap), mx = new Float32Array(cap);
      mn.set(this.pageMin.subarray(0, this.pagesValid * d));
      mx.set(this.pageMax.subarray(0, this.pagesValid * d));
      this.pageMin = mn;
      this.pageMax = mx;
    }
    for (let p = Math.min(this.pagesValid, pages); p < pages; p++) {
      const s = base + p * PAGE, e = Math.min(end, s + PAGE), o = p * d;
      this.pageMin.fill(Infinity, o, o + d);
      this.pageMax.fill(-Infinity, o, o + d);
      for (let i = s; i < e; i++) {
        kv.keyRow(this.g, i, row);
        for (let c = 0; c < d; c++) {
          if (row[c] < this.pageMin[o + c]) this.pageMin[o + c] = row[c];
          if (row[c] > this.pageMax[o + c]) this.pageMax[o + c] = row[c];
        }
      }
    }
    this.pagesValid = pages;
  }

  /** Pages fully inside [base, end) stay valid; the rest are recomputed by the next updatePages. */
  invalidatePagesFrom(base: number, end: number): void {
    this.pagesValid = Math.min(this.pagesValid, Math.floor(Math.max(0, end - base) / PAGE));
  }
}
