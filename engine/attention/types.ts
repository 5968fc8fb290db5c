// The one seam between the model runner and attention. The runner computes q, k, v (post-RoPE) with ONNX graphs and
// hands them here; everything about the KV cache (CPU RAM) and how attention is computed (dense, MagicPIG, TopK, Quest)
// lives behind this interface. See ../../ARCHITECTURE.md.

export type AttentionMethod = 'dense' | 'magicpig' | 'topk' | 'quest';
export type KvDtype = 'float32' | 'bfloat16';

/** Every knob is data (per model and per request), never a constant in the kernels. */
export interface AttentionConfig {
  method: AttentionMethod;
  /** SimHash bits per table (magicpig). */
  K: number;
  /** Number of hash tables (magicpig). */
  L: number;
  /** First tokens of the context always attended exactly. */
  sinks: number;
  /** Most recent context tokens always attended exactly. */
  window: number;
  /** Layers that always use dense attention (default: 0 and the middle layer). Negative = none. */
  denseLayers: number[];
  /** TopK/Quest budget as a fraction of indexed keys (or pages); 'auto' = what MagicPIG sampled for that head/step. */
  budget: number | 'auto';
  /** Exact-tail length above which new tokens are folded into the LSH index. */
  tailThreshold: number;
  /**
   * Fewest keys worth an index: while the index would hold fewer (sequence.ts indexTarget), the whole context is
   * attended exactly and nothing is hashed. Deviation from the spec, which samples at any length: below ~1.5K keys a
   * sampled step costs more than an exact one here and is less accurate (bench-results/attention-decisions.md). 0
   * (the spec's behaviour, and this default) indexes from the first block; models loaded by the engine default to
   * SHORT_CONTEXT_MIN_INDEXED.
   */
  minIndexed: number;
  kvDtype: KvDtype;
  /** Seed of the SimHash Gaussian matrix. */
  seed: number;
  /**
   * Threads for a MagicPIG decode step (1 = the calling thread only; more = worker threads). Unset = auto (2 from 32K
   * indexed keys on ≥ 2 cores). Env SNOUT_ATTENTION_THREADS overrides.
   */
  threads?: number;
}

export interface AttentionShape {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

export interface AttentionStats {
  method: AttentionMethod;
  /** Tokens currently cached. */
  length: number;
  /** Mean fraction of indexed keys attended over sampled layers/heads/steps since the last resetStats (1 for dense). */
  sampledFraction: number;
  /** Bytes held by the KV cache and indexes. */
  bytes: number;
  /** The same bytes by part: K+V cache, key norms (+k̄), LSH table ids + bucket offsets, Quest page min/max. */
  memory?: { kv: number; norms: number; tables: number; pages: number };
}

/** What a query's SimHash codes depend on besides the query (spec §3: W is drawn from the seed). */
export interface QueryHashParams {
  readonly K: number;
  readonly L: number;
  readonly seed: number;
}

/** Whether codes made with `a` are codes made with `b` (the same W, the same code shape). */
export function sameQueryHash(a: QueryHashParams, b: QueryHashParams | undefined): boolean {
  return !!b && a.K === b.K && a.L === b.L && a.seed === b.seed;
}

/** A decode step's query codes [numHeads, L] computed by the caller, with the parameters they were made with. */
export interface QueryCodes extends QueryHashParams {
  readonly codes: Int32Array;
}

export interface PrepareOptions {
  /** Execution provider for the key-hashing graph (falls back to cpu with one log line). */
  provider?: 'auto' | 'cpu' | 'cuda' | 'webgpu';
  /** The caller passes query codes made with these parameters to forwardAsync (no query-hash graph to warm up for them). */
  queryCodes?: QueryHashParams;
}

/**
 * One sequence's KV cache plus an attention method. Tensors are row-major float32:
 * q: [n, numHeads, headDim], k/v: [n, numKvHeads, headDim], out: [n, numHeads, headDim].
 */
/**
 * Rows [0, length) of a layer's keys and values in float32, per KV head: keys as rows [≥ length, D], values transposed
 * [D, capacity] (token i in column i; the graph reads all capacity columns, weighting those past length by zero).
 */
export interface GraphAttentionRows {
  keys: Float32Array[];
  valuesT: Float32Array[];
  length: number;
  capacity: number;
}

export interface SequenceAttention {
  readonly shape: AttentionShape;
  /** Tokens cached (all layers have the same length between forward passes). */
  readonly length: number;
  /**
   * Leading cached tokens whose K/V a cold prefill of the same tokens reproduces exactly: all of them, except that a
   * token run as a decode step with sampled attention (magicpig/topk/quest over a non-empty index) and everything
   * after it are excluded. A prefix cache that must decode exactly like a cold run reuses at most this many.
   */
  readonly exactLength?: number;
  /**
   * Append n tokens' keys and values to `layer` and write attention for their n queries into `out`
   * (causal: query j sees every cached token plus tokens 0..j of this call). Until endPrefill() every call is a
   * prefill chunk (any n, a single token included) and is computed exactly (chunked, O(n · chunk) memory); after
   * endPrefill(), n === 1 is a decode step and uses the configured method. truncate() starts a new prompt.
   * Called once per layer per chunk/step, layer 0 first.
   */
  forward(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array): void;
  /**
   * forward() for the runner's async loop: exact calls (prompt chunks, dense layers) may run as the ONNX prefill graph
   * (DenseKernel.causalAsync), and a sampled decode step's query hash as the ONNX SimHash graph when the shape is big
   * enough to pay for a graph call (sequence.ts GRAPH_HASH_MIN_MACS), unless `codes` (made with the step's K, L and
   * seed: see queryHashFor) already hold it. Same results up to float32 rounding.
   */
  forwardAsync(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array, codes?: QueryCodes): Promise<void>;
  /**
   * The SimHash parameters `layer`'s next forward call of n rows hashes its query with (a sampled decode step), else
   * null. A caller that can compute the codes itself (the runner's layer graphs) passes them to forwardAsync.
   */
  queryHashFor?(layer: number, n: number): QueryHashParams | null;
  /**
   * For a runner whose next layer graph computes attention itself (graphs.ts GraphOptions.decodeAttention): when
   * `layer`'s step is an exact decode step it may hand over, append k/v and return the cache's rows as float32 per KV
   * head (the new token's included); else null, nothing done, and the caller runs forwardAsync.
   */
  graphAttention?(layer: number, k: Float32Array, v: Float32Array, n: number): GraphAttentionRows | null;
  /** Prompt done: tokens so far are "context" (may be indexed); later tokens are generated and stay exact. */
  endPrefill(): void;
  /**
   * Build pending index work (hash keys with the ONNX SimHash graph, fill the tables) before decoding. The runner
   * awaits it after endPrefill(); skipping it is correct but the first decode step then hashes keys on the CPU (slow
   * for long prompts). Cheap no-op for dense.
   */
  prepare(options?: PrepareOptions): Promise<void>;
  /** Drop tokens at positions >= length (prefix reuse); the next forward calls are a new prompt (prefill). */
  truncate(length: number): void;
  /**
   * Make room for `tokens` positions in every layer's cache now (a request that knows its prompt length and token
   * budget), so the cache does not grow (a new buffer, a copy and fresh pages) in the middle of a request.
   */
  reserve?(tokens: number): void;
  /** Change the method/knobs for the next request (indexes rebuilt lazily if K/L/seed change). */
  configure(config: Partial<AttentionConfig>): void;
  stats(): AttentionStats;
  resetStats(): void;
  dispose(): void;
}

/**
 * The (K, L) every entry point accepts (engine requests, CLI flags, the extension's settings; a test checks they
 * agree): codes are stored in 16 bits, sampling needs 2 collisions so L ≥ 2, and the tables cost 2·L bytes per token
 * per KV head per layer (4·L past ~58K indexed keys: lsh-tables.ts), so L is capped (the paper's settings go up to
 * 300; 1024 is 2-4 KB a token a head).
 */
export const LSH_LIMITS = { K: { min: 1, max: 16 }, L: { min: 2, max: 1024 } } as const;

/**
 * The engine's minIndexed for loaded models: a context indexes nothing until its index would hold this many keys
 * (with the defaults, prompts up to ~1.35K tokens are attended exactly). Measured crossover of a sampled against an
 * exact decode step on the 1.5B shape: between 1K and 2K keys (bench-results/attention-decisions.md).
 */
export const SHORT_CONTEXT_MIN_INDEXED = 1024;

export const defaultAttentionConfig = (numLayers: number): AttentionConfig => ({
  method: 'dense',
  K: 10,
  L: 150,
  sinks: 4,
  window: 64,
  denseLayers: numLayers > 1 ? [0, Math.floor(numLayers / 2)] : [0],
  budget: 'auto',
  tailThreshold: 256,
  minIndexed: 0,
  kvDtype: 'float32',
  seed: 1234,
});
