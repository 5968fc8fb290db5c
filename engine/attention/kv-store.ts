// One layer's KV cache in CPU RAM: per KV head, keys and values of `capacity` tokens (head-cache.ts: token i's key at
// keys[g][i · stride + c], interleaved with its value on the SIMD path).
// Float32 or bfloat16 (Uint16Array holding the top 16 bits of the float32; widening is one shift). Capacity doubles
// on growth, so appending n tokens one at a time costs O(n) copies in total, never O(n²). Buffers are
// SharedArrayBuffers so worker threads can read them without a copy.
import type { KvDtype } from './types';
import { HeadCache } from './head-cache';
import { fromBf16, toBf16, widenBf16Pairs, widenRows, widenRowsTransposed, type KvArray } from './rows';

export { fromBf16, toBf16, type KvArray };

/**
 * KvStore.mirrorRows: per KV head, rows [0, length) of K as float32 rows [capacity, D], and of V transposed, float32
 * [D, capacity] (token i in column i; columns from length on unused, zero or stale).
 */
export interface KvMirror {
  keys: Float32Array[];
  valuesT: Float32Array[];
  length: number;
  capacity: number;
}

export class KvStore {
  /** Per KV head: its cache memory (K, V and the decode workspace). */
  heads: HeadCache[] = [];
  /** keys[g], values[g]: views into heads[g]; token i's row starts at i · heads[g].stride. */
  keys: KvArray[] = [];
  values: KvArray[] = [];
  length = 0;
  capacity = 0;

  constructor(readonly numKvHeads: number, readonly headDim: number, readonly dtype: KvDtype) {
    this.reserve(64);
  }

  /** Make room for `tokens` tokens (doubling, so repeated appends stay amortised O(1) per token). */
  reserve(tokens: number): void {
    if (tokens <= this.capacity) return;
    const cap = Math.max(tokens, this.capacity * 2, 64);
    const d = this.headDim;
    for (let g = 0; g < this.numKvHeads; g++) {
      this.heads[g] = new HeadCache(this.dtype, d, cap, this.heads[g], this.length);
      this.keys[g] = this.heads[g].keys;
      this.values[g] = this.heads[g].values;
    }
    this.capacity = cap;
  }

  /**
   * Append n tokens from row-major k/v [n, numKvHeads, headDim]. Keys are stored raw: MagicPIG's centred k̃ = k − k̄
   * is formed only where it is hashed (see sequence.ts), so a cache's bits never depend on its index history.
   */
  append(k: Float32Array, v: Float32Array, n: number): void {
    this.reserve(this.length + n);
    const d = this.headDim, G = this.numKvHeads;
    for (let g = 0; g < G; g++) {
      const K = this.keys[g], V = this.values[g], stride = this.heads[g].stride;
      for (let j = 0; j < n; j++) {
        const src = (j * G + g) * d, dst = (this.length + j) * stride;
        if (K instanceof Float32Array) {
          const Vf = V as Float32Array;
          for (let c = 0; c < d; c++) {
            K[dst + c] = k[src + c];
            Vf[dst + c] = v[src + c];
          }
        } else {
          const Vh = V as Uint16Array;
          for (let c = 0; c < d; c++) {
            K[dst + c] = toBf16(k[src + c]);
            Vh[dst + c] = toBf16(v[src + c]);
          }
        }
      }
    }
    this.length += n;
  }

  /** Every head on the SIMD kernels (a shared WebAssembly memory: what worker threads need). */
  simd(): boolean {
    for (let g = 0; g < this.numKvHeads; g++) if (!this.heads[g].simd) return false;
    return true;
  }

  /** Read key i of head g as float32 into dst (for code that wants one f32 row). */
  keyRow(g: number, i: number, dst: Float32Array): Float32Array {
    const K = this.keys[g], d = this.headDim, o = i * this.heads[g].stride;
    if (K instanceof Float32Array) dst.set(K.subarray(o, o + d));
    else if ((d & 1) === 0 && (o & 1) === 0 && (K.byteOffset & 3) === 0 && (dst.byteOffset & 3) === 0) {
      // Two bfloat16 values a 32-bit load (prepare() reads every key of a fresh index through here), through 32-bit
      // views of the keys and of the destination's memory, kept while those stay the same.
      let kb = this.keyBits[g];
      if (!kb || kb.buffer !== K.buffer || kb.byteOffset !== K.byteOffset) kb = this.keyBits[g] = new Uint32Array(K.buffer, K.byteOffset, K.length >> 1);
      let db = this.dstBits;
      if (!db || db.buffer !== dst.buffer) db = this.dstBits = new Uint32Array(dst.buffer, 0, dst.buffer.byteLength >> 2);
      widenBf16Pairs(kb, o >> 1, db, dst.byteOffset >> 2, d >> 1);
    } else for (let c = 0; c < d; c++) dst[c] = fromBf16(K[o + c]);
    return dst;
  }
  /** keyRow's 32-bit views: of each head's keys (pairs of bfloat16), and of the last destination's memory. */
  private keyBits: (Uint32Array | undefined)[] = [];
  private dstBits: Uint32Array | undefined;

  /** The same tokens stored as `dtype` (a new store; used when a request switches precision). */
  converted(dtype: KvDtype): KvStore {
    if (dtype === this.dtype) return this;
    const out = new KvStore(this.numKvHeads, this.headDim, dtype);
    out.reserve(this.length);
    const d = this.headDim;
    for (let g = 0; g < this.numKvHeads; g++) {
      const ks = this.keys[g], vs = this.values[g], kd = out.keys[g], vd = out.values[g];
      const si = this.heads[g].stride, so = out.heads[g].stride;
      for (let i = 0; i < this.length; i++) {
        for (let c = 0; c < d; c++) {
          const a = i * si + c, b = i * so + c;
          kd[b] = dtype === 'float32' ? fromBf16(ks[a]) : toBf16(ks[a]);
          vd[b] = dtype === 'float32' ? fromBf16(vs[a]) : toBf16(vs[a]);
        }
      }
    }
    out.length = this.length;
    return out;
  }

  truncate(length: number): void {
    this.length = Math.min(this.length, Math.max(0, length));
    if (this.mirror) this.mirror.length = Math.min(this.mirror.length, this.length);
  }

  /**
   * Decode attention inside the layer graphs (graphs.ts GraphOptions.decodeAttention) reads K and V as plain float32
   * (onnxruntime-node takes no SharedArrayBuffer-backed tensor and no bfloat16 one, and the cache rows interleave K
   * with V), V transposed so that both are the A operand of their GEMMs (read in place, graphs.ts says why). This copy
   * holds rows [0, length) of the cache, widened (exact: a bfloat16 is a float32's top half), brought up to date here;
   * truncate() cuts it with the cache, so it never holds stale rows.
   *
   * The graph reads every column of the transposed values, so the capacity follows the request: `end` (the length the
   * request reserved, when known and not passed) or else the length plus an eighth; a copy more than twice that
   * (left by a longer request) is rebuilt smaller.
   */
  mirrorRows(end = 0): KvMirror {
    const d = this.headDim, G = this.numKvHeads;
    const target = end >= this.length ? end : this.length + (this.length >> 3) + 64;
    let m = this.mirror;
    if (!m || m.capacity < this.length || m.capacity > 2 * target + 64) {
      const cap = Math.max(target, 16), kept = m ? Math.min(m.length, this.length) : 0;
      const grown: KvMirror = { keys: [], valuesT: [], length: kept, capacity: cap };
      for (let g = 0; g < G; g++) {
        grown.keys[g] = new Float32Array(cap * d);
        grown.valuesT[g] = new Float32Array(d * cap);
        if (m && kept > 0) {
          grown.keys[g].set(m.keys[g].subarray(0, kept * d));
          for (let c = 0; c < d; c++) grown.valuesT[g].set(m.valuesT[g].subarray(c * m.capacity, c * m.capacity + kept), c * cap);
        }
      }
      m = this.mirror = grown;
    }
    for (let g = 0; g < G && m.length < this.length; g++) {
      const stride = this.heads[g].stride;
      widenRows(this.keys[g], stride, m.keys[g], d, m.length, this.length);
      widenRowsTransposed(this.values[g], stride, m.valuesT[g], d, m.capacity, m.length, this.length);
    }
    m.length = this.length;
    return m;
  }

  /** The float32 copy when it holds every cached row (no copying here), else null. */
  currentMirror(): KvMirror | null {
    return this.mirror && this.mirror.length === this.length ? this.mirror : null;
  }

  /** Free the float32 copy (the cache outgrew what the graphs' attention is used for). */
  dropMirror(): void {
    this.mirror = null;
  }

  /** Bytes of the float32 copy (0 without one). */
  mirrorBytes(): number {
    return this.mirror ? 8 * this.numKvHeads * this.mirror.capacity * this.headDim : 0;
  }

  private mirror: KvMirror | null = null;

  /** Bytes held (capacity, i.e. what is really allocated, workspace and the float32 copy included). */
  bytes(): number {
    return this.heads.reduce((a, h) => a + h.bytes, 0) + this.mirrorBytes();
  }

  /** Bytes of the cached tokens (length, not capacity). */
  usedBytes(): number {
    const per = this.dtype === 'float32' ? 4 : 2;
    return 2 * this.numKvHeads * this.length * this.headDim * per;
  }
}
