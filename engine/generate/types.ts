// What the service layer asks of a loaded model. Implemented in engine/generate/ over the model runner.
import type { AttentionConfig, AttentionMethod } from '../attention/types';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
}

export interface GenerateRequest {
  /** Prompt token ids (already rendered and tokenized). */
  ids: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  /** Stop strings (checked on decoded text; the stop string is not included in the output). */
  stop?: string[];
  /** Per-request attention overrides (method, K, L, ...). */
  attention?: Partial<AttentionConfig>;
  /** Aborting stops generation within one decode step. */
  signal?: AbortSignal;
  /** Streamed text pieces as they become printable (never splits a UTF-8 character). */
  onText?: (text: string) => void;
  /** Prefill progress (tokens done of total), for long prompts. */
  onPrefillProgress?: (done: number, total: number) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateStats {
  promptTokens: number;
  /** Prompt tokens whose KV came from the prefix cache. */
  cachedTokens: number;
  prefillMs: number;
  decodeTokens: number;
  decodeMs: number;
  attention: AttentionMethod;
  /** Mean fraction of indexed keys attended during decode (1 for dense). */
  sampledFraction: number;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  finishReason: FinishReason;
  stats: GenerateStats;
}

/**
 * One cached token sequence: its tokens and the KV cache/index that holds them. The prefix cache (engine/generate/
 * prefix-cache.ts) keeps a pool of these; generate() reuses the longest common token prefix and prefills the rest.
 */
export interface Sequence {
  readonly tokens: readonly number[];
  bytes(): number;
  dispose(): void;
}

export interface TokenizerLike {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Id of a token given its exact text (special tokens included), if the vocabulary has it. */
  tokenToId(token: string): number | undefined;
  readonly bosId?: number;
  readonly eosIds: number[];
  /** Add BOS when encoding a prompt (tokenizer_config.json add_bos_token). */
  readonly addBos: boolean;
  /** Jinja chat template from tokenizer_config.json, if any. */
  readonly chatTemplate?: string;
  readonly specialTokens: string[];
}

export interface LoadProgress {
  message: string;
  /** 0..1 when known. */
  fraction?: number;
}

export interface LoadedModel {
  readonly modelDir: string;
  readonly spec: import('../model/spec').ModelSpec;
  readonly tokenizer: TokenizerLike;
  /** Execution provider actually in use (after fallback). */
  readonly provider: string;
  /** How the weights are held (absent for test doubles). */
  readonly weights?: { format: string; packed: boolean; residentBytes?: number; cache?: string };
  /** Seconds the load took. */
  readonly loadSeconds?: number;
  newSequence(attention?: Partial<AttentionConfig>): Sequence;
  /**
   * What a sequence's K/V depend on besides its tokens (source fingerprint, weights format, graph options, provider,
   * prefill chunk): the disk tier (disk-prefix-cache.ts) uses a file only under the same identity. Absent: no disk tier.
   */
  readonly kvIdentity?: unknown;
  /** The full attention config of a sequence made with these overrides (defaults merged in). */
  attentionFor?(attention?: Partial<AttentionConfig>): AttentionConfig;
  /**
   * Truncates `seq` to its longest common prefix with req.ids, prefills the remaining prompt tokens (in chunks), then
   * decodes. On return seq.tokens = prompt + generated tokens.
   */
  generate(seq: Sequence, req: GenerateRequest): Promise<GenerateResult>;
  /** Last-position logits for a prompt on a fresh sequence (CLI `logits`, tests). */
  logits(ids: number[], attention?: Partial<AttentionConfig>): Promise<Float32Array>;
  /** Bytes a sequence of `tokens` tokens will hold under `attention` (KV cache + index), before allocating any. */
  estimateBytes?(tokens: number, attention?: Partial<AttentionConfig>): import('../attention/memory').MemoryEstimate;
  dispose(): Promise<void>;
}
