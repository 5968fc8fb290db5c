// loadModel(path): a model source (a Hugging Face folder, float32 or quantized on load, or a GGUF file) → spec,
// tokenizer, weights → ONNX graphs → sessions; returns the LoadedModel the service layer drives
// (engine/generate/types.ts).
import { createSequenceAttention } from '../attention/index';
import { estimateSequenceBytes } from '../attention/memory';
import { SHORT_CONTEXT_MIN_INDEXED, defaultAttentionConfig, type AttentionConfig, type AttentionShape, type QueryHashParams } from '../attention/types';
import { GRAPH_HASH_MIN_MACS } from '../attention/sequence';
import { openModelSource, type OpenSourceOptions } from '../model/open';
import { isQuant } from '../model/quant';
import type { ModelSource } from '../model/source';
import type { ModelSpec } from '../model/spec';
import type { HfTokenizer } from '../model/tokenizer';
import { embedName } from '../model/weights';
import { GraphCache, trimGraphCache } from '../model/graph-cache';
import { prepackedEnabled } from '../model/prepacked';
import { defaultFusedOps } from '../model/graphs';
import { defaultCacheDir } from '../model/safetensors-source';
import type { ProviderSetting } from '../runtime/session';
import { ModelRunner } from './forward';
import { generate, validatePrompt, type GenerateContext } from './generate';
import { ModelSequence } from './sequence';
import type { GenerateRequest, GenerateResult, LoadedModel, LoadProgress, Sequence } from './types';

export interface LoadOptions extends OpenSourceOptions {
  provider?: ProviderSetting;
  /**
   * Folder for the packed model cache (graph-cache.ts; the extension passes its global storage). Default:
   * defaultCacheDir(); null: no disk cache.
   */
  cacheDir?: string | null;
  /** Most bytes the model cache may hold; least recently used models are deleted past it (default 20 GiB). */
  cacheMaxBytes?: number;
  onProgress?: (progress: LoadProgress) => void;
  /** Default attention for new sequences (per-request overrides go in GenerateRequest.attention). */
  attention?: Partial<AttentionConfig>;
  /** Tokens per prefill chunk (default 256). */
  prefillChunk?: number;
  /** Allow positions beyond config's max_position_embeddings (speed benchmarks only: quality is not trained there). */
  contextLimit?: number;
  /** onnxruntime threads per operator (unset or 0: one per physical core, runtime/cores.ts). */
  threads?: number;
  /** Fuse post-attention(l) with pre-attention(l+1) (default true). */
  fuseLayers?: boolean;
  /** Embedding in the first layer graph, head in the last (default: when the embedding is <= 64 MiB). */
  fuseEmbedHead?: boolean;
  /** MatMulNBits accuracy_level for packed weights (default 4: int8 activations; tests use 0). */
  accuracyLevel?: number;
  /**
   * Exact decode steps attend inside the layer graphs (graphs.ts GraphOptions.decodeAttention). Default: for models
   * whose query heads span at least GRAPH_ATTENTION_MIN_WIDTH floats (tests force it either way).
   */
  decodeAttention?: boolean;
  /** Where the provider-fallback line goes (default stderr). */
  log?: (line: string) => void;
}

export async function loadModel(modelPath: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const progress = (message: string, fraction?: number) => options.onProgress?.({ message, fraction });
  const started = performance.now();
  progress('reading the model', 0);
  const source = openModelSource(modelPath, options);
  try {
    const { spec } = source;
    const packed = source.packed ?? isQuant(source.weight(embedName));
    const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
    const queryHash = layerGraphQueryHash(spec, options.attention);
    const decodeAttention = options.decodeAttention ?? layerGraphAttention(spec);
    const cache = packed && cacheDir ? new GraphCache(cacheDir, {
      source: source.fingerprint, format: source.format, weights: (source as { weightsFormat?: string }).weightsFormat,
      accuracyLevel: options.accuracyLevel, fused: defaultFusedOps(), prepacked: prepackedEnabled(), queryHash: queryHash ?? null,
      ...(decodeAttention ? { decodeAttention: 'keys-and-transposed-values' } : {}), // the graphs' input layout
    }, log) : undefined;
    const runner = await ModelRunner.create(spec, (name) => source.weight(name), {
      cache,
      provider: options.provider ?? 'auto',
      fuseLayers: options.fuseLayers,
      fuseEmbedHead: options.fuseEmbedHead,
      threads: options.threads,
      log: options.log,
      packed,
      accuracyLevel: options.accuracyLevel,
      bytesPerWeight: source.bytesPerWeight,
      queryHash,
      decodeAttention,
      onProgress: (message, fraction) => progress(message, 0.05 + 0.95 * fraction),
    });
    if (cache && cacheDir) {
      try { trimGraphCache(cacheDir, options.cacheMaxBytes ?? 20 * 2 ** 30, cache.dir); } catch { /* best effort */ }
    }
    const model = new Model(source, runner, options, {
      source: source.fingerprint, format: source.format, weights: (source as { weightsFormat?: string }).weightsFormat ?? 'f32',
      packed, accuracyLevel: options.accuracyLevel ?? null, provider: runner.provider, fuseLayers: options.fuseLayers ?? null,
      fuseEmbedHead: options.fuseEmbedHead ?? null, prefillChunk: Math.max(1, options.prefillChunk ?? 256),
    });
    model.loadSeconds = (performance.now() - started) / 1000;
    return model;
  } finally {
    source.close();
  }
}

/**
 * Query width (heads · head size) from which exact decode steps attend inside the layer graphs by default: there the
 * WebAssembly kernels' arithmetic is a measurable part of a short step (bench-results/attention-decisions.md). Below
 * it (the bundled demo model) a step's attention is microseconds and the graphs stay as they are.
 * SNOUT_GRAPH_ATTENTION=0 leaves it out (before/after runs).
 */
export const GRAPH_ATTENTION_MIN_WIDTH = 1024;

function layerGraphAttention(spec: ModelSpec): boolean {
  return process.env.SNOUT_GRAPH_ATTENTION !== '0' && spec.numHeads * spec.headDim >= GRAPH_ATTENTION_MIN_WIDTH;
}

/**
 * The query hash the layer graphs compute for sampled decode steps (graphs.ts GraphOptions.queryHash), with the
 * model's default K, L and seed: where the shape makes a hash worth a graph product (GRAPH_HASH_MIN_MACS; smaller
 * shapes hash on the CPU kernel). Requests with other K, L or seed hash on their own (sequence.ts forwardAsync).
 * SNOUT_FUSED_QHASH=0 leaves it out (before/after runs).
 */
function layerGraphQueryHash(spec: ModelSpec, attention?: Partial<AttentionConfig>): QueryHashParams | undefined {
  if (process.env.SNOUT_FUSED_QHASH === '0') return undefined;
  const { K, L, seed } = { ...defaultAttentionConfig(spec.numLayers), ...attention };
  return spec.numHeads * spec.headDim * K * L >= GRAPH_HASH_MIN_MACS ? { K, L, seed } : undefined;
}

export function attentionShape(spec: ModelSpec): AttentionShape {
  return { numLayers: spec.numLayers, numHeads: spec.numHeads, numKvHeads: spec.numKvHeads, headDim: spec.headDim };
}

class Model implements LoadedModel {
  readonly provider: string;
  readonly modelDir: string;
  readonly spec: ModelSpec;
  readonly tokenizer: HfTokenizer;
  /** What was loaded: the source's format and packing, resident weight bytes, load time. */
  readonly weights: { format: string; packed: boolean; residentBytes?: number; cache?: string };
  loadSeconds = 0;
  private readonly ctx: GenerateContext;
  private readonly baseAttention: AttentionConfig;
  /** Sequences are used one request at a time; requests on one model run one after another. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(source: ModelSource, private readonly runner: ModelRunner, options: LoadOptions, readonly kvIdentity: unknown) {
    this.modelDir = source.path;
    this.spec = source.spec;
    this.tokenizer = source.tokenizer;
    const spec = this.spec;
    const tokenizer = this.tokenizer;
    this.weights = {
      format: source.format === 'gguf' ? 'gguf' : (source as { weightsFormat?: string }).weightsFormat ?? 'f32',
      packed: runner.packed,
      residentBytes: runner.weightBytes ?? source.residentBytes,
      cache: runner.cacheState,
    };
    this.provider = runner.provider;
    // A quantized model's KV cache is bfloat16 by default: half the RAM and the bytes each step reads at long context,
    // at an error far below the weights' own (llama.cpp keeps f16). Float32 models keep a float32 cache (exact goldens).
    const kvDtype = runner.packed ? 'bfloat16' as const : 'float32' as const;
    // Short contexts are attended exactly (types.ts minIndexed): sampling pays only past ~1.5K keys.
    this.baseAttention = { ...defaultAttentionConfig(spec.numLayers), kvDtype, minIndexed: SHORT_CONTEXT_MIN_INDEXED, ...options.attention };
    this.ctx = {
      runner,
      tokenizer,
      prefillChunk: Math.max(1, options.prefillChunk ?? 256),
      contextLimit: options.contextLimit ?? spec.maxPositionEmbeddings,
      eosIds: new Set([...spec.eosTokenIds, ...tokenizer.eosIds]),
    };
  }

  newSequence(attention?: Partial<AttentionConfig>): Sequence {
    const config = { ...this.baseAttention, ...attention };
    const seq = new ModelSequence(createSequenceAttention(attentionShape(this.spec), config));
    seqConfig.set(seq, config);
    return seq;
  }

  attentionFor(attention?: Partial<AttentionConfig>): AttentionConfig {
    return { ...this.baseAttention, ...attention };
  }

  estimateBytes(tokens: number, attention?: Partial<AttentionConfig>) {
    return estimateSequenceBytes(attentionShape(this.spec), { ...this.baseAttention, ...attention }, tokens);
  }

  async generate(seq: Sequence, req: GenerateRequest): Promise<GenerateResult> {
    if (!(seq instanceof ModelSequence) || seq.isDisposed) throw new Error('generate: not a live sequence of this model');
    return this.serial(() => generate(this.ctx, seq, seqConfig.get(seq) ?? this.baseAttention, req));
  }

  async logits(ids: number[], attention?: Partial<AttentionConfig>): Promise<Float32Array> {
    validatePrompt(ids, this.spec.vocabSize, this.ctx.contextLimit);
    const seq = this.newSequence(attention) as ModelSequence;
    try {
      return await this.serial(async () => {
        let logits: Float32Array | undefined;
        for (let at = 0; at < ids.length; at += this.ctx.prefillChunk) {
          const chunk = ids.slice(at, at + this.ctx.prefillChunk);
          logits = await this.runner.forward(seq.attention, chunk, at + chunk.length >= ids.length);
        }
        return logits!;
      });
    } finally {
      seq.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.runner.dispose();
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

const seqConfig = new WeakMap<ModelSequence, AttentionConfig>();
