// One KV head's slice of a layer's cache: keys and values of `capacity` tokens plus the decode-step workspace
// (query, gathered ids, their logits/weights, an output accumulator) — all in one memory so the WebAssembly SIMD
// kernels read the cache in place. headDim % 8 == 0 (float32 or bfloat16): a shared WebAssembly.Memory with each
// token's key and value side by side (row i: k_i then v_i, `stride` = 2·d elements), so a sampled token's K and V
// share one 4 KB page — one TLB miss, not two (the sampled gathers are bound by page walks: see README); otherwise (odd
// dims, no SIMD) plain SharedArrayBuffers, K and V each [capacity, d] (stride d), and the TypeScript kernels. Growth
// makes a new, larger memory and copies K and V once (capacity doubles, so total copying stays O(n)).
import type { KvDtype } from './types';
import { LOG_WEIGHT_POINTS, instantiate, kernelModule, type WasmKernels } from './kernels/kernels';
import { dotRow, type KvArray } from './rows';

export type { KvArray };

const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);
const align = (x: number) => (x + 63) & ~63;

/**
 * Query / output slots in the workspace: the query heads of one GQA group attend together (methods/magicpig.ts), so a
 * key row sampled by several of them is read from memory once. Larger groups go in batches of SLOTS.
 */
export const SLOTS = 16;

/** Key rows per block of attendPrefixGroup: 256 rows of d = 128 float32 are 256 KB of K and V, inside L2 (512 KB). */
const DENSE_BLOCK = 256;

export class HeadCache {
  /** Key c of token i is keys[i · stride + c], its value values[i · stride + c]. */
  keys: KvArray;
  values: KvArray;
  /** Elements from one token's row to the next: 2·d (interleaved, SIMD path) or d. */
  readonly stride: number;
  /** Workspace: ids of the keys gathered this step (exact set first, then sampled/selected). */
  ids: Int32Array;
  /** Workspace: one float per gathered id (scores, then softmax weights). */
  logits: Float32Array;
  /** Workspace: |k − k̄| per gathered id, from the index's norms (logWeightsAt reads it; SIMD path only). */
  norms: Float32Array | null = null;
  /** Workspace: the query (copied in) and the output accumulator — slot 0 of qs / os. */
  q: Float32Array;
  o: Float32Array;
  /** Workspace: SLOTS queries and output accumulators (one per query head of a group). */
  qs: Float32Array[];
  os: Float32Array[];
  private wasm: WasmKernels | null = null;
  private normsOff = 0;
  /** The log-weight table (LOG_WEIGHT_POINTS + 2 floats) for logWeightsAt, and which table it holds now. */
  private tableOff = 0;
  private tableHeld: Float32Array | null = null;
  private readonly groupMax = new Float64Array(SLOTS);
  private readonly groupZ = new Float64Array(SLOTS);
  private kOff = 0;
  private vOff = 0;
  /** Bytes of one row (d channels) and from one token to the next. */
  private rowBytes = 0;
  private strideBytes = 0;
  private idsOff = 0;
  /** attendPrefixGroup's block scores: SLOTS × DENSE_BLOCK floats (fixed, so block bounds never depend on capacity). */
  private scoresOff = 0;
  private scores: Float32Array | null = null;
  private logitsOff = 0;
  private qOff = 0;
  private oOff = 0;
  readonly bytes: number;
  private readonly bf16: boolean;
  /** The WebAssembly memory holding everything (SIMD path), shareable with worker threads. */
  readonly memory: WebAssembly.Memory | null = null;

  /**
   * A new head of `capacity` tokens (copying `length` tokens from prev), or — with `attach` — a view of an existing
   * head's memory (worker threads: same layout, same bytes, no copy).
   */
  constructor(readonly dtype: KvDtype, readonly d: number, readonly capacity: number, prev?: HeadCache, length = 0,
    attach?: WebAssembly.Memory) {
    const useWasm = d % 8 === 0 && kernelModule() !== null;
    this.bf16 = dtype === 'bfloat16';
    const bpe = dtype === 'float32' ? 4 : 2, kvBytes = capacity * d * bpe;
    this.rowBytes = d * bpe;
    this.stride = useWasm ? 2 * d : d;
    this.strideBytes = this.stride * bpe;
    if (useWasm) {
      this.qOff = 64;
      this.oOff = align(this.qOff + 4 * d * SLOTS);
      this.scoresOff = align(this.oOff + 4 * d * SLOTS);
      this.idsOff = align(this.scoresOff + 4 * SLOTS * DENSE_BLOCK);
      this.logitsOff = align(this.idsOff + 4 * capacity);
      this.normsOff = align(this.logitsOff + 4 * capacity);
      this.tableOff = align(this.normsOff + 4 * capacity);
      this.kOff = align(this.tableOff + 4 * (LOG_WEIGHT_POINTS + 2));
      this.vOff = this.kOff + this.rowBytes;
      const pages = Math.ceil((this.kOff + 2 * kvBytes) / 65536);
      const mem = attach ?? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      this.memory = mem;
      const buf = mem.buffer;
      this.wasm = instantiate(mem, d);
      this.norms = new Float32Array(buf, this.normsOff, capacity);
      const n = 2 * capacity * d;
      this.keys = dtype === 'float32' ? new Float32Array(buf, this.kOff, n) : new Uint16Array(buf, this.kOff, n);
      this.values = dtype === 'float32' ? new Float32Array(buf, this.vOff, n - d) : new Uint16Array(buf, this.vOff, n - d);
      this.ids = new Int32Array(buf, this.idsOff, capacity);
      this.logits = new Float32Array(buf, this.logitsOff, capacity);
      this.qs = Array.from({ length: SLOTS }, (_, i) => new Float32Array(buf, this.qOff + 4 * d * i, d));
      this.os = Array.from({ length: SLOTS }, (_, i) => new Float32Array(buf, this.oOff + 4 * d * i, d));
      this.bytes = pages * 65536;
    } else {
      const kv = (n: number): KvArray => dtype === 'float32'
        ? new Float32Array(new SharedArrayBuffer(Math.max(4, n * 4))) : new Uint16Array(new SharedArrayBuffer(Math.max(4, n * 2)));
      this.keys = kv(capacity * d);
      this.values = kv(capacity * d);
      this.ids = new Int32Array(capacity);
      this.logits = new Float32Array(capacity);
      this.qs = Array.from({ length: SLOTS }, () => new Float32Array(d));
      this.os = Array.from({ length: SLOTS }, () => new Float32Array(d));
      this.bytes = 2 * kvBytes + 8 * capacity + 8 * d * SLOTS;
    }
    this.q = this.qs[0];
    this.o = this.os[0];
    if (prev) { // same layout (it depends on d, dtype and the runtime only)
      this.keys.set(prev.keys.subarray(0, length * this.stride) as never);
      if (this.stride === d) this.values.set(prev.values.subarray(0, length * d) as never);
    }
  }

  /**
   * Benches: read every 64-byte line of the K and V rows of `ids` and nothing else (wasm `touch`, 8 lines in flight;
   * the TypeScript path reads one element per line) — the memory traffic of a step's gathers without their arithmetic.
   * Returns a checksum of what was read (wasm: the 32-bit words, wrapping), so no load can be dropped.
   */
  touchRows(ids: Int32Array): number {
    if (this.wasm) {
      const w = this.wasm, k = this.kOff, sb = this.strideBytes;
      let sum = 0;
      for (let j = 0; j < ids.length; j++) sum = (sum + w.touch(k + ids[j] * sb, sb)) | 0;
      return sum;
    }
    const step = this.bf16 ? 32 : 16, K = this.keys, V = this.values;
    let acc = 0;
    for (let j = 0; j < ids.length; j++) {
      const base = ids[j] * this.stride;
      for (let c = 0; c < this.d; c += step) acc += K[base + c] + V[base + c];
    }
    return acc | 0;
  }

  /** logits[j] = q · K[ids[j]] for j < m (unscaled). */
  dotsIds(m: number): void {
    this.dotsAt(0, 0, m);
  }

  /** logits[at + j] = qs[slot] · K[ids[at + j]] for j < m (unscaled). */
  dotsAt(slot: number, at: number, m: number): void {
    if (this.wasm) {
      const q = this.qOff + 4 * this.d * slot, ids = this.idsOff + 4 * at, out = this.logitsOff + 4 * at;
      if (this.bf16) return this.wasm.dotsIds16(q, this.kOff, ids, out, m, this.rowBytes, this.strideBytes);
      return this.wasm.dotsIds(q, this.kOff, ids, out, m, this.rowBytes, this.strideBytes);
    }
    const q = this.qs[slot];
    for (let j = at; j < at + m; j++) this.logits[j] = dotRow(q, 0, this.keys, this.ids[j], this.d);
  }

  /**
   * logits[at + j] = scale · (qs[slot] · K[ids[at + j]]) for j < m; returns the largest (−∞ for m = 0), computed in
   * double before the float store as in the loop below (the WebAssembly kernel does the same in one call).
   */
  dotsScaledAt(slot: number, at: number, m: number, scale: number): number {
    if (this.wasm) {
      const q = this.qOff + 4 * this.d * slot, ids = this.idsOff + 4 * at, out = this.logitsOff + 4 * at;
      if (this.bf16) return this.wasm.dotsIdsMax16(q, this.kOff, ids, out, m, this.rowBytes, this.strideBytes, scale);
      return this.wasm.dotsIdsMax(q, this.kOff, ids, out, m, this.rowBytes, this.strideBytes, scale);
    }
    this.dotsAt(slot, at, m);
    const logits = this.logits;
    let mx = -Infinity;
    for (let j = at; j < at + m; j++) {
      const x = logits[j] * scale;
      logits[j] = x;
      if (x > mx) mx = x;
    }
    return mx;
  }

  /** p[at + j] = exp(p[at + j] − shift) for j < m; returns the sum (where the WebAssembly loop is unavailable). */
  private expLoop(p: Float32Array, at: number, m: number, shift: number): number {
    let z = 0;
    for (let j = at; j < at + m; j++) {
      const e = Math.exp(p[j] - shift);
      p[j] = e;
      z += e;
    }
    return z;
  }

  /** True when logWeightsAt / expAt are available (the SIMD path). */
  get hasMath(): boolean {
    return this.wasm !== null;
  }

  /** Hold `t` (a LogWeightTable's LOG_WEIGHT_POINTS + 2 floats) for logWeightsAt; copied only when it changes. */
  useLogWeights(t: Float32Array): void {
    if (this.tableHeld === t) return;
    new Float32Array(this.memory!.buffer, this.tableOff, LOG_WEIGHT_POINTS + 2).set(t);
    this.tableHeld = t;
  }

  /**
   * After dotsAt (logits = q·k) and with norms[at + j] = |k − k̄|: logits[at + j] = logits[at + j] · scale −
   * log(u + 1e-4) from the held table, u at the angle of cos = (q·k − qk) / (qn · |k − k̄|); returns the largest
   * (methods/magicpig.ts sampledBlock, spec §6-7).
   */
  logWeightsAt(at: number, m: number, qn: number, qk: number, scale: number): number {
    return this.wasm!.logWeights(this.logitsOff + 4 * at, this.normsOff + 4 * at, m, this.tableOff, qn, qk, scale);
  }

  /** logits[at + j] = exp(logits[at + j] − shift) for j < m; returns their sum (WebAssembly where available). */
  expAt(at: number, m: number, shift: number): number {
    return this.wasm ? this.wasm.expShift(this.logitsOff + 4 * at, m, shift) : this.expLoop(this.logits, at, m, shift);
  }

  /** logits[j] = q · K[start + j] for j < m (unscaled). */
  dotsRange(start: number, m: number): void {
    if (this.wasm) {
      if (this.bf16) return this.wasm.dotsRange16(this.qOff, this.kOff, start, this.logitsOff, m, this.rowBytes, this.strideBytes);
      return this.wasm.dotsRange(this.qOff, this.kOff, start, this.logitsOff, m, this.rowBytes, this.strideBytes);
    }
    for (let j = 0; j < m; j++) this.logits[j] = dotRow(this.q, 0, this.keys, start + j, this.d);
  }

  /** True when the WebAssembly kernels serve this head (headDim % 8 == 0 and SIMD available). */
  get simd(): boolean {
    return this.wasm !== null;
  }

  /**
   * Exact attention of `count` consecutive query rows q[qo + s·d ..] (the query heads of one GQA group, count ≤
   * SLOTS) over keys [0, end), into out[oo + s·d ..]. The group reads K and V once: block by block of DENSE_BLOCK
   * rows, every head scores the block while it is in cache, with a running max and rescaling per head
   * (flash-decoding's online softmax), so scores need count · block floats, not count · end. Each block is touched
   * first (kernels.c `touch`, a prefetch), so its heads read it from L2, not at the pace of their stalls.
   * Caller checks `simd`.
   * Measured (tiny-coder decode, 2 query heads per KV head): see bench-results/attention-decisions.md.
   */
  attendPrefixGroup(q: Float32Array, qo: number, count: number, end: number, scale: number, out: Float32Array, oo: number): void {
    const w = this.wasm!, d = this.d, rowBytes = (this.bf16 ? 2 : 4) * d, bl = DENSE_BLOCK;
    const logits = (this.scores ??= new Float32Array(this.memory!.buffer, this.scoresOff, SLOTS * DENSE_BLOCK));
    const mx = this.groupMax, z = this.groupZ;
    for (let s = 0; s < count; s++) {
      const cq = this.qs[s];
      for (let c = 0; c < d; c++) cq[c] = q[qo + s * d + c];
      this.os[s].fill(0);
      mx[s] = -Infinity;
      z[s] = 0;
    }
    for (let b0 = 0; b0 < end; b0 += bl) {
      const m = Math.min(bl, end - b0);
      // Bring the block's K and V lines in first, many misses at a time; the heads below then read them from L2.
      w.touch(this.kOff + b0 * this.strideBytes, m * this.strideBytes);
      for (let s = 0; s < count; s++) {
        const qp = this.qOff + 4 * d * s, lp = this.scoresOff + 4 * bl * s, at = bl * s;
        // Scaled scores of the block and their max in one kernel call.
        const bmax = this.bf16 ? w.dotsRangeMax16(qp, this.kOff, b0, lp, m, rowBytes, this.strideBytes, scale)
          : w.dotsRangeMax(qp, this.kOff, b0, lp, m, rowBytes, this.strideBytes, scale);
        if (bmax > mx[s]) { // a new max: rescale what was summed so far
          const r = Math.exp(mx[s] - bmax), o = this.os[s];
          z[s] *= r;
          for (let c = 0; c < d; c++) o[c] *= r;
          mx[s] = bmax;
        }
        z[s] += this.wasm ? this.wasm.expShift(lp, m, mx[s]) : this.expLoop(logits, at, m, mx[s]);
        const op = this.oOff + 4 * d * s;
        if (this.bf16) w.axpyRange16(op, this.vOff, b0, lp, m, rowBytes, this.strideBytes);
        else w.axpyRange(op, this.vOff, b0, lp, m, rowBytes, this.strideBytes);
      }
    }
    for (let s = 0; s < count; s++) {
      const o = this.os[s], inv = z[s] > 0 ? 1 / z[s] : 0;
      for (let c = 0; c < d; c++) out[oo + s * d + c] = o[c] * inv;
    }
  }

  /** o += Σ_j logits[j] · V[ids[j]] for j < m (logits hold the weights by then). */
  axpyIds(m: number): void {
    this.axpyAt(0, 0, m);
  }

  /** os[slot] += Σ_j logits[at + j] · V[ids[at + j]] for j < m. */
  axpyAt(slot: number, at: number, m: number): void {
    if (this.wasm) {
      const o = this.oOff + 4 * this.d * slot, ids = this.idsOff + 4 * at, w = this.logitsOff + 4 * at;
      if (this.bf16) return this.wasm.axpyIds16(o, this.vOff, ids, w, m, this.rowBytes, this.strideBytes);
      return this.wasm.axpyIds(o, this.vOff, ids, w, m, this.rowBytes, this.strideBytes);
    }
    const d = this.d, o = this.os[slot], V = this.values;
    for (let j = at; j < at + m; j++) {
      const w = this.logits[j], vo = this.ids[j] * d;
      if (V instanceof Float32Array) for (let c = 0; c < d; c++) o[c] += w * V[vo + c];
      else for (let c = 0; c < d; c++) { castU32[0] = V[vo + c] << 16; o[c] += w * castF32[0]; }
    }
  }
}
