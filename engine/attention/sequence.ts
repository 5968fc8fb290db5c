// One sequence's KV cache (per layer) and its index lifecycle; the decode step itself is a method in methods/ (read
// reference/magicpig.ts for the algorithm). Prefill chunks are always exact. Contract: types.ts. Algorithm:
// ../shared/design/magicpig.md (section numbers "§n").
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
//   cosine of the sampling probability (methods/magicpig.ts: q·k̃_i = q·k_i − q·k̄). Scores use raw keys: q·k̄ is the same
//   constant for every key of a head, which the softmax ignores (spec §2's own argument).
// - k̄ = mean of the first kbarSpan(|I|) keys of I (a power of two, at most KBAR_SPAN). Deviation from spec §2 (k̄ =
//   mean of all of I): that mean moves with every fold, and every moved k̄ re-hashes the whole index — a keystroke on
//   a long file would re-index everything and kill the prefix cache. A prefix mean is canonical and stable; see
//   KBAR_SPAN for the measured loss.
// - Table buckets hold ids in ascending order whatever the fold history (folds append larger ids; cuts keep order), so
//   retrieval emits the same ids in the same order.
import type { AttentionConfig, AttentionShape, AttentionStats, SequenceAttention, PrepareOptions, QueryCodes, QueryHashParams } from './types';
import { sameQueryHash } from './types';
import { KvStore, type KvMirror } from './kv-store';
import { DenseKernel } from './dense';
import { HeadIndex } from './head-index';
import { LshTables } from './lsh-tables';
import { simhashFor, type SimHash } from './simhash';
import { decodeMethod, type DecodeStep, type StepObserver } from './methods/index';
import { DENSE_THREADS_MIN_WORK, THREADS_MIN_WORK, runStep, threadsFor } from './methods/threads';
import { attentionPool } from './worker-pool';

export { DENSE_THREADS_MIN_WORK, THREADS_MIN_WORK };

/**
 * k̄ (spec §2) is the mean of the first kbarSpan(|I|) keys of I: the largest power of two ≤ |I|, at most KBAR_SPAN.
 * A new span means a new k̄ and re-hashing I, so spans double: while I grows to KBAR_SPAN each key is re-hashed
 * O(1) times in total (one rehash per doubling, none per block), and k̄ always averages at least half of I below
 * KBAR_SPAN. Measured (bench-results/attention-decisions.md, "k̄"): on tiny-coder keys a short prefix mean is a poor stand-in
 * for the full mean (RoPE turns the offset with position), hence a span of 1024, not one block.
 */
export const KBAR_SPAN = 1024;
export const kbarSpan = (indexed: number): number => (indexed <= 0 ? 0 : Math.min(KBAR_SPAN, 2 ** (31 - Math.clz32(indexed))));

/** One layer's cache and index (exported for snapshot.ts, which writes and restores it). */
export interface LayerState {
  kv: KvStore;
  heads: HeadIndex[];
  /** I = [sinks, indexedEnd). */
  indexedEnd: number;
  /** Keys averaged into every heads[g].kbar: min(KBAR_SPAN, |I| at the time); 0 = no k̄. */
  kbarSpan: number;
}

/**
 * Query hashing for decode steps (forwardAsync): the ONNX graph when numHeads · d · K · L reaches this many
 * multiply-adds, else the SIMD CPU kernel (below it the two are within noise, and the CPU kernel needs no graph
 * session and no await; measured in bench-results/attention-decisions.md).
 */
export const GRAPH_HASH_MIN_MACS = 1_000_000;

/** |k̃|: a row's Euclidean norm (float64 sum in index order: the same bits wherever it is computed). */
function norm(row: Float32Array): number {
  let s = 0;
  for (let c = 0; c < row.length; c++) s += row[c] * row[c];
  return Math.sqrt(s);
}

/**
 * Longest cache whose exact decode steps run inside the layer graphs (Sequence.graphAttention) on every layer that
 * attends exactly (the dense method; sampled layers before they index). The float32 copy those graphs read costs
 * twice the bfloat16 cache's memory (8 · KV heads · D bytes a token a layer), so past this length only a sampling
 * method's dense layers keep one (two layers of 28 for the 1.5B shape; bench-results/layer-decode.md has the timings).
 */
export const GRAPH_ATTENTION_MAX_TOKENS = 6144;

/**
 * Keys per run of the key-hash graph in prepare(). onnxruntime's CPU arena keeps a run's largest intermediates for
 * the session's life ([batch, K·L] projections, bits, weighted bits), so the batch sets memory that a process never
 * gets back; larger batches hashed no faster (bench-results/attention-decisions.md).
 */
export const HASH_BATCH = 512;

export class Sequence implements SequenceAttention {
  private config: AttentionConfig;
  private layers: LayerState[];
  private readonly dense: DenseKernel;
  /** Query codes [numHeads, L] for the decode step forward() is about to run (from forwardAsync), else null. */
  private stepCodes: Int32Array | null = null;
  private provider: NonNullable<PrepareOptions['provider']> = 'auto';
  private queryGraphWarm = false;
  private queryGraph: { hasher: SimHash; provider: string; graph: import('./hash-graph').KeyHashGraph } | null = null;
  private readonly row: Float32Array;
  /** The decode step's arguments, reused from step to step (no allocation per step). */
  private readonly step: DecodeStep;
  /** Tokens before this are context (may be indexed); set by endPrefill. */
  private contextEnd = 0;
  private sampledSum = 0;
  private sampledCount = 0;
  private observer: StepObserver | null = null;
  /** Query-hash choice of forwardAsync (GRAPH_HASH_MIN_MACS); tests set 0 to run the graph on small shapes. */
  graphHashMinMacs = GRAPH_HASH_MIN_MACS;

  constructor(readonly shape: AttentionShape, config: AttentionConfig) {
    if (shape.numHeads % shape.numKvHeads !== 0) throw new Error('numHeads must be a multiple of numKvHeads');
    this.config = { ...config };
    this.layers = Array.from({ length: shape.numLayers }, () => this.makeLayer());
    const { numHeads: H, numKvHeads: G, headDim: d } = shape;
    this.dense = new DenseKernel(H, G, d);
    this.row = new Float32Array(d);
    this.step = {
      q: new Float32Array(0), out: new Float32Array(0), numHeads: H, numKvHeads: G, headDim: d, caches: [], indexes: [],
      ranges: { sinks: 0, indexedEnd: 0, length: 0 }, count: 0, K: 0, L: 0, budget: 'auto', codes: new Int32Array(0),
      hash: null, used: new Int32Array(H), observer: null,
    };
  }

  /**
   * Benches: pass an observer to hear about every decode step run on this thread (timings, lists), null to stop.
   * With none, the steps call and time nothing.
   */
  observe(observer: StepObserver | null): void {
    this.observer = observer;
  }

  /** One layer's cache (benches fill long caches through it, and read the rows a step sampled). */
  cache(layer: number): KvStore {
    return this.layers[layer].kv;
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

  /** Before endPrefill() every forward is prompt (exact); after it, n === 1 is a decode step. */
  private decoding = false;
  /** A layer whose decode steps run the configured method (not the dense method, not a dense layer). */
  private isSampledLayer(layer: number): boolean {
    return this.config.method !== 'dense' && !this.isDenseLayer(layer);
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
    if (!this.decoding || n !== 1) this.dense.causal(st.kv, q, n, out);
    else this.decode(layer, q, out);
  }

  /** Decode steps hash the query (MagicPIG, or a budget chosen per step). */
  private hashesQueries(): boolean {
    return this.config.method === 'magicpig' || this.config.budget === 'auto';
  }

  /** The query hash runs as the ONNX graph where the shape pays for a graph call (GRAPH_HASH_MIN_MACS). */
  private queryHashOnGraph(): boolean {
    const { K, L } = this.config;
    return this.shape.numHeads * this.shape.headDim * K * L >= this.graphHashMinMacs;
  }

  private async queryHashGraph(): Promise<import('./hash-graph').KeyHashGraph> {
    const h = this.simhash();
    if (this.queryGraph?.hasher === h && this.queryGraph.provider === this.provider) return this.queryGraph.graph;
    const { KeyHashGraph } = await import('./hash-graph');
    const graph = await KeyHashGraph.create(h, this.provider, 1);
    this.queryGraph = { hasher: h, provider: this.provider, graph };
    this.queryGraphWarm = false;
    return graph;
  }

  /**
   * forward(), with prompt chunks on DenseKernel.causalAsync (big ones as one ONNX graph) and a sampled decode step's
   * query hash as the ONNX SimHash graph (one [numHeads, d]·W product on the selected provider) where the shape is
   * big enough to pay for a graph call (GRAPH_HASH_MIN_MACS); the CPU kernel otherwise.
   */
  async forwardAsync(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array, codes?: QueryCodes): Promise<void> {
    if (!this.decoding || n !== 1) {
      const st = this.layers[layer];
      st.kv.append(k, v, n);
      this.keepMirror(layer);
      await this.dense.causalAsync(st.kv, q, n, out, this.provider);
      return;
    }
    // No index to sample from (a short context): no query hash either.
    const hashes = this.samplesNow(layer) && this.hashesQueries();
    if (hashes && codes && sameQueryHash(codes, this.config) && codes.codes.length >= this.shape.numHeads * this.config.L) {
      this.stepCodes = codes.codes; // hashed by the caller's layer graph, in the run that made q
    } else if (hashes && this.queryHashOnGraph()) {
      const graph = await this.queryHashGraph();
      const t = this.observer ? performance.now() : 0;
      this.stepCodes = await graph.hash(q, this.shape.numHeads);
      if (this.observer) this.observer.time('hash', performance.now() - t);
    }
    try {
      this.forward(layer, q, k, v, n, out);
    } finally {
      this.stepCodes = null;
    }
  }

  /**
   * A decode step of `layer` whose attention is exact (the dense method, a dense layer, or nothing indexed yet) can
   * run inside the next layer graph (graphs.ts GraphOptions.decodeAttention) over a float32 copy of the cache: MLAS's
   * GEMMs instead of the WebAssembly kernels, and no attention call between the two graph runs. Appends k/v like
   * forward() and returns the copy's rows (the new token's included), or returns null having done nothing, and the
   * caller runs forwardAsync. A request that may pass GRAPH_ATTENTION_MAX_TOKENS keeps no copy (mirrorAllowed).
   */
  graphAttention(layer: number, k: Float32Array, v: Float32Array, n: number): KvMirror | null {
    this.graphAttentionSeen = true;
    if (!this.decoding || n !== 1 || this.samplesNow(layer)) return null;
    const st = this.layers[layer];
    if (!this.mirrorAllowed(layer, st.kv.length + 1)) {
      st.kv.dropMirror();
      return null;
    }
    if (this.isSampledLayer(layer)) this.reconcile(layer); // what decode() does first: drops an index not wanted now
    st.kv.append(k, v, 1);
    return st.kv.mirrorRows(this.requestEnd);
  }

  /** Cache length up to which graphAttention() serves a step (tests lower it). */
  graphAttentionMaxTokens = GRAPH_ATTENTION_MAX_TOKENS;
  /** The runner hands exact decode steps to its graphs: prompt chunks then keep the float32 copy of layers that will. */
  private graphAttentionSeen = false;

  /**
   * Whether a layer may keep a float32 copy of `length` tokens in this request: a sampling method's dense layers at
   * any length (two of 28 layers: the copy is small beside the cache and the index); other layers when neither the
   * length nor the one the request reserved (prompt + most tokens generated) passes graphAttentionMaxTokens, so a long
   * prompt never builds a copy only to drop it.
   */
  private mirrorAllowed(layer: number, length: number): boolean {
    if (this.config.method !== 'dense' && this.isDenseLayer(layer)) return true;
    return Math.max(length, this.requestEnd) <= this.graphAttentionMaxTokens;
  }
  /** The length the current request reserved room for (reserve()); 0 when none did. */
  private requestEnd = 0;

  /**
   * After a prompt chunk: bring the float32 copy up to date where the decode steps will hand over (layers that never
   * sample, and sampled layers whose index would still be empty were the prompt to end here), so the first decode
   * step does not copy the whole prompt.
   */
  private keepMirror(layer: number): void {
    if (!this.graphAttentionSeen) return;
    const kv = this.layers[layer].kv;
    if (this.isSampledLayer(layer) && this.indexTarget(layer, kv.length) > this.config.sinks) {
      kv.dropMirror(); // this prompt will be sampled from
      return;
    }
    if (this.mirrorAllowed(layer, kv.length)) kv.mirrorRows(this.requestEnd);
    else kv.dropMirror();
  }

  queryHashFor(layer: number, n: number): QueryHashParams | null {
    return this.decoding && n === 1 && this.samplesNow(layer) && this.hashesQueries() ? this.config : null;
  }

  /**
   * One decode step (n = 1, after endPrefill) of `layer`: exact on dense layers and for the dense method; otherwise
   * bring the index up to date and run the method over T and I, on the threads the step's work justifies.
   */
  private decode(layer: number, q: Float32Array, out: Float32Array): void {
    const st = this.layers[layer], { numHeads: H, headDim: d } = this.shape, c = this.config, step = this.step;
    const sampled = this.isSampledLayer(layer);
    if (sampled) {
      const todo = this.reconcile(layer);
      if (todo) this.fold(layer, todo.start, todo.end, null);
      if (st.indexedEnd > c.sinks) this.firstApprox = Math.min(this.firstApprox, st.kv.length - 1);
    }
    const count = sampled ? st.indexedEnd - c.sinks : 0;
    step.q = q; step.out = out;
    step.caches = st.kv.heads; step.indexes = st.heads;
    step.ranges.sinks = c.sinks; step.ranges.indexedEnd = sampled ? st.indexedEnd : c.sinks;
    step.ranges.length = st.kv.length;
    step.count = count; step.K = c.K; step.L = c.L; step.budget = c.budget;
    step.observer = this.observer;
    const hashes = count > 0 && (c.method === 'magicpig' || c.budget === 'auto');
    step.hash = hashes && !this.stepCodes ? this.simhash() : null;
    if (this.stepCodes) step.codes = this.stepCodes;
    else if (step.codes.length < H * c.L) step.codes = new Int32Array(H * c.L);
    // With nothing indexed the step is exact over every key: the dense method's (grouped, threaded) kernels.
    const method = decodeMethod(count > 0 ? c.method : 'dense', d);
    method.beforeStep?.(step, st.kv, this.row);
    // Threads: sampled steps by their indexed keys, exact steps by every key.
    const threads = count > 0
      ? threadsFor(H * d * count, c.threads, THREADS_MIN_WORK)
      : threadsFor(H * d * st.kv.length, c.threads, DENSE_THREADS_MIN_WORK);
    runStep(method, step, layer, threads, st.kv.simd());
    if (count > 0) {
      for (let h = 0; h < H; h++) this.sampledSum += step.used[h] / count;
      this.sampledCount += H;
    }
  }

  /** Where I should end for the current context (see the header comment): sinks + B·⌈(waiting − tailThreshold)/B⌉. */
  private indexTarget(layer: number, contextEnd = this.contextEnd): number {
    const { sinks, window, tailThreshold } = this.config;
    const B = Math.max(1, tailThreshold);
    const waiting = Math.min(contextEnd, this.layers[layer].kv.length) - window - sinks;
    const target = sinks + B * Math.ceil(Math.max(0, waiting - tailThreshold) / B);
    return target - sinks < this.config.minIndexed ? sinks : target; // too few keys to be worth sampling: all exact
  }

  /** Whether `layer`'s decode steps sample now: a sampled layer whose index target holds keys. */
  private samplesNow(layer: number): boolean {
    return this.isSampledLayer(layer) && this.indexTarget(layer) > this.config.sinks;
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

  /**
   * Add [start, end) to every head's index (norms, tables). codes[g] (if given) are the centred keys' codes; with
   * `normsDone` the caller has already set their norms (prepare(), from the rows it hashed).
   */
  private fold(layer: number, start: number, end: number, codes: (Int32Array | null)[] | null, normsDone = false): void {
    const st = this.layers[layer];
    const { sinks, K, L } = this.config;
    const n = end - start, row = this.row;
    for (const hi of st.heads) {
      hi.ensureNorms(end);
      if (!normsDone) for (let i = start; i < end; i++) hi.norms[i] = norm(this.centredKey(st, hi, i, row));
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
        hi.ensureNorms(end);
        const c = new Int32Array(n * L);
        for (let b = 0; b < n; b += batch) {
          const m = Math.min(batch, n - b);
          for (let j = 0; j < m; j++) hi.norms[start + b + j] = norm(this.centredKey(st, hi, start + b + j, rows.subarray(j * d, (j + 1) * d)));
          c.set(await graph.hash(rows, m), b * L);
        }
        codes[hi.g] = c;
      }
      this.fold(layer, start, end, codes, true);
    }
    // The first run of the per-step query hash graph (session creation, then onnxruntime's first-run setup) took
    // ~30 ms inside the first decode step of a process (bench-results/first-step.md); run it here, between requests.
    // Not needed when the caller's layer graphs hash the query.
    const callerHashes = options.queryCodes !== undefined && sameQueryHash(options.queryCodes, this.config);
    if (!callerHashes && this.layers.some((_, l) => this.samplesNow(l)) && this.hashesQueries() && this.queryHashOnGraph()) {
      const graph = await this.queryHashGraph();
      if (!this.queryGraphWarm) {
        await graph.hash(new Float32Array(this.shape.numHeads * d), this.shape.numHeads);
        this.queryGraphWarm = true;
      }
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
    this.requestEnd = tokens;
    for (const st of this.layers) st.kv.reserve(tokens);
    // Decode steps over this many tokens will run on worker threads: start them now, so they boot while the prompt is
    // prefilled instead of inside the first decode step (bench-results/peer.md).
    const { numHeads: H, headDim: d } = this.shape;
    const threads = threadsFor(H * d * tokens, this.config.threads, Math.min(THREADS_MIN_WORK, DENSE_THREADS_MIN_WORK));
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

  /**
   * Persistence (snapshot.ts): the live state, to be read (never written) by a snapshot. `contextEnd` is where the
   * last request's prompt ended; the index never reaches past it.
   */
  persistState(): { config: Readonly<AttentionConfig>; layers: readonly LayerState[]; contextEnd: number } {
    return { config: this.config, layers: this.layers, contextEnd: this.contextEnd };
  }

  /**
   * Persistence (snapshot.ts): take layers restored from a snapshot holding `length` exact tokens. The sequence is
   * then in the state truncate(length) leaves: prefill mode, nothing approximate, the index a grid prefix of the context.
   */
  adoptState(layers: LayerState[], length: number): void {
    if (layers.length !== this.shape.numLayers) throw new Error('adoptState: wrong number of layers');
    this.layers = layers;
    this.contextEnd = length;
    this.firstApprox = Infinity;
    this.decoding = false;
  }

  resetStats(): void {
    this.sampledSum = 0;
    this.sampledCount = 0;
  }

  dispose(): void {
    this.layers = [];
  }
}
