// One sequence's KV cache (per layer) plus the configured attention method. Prefill chunks are always exact; decode
// steps dispatch on the method. Contract: types.ts. Algorithm: ../shared/design/magicpig.md (section numbers "§n").
//
// Token ranges, per non-dense layer:  [0, sinks) sinks · [sinks, indexedEnd) indexed I · [indexedEnd, length) exact
// tail (old window + not-yet-indexed context + tokens generated in this request). T = sinks ∪ tail.
//
// Prefill vs decode: every forward() before endPrefill() is a prefill chunk (exact, whatever its n — a one-token
// remainder of a prompt whose prefix was cached is still prompt); after endPrefill(), n === 1 is a decode step.
// truncate() starts a new prompt (prefill mode again).
//
// The index is a function of the current context only (prefix-cache determinism: a cached sequence must decode
// exactly like a cold run of the same prompt), never of how the sequence got there:
// - I = [sinks, target) with target on a fixed grid of block B = max(1, tailThreshold) from `sinks`: the fewest whole
//   blocks that leave at most tailThreshold context tokens beyond the window unindexed (indexTarget). So a context of
//   at most sinks + window + tailThreshold tokens is attended exactly (magicpig equals dense there). Indexing happens
//   in prepare() (or at the first decode step) and only adds/removes whole blocks: a keystroke costs one block's hash.
// - Keys stay raw in the cache (never shifted in place: a prefill over a reused prefix then sees the same bits as a
//   cold one). k̃ = k − k̄ is formed only where the spec needs it: key hashes and norms at indexing, and the
//   cosine of the sampling probability (decode-kernels: q·k̃_i = q·k_i − q·k̄). Scores use raw keys: q·k̄ is the same
//   constant for every key of a head, which the softmax ignores (spec §2's own argument).
// - k̄ = mean of the first kbarSpan(|I|) keys of I (a power of two, at most KBAR_SPAN). Deviation from spec §2 (k̄ =
//   mean of all of I): that mean moves with every fold, and every moved k̄ re-hashes the whole index — a keystroke on
//   a long file would re-index everything and kill the prefix cache. A prefix mean is canonical and stable; see
//   KBAR_SPAN for the measured loss.
// - Table buckets hold ids in ascending order whatever the fold history (folds append larger ids; cuts keep order), so
//   retrieval emits the same ids in the same order.
import type { AttentionConfig, AttentionShape, AttentionStats, SequenceAttention, PrepareOptions } from './types';
import { availableParallelism } from 'node:os';
import { KvStore } from './kv-store';
import { SLOTS } from './head-cache';
import { DenseKernel } from './dense';
import { HeadIndex, PAGE } from './head-index';
import { LshTables } from './lsh-tables';
import { simhashFor, type SimHash } from './simhash';
import { DecodeKernels, magicpigGroup, type HeadInput, type Ranges, type StepProfile } from './decode-kernels';
import { attentionPool, JobField } from './worker-pool';

/**
 * k̄ (spec §2) is the mean of the first kbarSpan(|I|) keys of I: the largest power of two ≤ |I|, at most KBAR_SPAN.
 * A new span means a new k̄ and re-hashing I, so spans double: while I grows to KBAR_SPAN each key is re-hashed
 * O(1) times in total (one rehash per doubling, none per block), and k̄ always averages at least half of I below
 * KBAR_SPAN. Measured (engine/attention/README.md, "k̄"): on tiny-coder keys a short prefix mean is a poor stand-in
 * for the full mean (RoPE turns the offset with position), hence a span of 1024, not one block.
 */
export const KBAR_SPAN = 1024;
export const kbarSpan = (indexed: number): number => (indexed <= 0 ? 0 : Math.min(KBAR_SPAN, 2 ** (31 - Math.clz32(indexed))));

interface LayerState {
  kv: KvStore;
  heads: HeadIndex[];
  /** I = [sinks, indexedEnd). */
  indexedEnd: number;
  /** Keys averaged into every heads[g].kbar: min(KBAR_SPAN, |I| at the time); 0 = no k̄. */
  kbarSpan: number;
}

/**
 * Query hashing for decode steps (forwardAsync): the ONNX graph when numHeads · d · K · L reaches this many
 * multiply-adds, else the SIMD CPU kernel. Measured per layer-step on the shared 2-core CPU (K = 10, L = 150; CPU kernel
 * vs a 1-thread graph call, awaited): 4 heads × d 64 (0.38M MACs) 0.09 vs 0.14 ms; 8 × 64 (0.77M) 0.23 vs 0.22 ms;
 * 14 × 64 (1.3M) 0.51 vs 0.46 ms; 16 × 128 (3.1M) 0.94 vs 0.35 ms; 32 × 128 (6.1M) 1.83 vs 0.51 ms. The crossing is
 * near 0.8M; below 1M the two are within noise, so the CPU kernel (no graph session, no await) takes it.
 */
/** Work (numHeads · headDim · indexed keys) from which a decode step uses 2 threads (see Sequence.threads). */
export const THREADS_MIN_WORK = 6_000_000;
/**
 * The same for an exact decode step (every key is read, so far fewer keys pay off). Measured on isolated steps (medians
 * of 20, 1 vs 2 threads): tiny-coder's 4 / 2 heads, d 64: 0.26 vs 0.31 ms at 1K keys, 1.06 vs 0.75 at 4K, 8.9 vs 5.3
 * at 32K; 32 / 8, d 128 at 16K: 46.6 vs 32.1 ms. Inside the model runner (ONNX graphs between the steps) the hand-off
 * costs more: tiny-coder dense decode 8.8–11.0 vs 10.5–11.4 ms/token at 4K (no gain), 29–31 vs 24–25 at 16K, 49–59 vs
 * 34–35 at 32K — hence 3M (≈ 12K keys for tiny-coder), not 1M.
 */
export const DENSE_THREADS_MIN_WORK = 3_000_000;

export const GRAPH_HASH_MIN_MACS = 1_000_000;

/**
 * Keys per run of the key-hash graph in prepare(). onnxruntime's CPU arena keeps a run's largest intermediates for
 * the session's life ([batch, K·L] projections, bits, weighted bits: 3 × 4 B × 1500 per key at K 10, L 150), so the
 * batch sets memory that a process never gets back: 8192 keys held +206 MB of RSS, 512 keys +18 MB, at the same
 * hashing throughput (0.13-0.15 M keys/s at d 64, 0.11-0.12 at d 128). tiny-coder at 16K, magicpig, peak RSS
 * 882 → 693 MB (dense: 604-662 MB).
 */
export const HASH_BATCH = 512;

export class Sequence implements SequenceAttention {
  private config: AttentionConfig;
  private layers: LayerState[];
  private readonly dense: DenseKernel;
  private readonly kernels: DecodeKernels;
  private qCodes = new Int32Array(0);
  private sampled = new Int32Array(0);
  /** Query codes [numHeads, L] for the decode step forward() is about to run (from forwardAsync), else null. */
  private stepCodes: Int32Array | null = null;
  private provider: NonNullable<PrepareOptions['provider']> = 'auto';
  private queryGraph: { hasher: SimHash; provider: string; graph: import('./hash-graph').KeyHashGraph } | null = null;
  private readonly row: Float32Array;
  private readonly headInput: HeadInput;
  private readonly ranges: Ranges = { sinks: 0, indexedEnd: 0, length: 0 };
  /** Tokens before this are context (may be indexed); set by endPrefill. */
  private contextEnd = 0;
  private sampledSum = 0;
  private sampledCount = 0;
  /** Query-hash choice of forwardAsync (GRAPH_HASH_MIN_MACS); tests set 0 to run the graph on small shapes. */
  graphHashMinMacs = GRAPH_HASH_MIN_MACS;
  /** Set by benches: decode steps then accumulate timings and traffic counters into `profile`. */
  profiling = false;
  readonly profile: StepProfile = { hashMs: 0, retrieveMs: 0, attendMs: 0, walkedIds: 0, sampledKeys: 0, exactKeys: 0, heads: 0, rows: null };

  constructor(readonly shape: AttentionShape, config: AttentionConfig) {
    if (shape.numHeads % shape.numKvHeads !== 0) throw new Error('numHeads must be a multiple of numKvHeads');
    this.config = { ...config };
    this.layers = Array.from({ length: shape.numLayers }, () => this.makeLayer());
    this.dense = new DenseKernel(shape.numHeads, shape.numKvHeads, shape.headDim);
    this.kernels = new DecodeKernels(shape.headDim);
    this.row = new Float32Array(shape.headDim);
    this.headInput = { q: this.row, qo: 0, cache: this.layers[0].kv.heads[0], index: new HeadIndex(0, shape.headDim) };
  }

  private makeLayer(): LayerState {
    const { numKvHeads, headDim } = this.shape;
    return {
      kv: new KvStore(numKvHeads, headDim, this.config.kvDtype),
      heads: Array.from({ length: numKvHeads }, (_, g) => new HeadIndex(g, headDim)),
      indexedEnd: this.config.sinks,
      kbarSpan: 0,
    };
  }

  get length(): number {
    return this.layers[this.layers.length - 1].kv.length;
  }

  private isDenseLayer(layer: number): boolean {
    return this.config.denseLayers.includes(layer);
  }

  /**
   * First position whose K/V came out of a decode step that sampled (its later layers saw approximate attention), else
   * Infinity. A cold prefill computes that token exactly, so reusing it cannot match a cold run bit for bit.
   */
  private firstApprox = Infinity;
  get exactLength(): number {
    return Math.min(this.length, this.firstApprox);
  }

  /** Before endPrefill() every forward is prompt (exact); after it, n === 1 is a decode step of the method. */
  private decoding = false;
  private isDecodeStep(layer: number, n: number): boolean {
    return this.decoding && n === 1 && this.config.method !== 'dense' && !this.isDenseLayer(layer);
  }

  private hasher: SimHash | null = null;
  private simhash(): SimHash {
    const { K, L, seed } = this.config, h = this.hasher;
    if (h && h.K === K && h.L === L && h.seed === seed) return h;
    return (this.hasher = simhashFor(this.shape.headDim, K, L, seed));
  }

  forward(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array): void {
    const st = this.layers[layer];
    st.kv.append(k, v, n);
    if (!this.isDecodeStep(layer, n)) {
      if (!this.exactStepThreaded(st, layer, q, n, out)) this.dense.causal(st.kv, q, n, out);
      return;
    }
    const todo = this.reconcile(layer);
    if (todo) this.fold(layer, todo.start, todo.end, null);
    if (st.indexedEnd > this.config.sinks) this.firstApprox = Math.min(this.firstApprox, st.kv.length - 1);
    this.decode(st, q, out);
  }

  /**
   * forward(), with the decode step's query hash computed by the ONNX SimHash graph (one [numHeads, d]·W product on
   * the selected provider) instead of the CPU kernel. Measured on the shared 2-core CPU (32 heads, d = 128,
   * K·L = 1500): ~0.6 ms per layer-step for the graph call vs ~1.8 ms for the SIMD dot kernel (15-50 ms for plain
   * TypeScript); for small models (tiny-coder: 4 heads, d = 64) the CPU kernel is cheaper than a graph call.
   * Exact calls (prompt chunks, dense layers or method) go to DenseKernel.causalAsync.
   */
  async forwardAsync(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array): Promise<void> {
    if (!this.isDecodeStep(layer, n)) {
      // Exact attention (prompt chunks, dense layers/method): DenseKernel.causalAsync runs big chunks as one ONNX graph
      // (its own work threshold; small ones stay on the CPU loop).
      const st = this.layers[layer];
      st.kv.append(k, v, n);
      if (!this.exactStepThreaded(st, layer, q, n, out)) await this.dense.causalAsync(st.kv, q, n, out, this.provider);
      return;
    }
    const { method, budget, K, L } = this.config;
    const hashes = this.isDecodeStep(layer, n) && (method === 'magicpig' || budget === 'auto');
    if (hashes && K * L > 0 && this.shape.numHeads * this.shape.headDim * K * L >= this.graphHashMinMacs) {
      const h = this.simhash();
      let graph = this.queryGraph?.hasher === h && this.queryGraph.provider === this.provider ? this.queryGraph.graph : null;
      if (!graph) {
        const { KeyHashGraph } = await import('./hash-graph');
        graph = await KeyHashGraph.create(h, this.provider, 1);
        this.queryGraph = { hasher: h, provider: this.provider, graph };
      }
      const t = this.profiling ? performance.now() : 0;
      this.stepCodes = await graph.hash(q, this.shape.numHeads);
      if (this.profiling) this.profile.hashMs += performance.now() - t;
    }
    try {
      this.forward(layer, q, k, v, n, out);
    } finally {
      this.stepCodes = null;
    }
  }

  /** Benches: append n context tokens to `layer` without computing attention (builds long caches fast). */
  appendOnly(layer: number, k: Float32Array, v: Float32Array, n: number): void {
    this.layers[layer].kv.append(k, v, n);
  }

  resetProfile(): void {
    const p = this.profile;
    p.hashMs = p.retrieveMs = p.attendMs = p.walkedIds = p.sampledKeys = p.exactKeys = p.heads = 0;
  }

  /**
   * Benches: the distinct key ids sampled per KV head, ascending, by the profiled one-thread MagicPIG decode steps run
   * since `profile.rows` was set to [] (collecting costs time inside the step: use an untimed step). Stops collecting.
   */
  sampledRows(): Int32Array[] {
    const rows = this.profile.rows ?? [];
    this.profile.rows = null;
    return Array.from({ length: this.shape.numKvHeads }, (_, g) => Int32Array.from(rows[g] ?? []).sort());
  }

  /**
   * Benches: read every cache line of the K and V rows `rows[g]` of each KV head of `layer`, and nothing else — a
   * step's gathers without their arithmetic (head-cache.ts touchRows). Returns the sum of the words read.
   */
  touchRows(layer: number, rows: Int32Array[]): number {
    let sum = 0;
    for (const [g, ids] of rows.entries()) sum = (sum + this.layers[layer].kv.heads[g].touchRows(ids)) | 0;
    return sum;
  }

  /** One decode step on a sampled layer (n = 1). */
  private decode(st: LayerState, q: Float32Array, out: Float32Array): void {
    const { numHeads: H, numKvHeads: G, headDim: d } = this.shape;
    const { method, K, L, budget } = this.config;
    const r = this.ranges;
    r.sinks = this.config.sinks;
    r.indexedEnd = st.indexedEnd;
    r.length = st.kv.length;
    const count = st.indexedEnd - r.sinks;
    const ker = this.kernels, x = this.headInput;
    ker.reserve(count);
    if (this.qCodes.length < L) this.qCodes = new Int32Array(L);
    const hasher = count > 0 && (method === 'magicpig' || budget === 'auto') ? this.simhash() : null;
    if (method === 'quest' && count > 0) {
      for (const hi of st.heads) hi.updatePages(st.kv, r.sinks, st.indexedEnd, this.row);
    }
    const threads = this.threads(count);
    if (threads > 1 && method === 'magicpig' && count > 0 && st.kv.simd()) {
      this.decodeThreaded(st, q, out, threads, count);
      return;
    }
    const group = H / G, prof = this.profiling ? this.profile : null;
    if (method === 'magicpig' && hasher) {
      // Per KV head, its query heads together (decode-kernels.ts magicpigGroup: shared row fetches).
      if (this.qCodes.length < H * L) this.qCodes = new Int32Array(H * L);
      if (this.sampled.length < H) this.sampled = new Int32Array(H);
      const codes = this.stepCodes ?? this.qCodes, hash = this.stepCodes ? null : hasher;
      for (let g = 0; g < G; g++) {
        magicpigGroup(ker, st.kv.heads[g], st.heads[g], g, H, G, r, K, L, q, codes, hash, out, this.sampled, prof);
      }
      for (let h = 0; h < H; h++) {
        this.sampledSum += this.sampled[h] / count;
        this.sampledCount++;
      }
      return;
    }
    for (let h = 0; h < H; h++) {
      const g = (h / group) | 0;
      x.q = q; x.qo = h * d; x.cache = st.kv.heads[g]; x.index = st.heads[g];
      const t0 = prof ? performance.now() : 0;
      const nT = ker.begin(x, r);
      let m = 0;
      if (hasher) {
        let codes: Int32Array = this.qCodes, co = 0;
        // Query hash: from forwardAsync's ONNX graph when the runner decodes through it, else the CPU loop.
        if (this.stepCodes) { codes = this.stepCodes; co = h * L; }
        else hasher.hashInto(q, h * d, codes, 0);
        const t1 = prof ? performance.now() : 0;
        m = ker.retrieve(x, codes, co, nT);
        if (prof) {
          prof.hashMs += t1 - t0;
          prof.retrieveMs += performance.now() - t1;
          prof.walkedIds += st.heads[g].tables!.walked(codes, co);
        }
      }
      const t2 = prof ? performance.now() : 0;
      let used = m;
      if (method === 'magicpig') ker.magicpig(x, nT, m, K, L, out, h * d);
      else if (method === 'topk') used = ker.topk(x, r, nT, budget === 'auto' ? m : Math.round(budget * count), out, h * d);
      else {
        const pages = budget === 'auto' ? Math.ceil(m / PAGE) : Math.ceil(budget * Math.ceil(count / PAGE));
        used = ker.quest(x, r, nT, pages, out, h * d);
      }
      if (count > 0) {
        this.sampledSum += used / count;
        this.sampledCount++;
      }
      if (prof) {
        prof.attendMs += performance.now() - t2;
        prof.sampledKeys += used;
        prof.exactKeys += nT;
        prof.heads++;
      }
    }
  }

  /**
   * Threads for a decode step: env SNOUT_ATTENTION_THREADS, else config.threads, else auto: 2 on a machine with ≥ 2
   * cores once the step's work numHeads · headDim · indexed keys reaches THREADS_MIN_WORK, 1 below (a hand-off costs
   * ~0.15 ms). Measured (medians of 20 steps, 1 vs 2 threads, 2-core EPYC): 32 q / 8 kv heads, d 128: 2.74 vs 1.75 ms
   * at 2K keys, 6.56 vs 4.59 at 16K; 4 / 2 heads, d 64 (tiny-coder): 0.39 vs 0.53 at 8K, 1.09 vs 1.24 at 16K,
   * 1.04 vs 0.75 at 32K; 8 / 2, d 64: 0.81 vs 0.54 at 8K.
   */
  private threads(count: number, minWork = THREADS_MIN_WORK): number {
    const env = Number(process.env.SNOUT_ATTENTION_THREADS);
    if (Number.isFinite(env) && env > 0) return Math.floor(env);
    if (this.config.threads !== undefined) return Math.max(1, Math.floor(this.config.threads));
    const work = this.shape.numHeads * this.shape.headDim * count;
    return work >= minWork && availableParallelism() >= 2 ? 2 : 1;
  }

  /**
   * An exact decode step (dense layer or dense method) over a long cache, split by KV head over the main thread and
   * threads − 1 workers: the same kernel (HeadCache.attendPrefixGroup) and bit-for-bit the same output as
   * DenseKernel.causal. False (nothing done) for prompt chunks, short caches, the TypeScript kernels or one thread.
   */
  private exactStepThreaded(st: LayerState, layer: number, q: Float32Array, n: number, out: Float32Array): boolean {
    if (!this.decoding || n !== 1 || !st.kv.simd()) return false;
    const { numHeads: H, numKvHeads: G, headDim: d } = this.shape;
    const length = st.kv.length, threads = this.threads(length, DENSE_THREADS_MIN_WORK);
    if (threads < 2) return false;
    const pool = attentionPool(threads - 1);
    pool.ensure(H, d, this.config.L);
    const job = pool.job;
    const pq = pool.q;
    for (let i = 0; i < H * d; i++) pq[i] = q[i];
    job[JobField.Layer] = layer; job[JobField.Heads] = H; job[JobField.KvHeads] = G; job[JobField.HeadDim] = d;
    job[JobField.Length] = length; job[JobField.Threads] = threads; job[JobField.Dense] = 1;
    for (let g = 0; g < G; g++) if (g % threads !== 0) pool.share((g % threads) - 1, layer, g, st.kv.heads[g], st.heads[g]);
    pool.start();
    const group = H / G, scale = 1 / Math.sqrt(d);
    for (let g = 0; g < G; g += threads) {
      for (let h = g * group; h < (g + 1) * group; h += SLOTS) {
        st.kv.heads[g].attendPrefixGroup(q, h * d, Math.min(SLOTS, (g + 1) * group - h), length, scale, out, h * d);
      }
    }
    pool.wait();
    for (let g = 0; g < G; g++) {
      if (g % threads === 0) continue;
      for (let i = g * group * d, e = (g + 1) * group * d; i < e; i++) out[i] = pool.out[i];
    }
    return true;
  }

  /** A MagicPIG step split by KV head over the main thread and threads − 1 workers (worker-pool.ts). */
  private decodeThreaded(st: LayerState, q: Float32Array, out: Float32Array, threads: number, count: number): void {
    const { numHeads: H, numKvHeads: G, headDim: d } = this.shape;
    const { K, L, seed } = this.config;
    const pool = attentionPool(threads - 1);
    pool.ensure(H, d, L);
    const job = pool.job, layer = this.layers.indexOf(st);
    const pq = pool.q, pc = pool.codes, sc = this.stepCodes;
    for (let i = 0; i < H * d; i++) pq[i] = q[i];
    if (sc) for (let i = 0; i < H * L; i++) pc[i] = sc[i];
    job[JobField.Layer] = layer; job[JobField.Heads] = H; job[JobField.KvHeads] = G; job[JobField.HeadDim] = d;
    job[JobField.Sinks] = this.ranges.sinks; job[JobField.IndexedEnd] = this.ranges.indexedEnd; job[JobField.Length] = this.ranges.length;
    job[JobField.K] = K; job[JobField.L] = L; job[JobField.Seed] = seed; job[JobField.CodesReady] = this.stepCodes ? 1 : 0;
    job[JobField.Threads] = threads; job[JobField.Dense] = 0;
    for (let g = 0; g < G; g++) if (g % threads !== 0) pool.share((g % threads) - 1, layer, g, st.kv.heads[g], st.heads[g]);
    pool.start();
    const hash = this.stepCodes ? null : this.simhash();
    const sampled = pool.sampled as Int32Array, codes = pool.codes as Int32Array;
    for (let g = 0; g < G; g += threads) {
      magicpigGroup(this.kernels, st.kv.heads[g], st.heads[g], g, H, G, this.ranges, K, L, q, codes, hash, out, sampled);
    }
    pool.wait();
    const group = H / G;
    for (let g = 0; g < G; g++) {
      if (g % threads === 0) continue;
      const po = pool.out;
      for (let i = g * group * d, e = (g + 1) * group * d; i < e; i++) out[i] = po[i];
    }
    for (let h = 0; h < H; h++) {
      this.sampledSum += sampled[h] / count;
      this.sampledCount++;
    }
  }

  /** Where I should end for the current context (see the header comment): sinks + B·⌈(waiting − tailThreshold)/B⌉. */
  private indexTarget(layer: number): number {
    const { sinks, window, tailThreshold } = this.config;
    const B = Math.max(1, tailThreshold);
    const waiting = Math.min(this.contextEnd, this.layers[layer].kv.length) - window - sinks;
    return sinks + B * Math.ceil(Math.max(0, waiting - tailThreshold) / B);
  }

  /**
   * Make layer's index agree with indexTarget: drop it (nothing to index, or k̄'s span changed: new k̄, rebuild),
   * cut whole blocks off its end, or return the range [start, end) still to hash and fold (k̄ already set). Null when
   * nothing is left to hash.
   */
  private reconcile(layer: number): { start: number; end: number } | null {
    const st = this.layers[layer], sinks = this.config.sinks;
    const target = this.indexTarget(layer), span = kbarSpan(target - sinks);
    if (span <= 0 || span !== st.kbarSpan) {
      for (const hi of st.heads) this.dropIndex(hi);
      st.indexedEnd = sinks;
      st.kbarSpan = 0;
      if (span <= 0) return null;
      for (const hi of st.heads) this.setCentre(st, hi, span);
      st.kbarSpan = span;
    } else if (target < st.indexedEnd) {
      this.cutIndex(st, target);
    }
    return target > st.indexedEnd ? { start: st.indexedEnd, end: target } : null;
  }

  /** k̃_i = k_i − k̄ of head g's key i, into row. */
  private centredKey(st: LayerState, hi: HeadIndex, i: number, row: Float32Array): Float32Array {
    st.kv.keyRow(hi.g, i, row);
    const kbar = hi.kbar!;
    for (let c = 0; c < row.length; c++) row[c] -= kbar[c];
    return row;
  }

  /** Add [start, end) to every head's index (norms, tables). codes[g] (if given) are the centred keys' codes. */
  private fold(layer: number, start: number, end: number, codes: (Int32Array | null)[] | null): void {
    const st = this.layers[layer];
    const { sinks, K, L } = this.config;
    const n = end - start, d = this.shape.headDim, row = this.row;
    for (const hi of st.heads) {
      hi.ensureNorms(end);
      for (let i = start; i < end; i++) {
        this.centredKey(st, hi, i, row);
        let s = 0;
        for (let c = 0; c < d; c++) s += row[c] * row[c];
        hi.norms[i] = Math.sqrt(s);
      }
      let c = codes?.[hi.g] ?? null;
      if (!c) {
        const h = this.simhash();
        c = new Int32Array(n * L);
        for (let j = 0; j < n; j++) h.hashInto(this.centredKey(st, hi, start + j, row), 0, c, j * L);
      }
      if (!hi.tables) hi.tables = new LshTables(K, L, sinks);
      hi.tables.fold(c, n);
      hi.invalidatePagesFrom(sinks, start);
    }
    st.indexedEnd = end;
  }

  /** k̄ = mean of keys [sinks, sinks + span) (float64 sum in position order: the same bits for the same keys). */
  private setCentre(st: LayerState, hi: HeadIndex, span: number): void {
    const d = this.shape.headDim, sinks = this.config.sinks, row = this.row;
    const mean = new Float64Array(d);
    for (let i = sinks; i < sinks + span; i++) {
      st.kv.keyRow(hi.g, i, row);
      for (let c = 0; c < d; c++) mean[c] += row[c];
    }
    hi.kbar = Float32Array.from(mean, (x) => x / span);
  }

  /** Keep I = [sinks, end) (end ≤ indexedEnd): ids ≥ end leave the tables. */
  private cutIndex(st: LayerState, end: number): void {
    const sinks = this.config.sinks;
    for (const hi of st.heads) {
      hi.tables?.truncate(end);
      hi.invalidatePagesFrom(sinks, end);
    }
    st.indexedEnd = end;
  }

  /** Drop a head's index (keys are raw in the cache: nothing to undo). */
  private dropIndex(hi: HeadIndex): void {
    hi.kbar = null;
    hi.tables = null;
    hi.pagesValid = 0;
  }

  endPrefill(): void {
    this.contextEnd = this.length;
    this.decoding = true;
    this.dense.releaseScratch(); // the prefill graph's copy of K and V (re-made if a dense step needs it)
  }

  /**
   * Do pending index folds now, hashing keys with the ONNX graph on `provider` (spec §3: keys hashed in batches as
   * they enter the index; HASH_BATCH keys a run). Call (and await) after endPrefill(); without it, the first decode
   * step folds on the CPU.
   */
  async prepare(options: PrepareOptions = {}): Promise<void> {
    const { KeyHashGraph } = await import('./hash-graph');
    if (options.provider) this.provider = options.provider;
    const L = this.config.L, d = this.shape.headDim;
    for (let layer = 0; layer < this.layers.length; layer++) {
      if (this.config.method === 'dense' || this.isDenseLayer(layer)) continue;
      const todo = this.reconcile(layer);
      if (!todo) continue;
      const st = this.layers[layer], { start, end } = todo, n = end - start;
      const graph = await KeyHashGraph.create(this.simhash(), this.provider);
      const codes: Int32Array[] = [];
      const batch = Math.min(n, HASH_BATCH), rows = new Float32Array(batch * d);
      for (const hi of st.heads) {
        const c = new Int32Array(n * L);
        for (let b = 0; b < n; b += batch) {
          const m = Math.min(batch, n - b);
          for (let j = 0; j < m; j++) this.centredKey(st, hi, start + b + j, rows.subarray(j * d, (j + 1) * d));
          c.set(await graph.hash(rows, m), b * L);
        }
        codes[hi.g] = c;
      }
      this.fold(layer, start, end, codes);
    }
  }

  /**
   * Drop tokens ≥ length and start a new prompt (prefill mode until endPrefill). An index reaching past the cut loses
   * whole blocks (grid-aligned, so the next prepare() only adds blocks); k̄ and the rest are settled by reconcile.
   */
  truncate(length: number): void {
    const len = Math.max(0, Math.min(length, this.length));
    const { sinks, tailThreshold } = this.config, B = Math.max(1, tailThreshold);
    for (const st of this.layers) {
      st.kv.truncate(len);
      if (st.indexedEnd <= len) continue;
      const end = Math.max(sinks, sinks + B * Math.floor((len - sinks) / B));
      // Keep what is left unless the cut reaches into the keys k̄ averages (they may be replaced: k̄ would be stale).
      if (end > sinks && len >= sinks + st.kbarSpan) this.cutIndex(st, end);
      else {
        for (const hi of st.heads) this.dropIndex(hi);
        st.indexedEnd = sinks;
        st.kbarSpan = 0;
      }
    }
    this.contextEnd = Math.min(this.contextEnd, len);
    if (this.firstApprox >= len) this.firstApprox = Infinity;
    this.decoding = false;
  }

  reserve(tokens: number): void {
    for (const st of this.layers) st.kv.reserve(tokens);
    // Decode steps over this many tokens will run on worker threads: start them now, so they boot while the prompt is
    // prefilled instead of inside the first decode step (bench-results/peer.md).
    const threads = this.threads(tokens, Math.min(THREADS_MIN_WORK, DENSE_THREADS_MIN_WORK));
    if (threads > 1 && this.layers[0]?.kv.simd()) attentionPool(threads - 1);
  }

  configure(config: Partial<AttentionConfig>): void {
    const old = this.config;
    this.config = { ...old, ...config };
    const c = this.config;
    if (c.kvDtype !== old.kvDtype) {
      for (const st of this.layers) st.kv = st.kv.converted(c.kvDtype);
    }
    // Codes and k̄ depend on these (and on the stored key bits: kvDtype); window and tailThreshold only move the
    // target, which reconcile follows.
    const indexChanged = c.K !== old.K || c.L !== old.L || c.seed !== old.seed || c.sinks !== old.sinks
      || c.kvDtype !== old.kvDtype || c.denseLayers.join() !== old.denseLayers.join();
    if (indexChanged) {
      for (const st of this.layers) {
        for (const hi of st.heads) this.dropIndex(hi);
        st.indexedEnd = c.sinks;
        st.kbarSpan = 0;
      }
    }
  }

  stats(): AttentionStats {
    let kv = 0, norms = 0, tables = 0, pages = 0;
    for (const st of this.layers) {
      kv += st.kv.bytes();
      for (const hi of st.heads) {
        norms += hi.norms.byteLength + (hi.kbar?.byteLength ?? 0);
        tables += hi.tables?.bytes() ?? 0;
        pages += hi.pageMin.byteLength + hi.pageMax.byteLength;
      }
    }
    return {
      method: this.config.method,
      length: this.length,
      sampledFraction: this.sampledCount > 0 ? this.sampledSum / this.sampledCount : 1,
      bytes: kv + norms + tables + pages,
      memory: { kv, norms, tables, pages },
    };
  }

  resetStats(): void {
    this.sampledSum = 0;
    this.sampledCount = 0;
  }

  dispose(): void {
    this.layers = [];
  }
}
