// loadModel(dir): config.json → spec, validated safetensors → ONNX graphs → sessions, tokenizer; returns the
// LoadedModel the service layer drives (engine/generate/types.ts).
import path from 'node:path';
import { createSequenceAttention } from '../attention/index';
import { estimateSequenceBytes } from '../attention/memory';
import { defaultAttentionConfig, type AttentionConfig, type AttentionShape } from '../attention/types';
import { readConfig, readGenerationEos } from '../model/config';
import { SafetensorsStore } from '../model/safetensors';
import type { ModelSpec } from '../model/spec';
import { loadTokenizer } from '../model/tokenizer';
import { checkWeights } from '../model/weights';
import type { ProviderSetting } from '../runtime/session';
import { ModelRunner } from './forward';
import { generate, validatePrompt, type GenerateContext } from './generate';
import { ModelSequence } from './sequence';
import type { GenerateRequest, GenerateResult, LoadedModel, LoadProgress, Sequence } from './types';

export interface LoadOptions {
  provider?: ProviderSetting;
  onProgress?: (progress: LoadProgress) => void;
  /** Default attention for new sequences (per-request overrides go in GenerateRequest.attention). */
  attention?: Partial<AttentionConfig>;
  /** Tokens per prefill chunk (default 256). */
  prefillChunk?: number;
  /** Allow positions beyond config's max_position_embeddings (speed benchmarks only: quality is not trained there). */
  contextLimit?: number;
  /** onnxruntime threads per operator (0 = its default). */
  threads?: number;
  /** Fuse post-attention(l) with pre-attention(l+1) (default true). */
  fuseLayers?: boolean;
  /** Embedding in the first layer graph, head in the last (default: when the embedding is <= 64 MiB). */
  fuseEmbedHead?: boolean;
  /** Where the provider-fallback line goes (default stderr). */
  log?: (line: string) => void;
}

export async function loadModel(dir: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const modelDir = path.resolve(dir);
  const progress = (message: string, fraction?: number) => options.onProgress?.({ message, fraction });

  progress('reading config.json', 0);
  const spec = readConfig(modelDir);
  const tokenizer = loadTokenizer(modelDir, [...spec.eosTokenIds, ...readGenerationEos(modelDir, spec.vocabSize)]);
  progress('checking weights', 0.02);
  const store = SafetensorsStore.open(modelDir);
  checkWeights(spec, store, modelDir);

  const runner = await ModelRunner.create(spec, (name) => store.read(name), {
    provider: options.provider ?? 'auto',
    fuseLayers: options.fuseLayers,
    fuseEmbedHead: options.fuseEmbedHead,
    threads: options.threads,
    log: options.log,
    onProgress: (message, fraction) => progress(message, 0.05 + 0.95 * fraction),
  });
  return new Model(modelDir, spec, tokenizer, runner, options);
}

export function attentionShape(spec: ModelSpec): AttentionShape {
  return { numLayers: spec.numLayers, numHeads: spec.numHeads, numKvHeads: spec.numKvHeads, headDim: spec.headDim };
}

class Model implements LoadedModel {
  readonly provider: string;
  private readonly ctx: GenerateContext;
  private readonly baseAttention: AttentionConfig;
  /** Sequences are used one request at a time; requests on one model run one after another. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly modelDir: string,
    readonly spec: ModelSpec,
    readonly tokenizer: ReturnType<typeof loadTokenizer>,
    private readonly runner: ModelRunner,
    options: LoadOptions,
  ) {
    this.provider = runner.provider;
    this.baseAttention = { ...defaultAttentionConfig(spec.numLayers), ...options.attention };
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
