// The one typed contract between the extension and the engine process (JSON-RPC 2.0 over stdio via vscode-jsonrpc).
// Both sides import this file; it must stay free of engine internals (no tensors) and of vscode.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';

export const PROTOCOL_VERSION = 1;

export type ExecutionProvider = 'auto' | 'cpu' | 'cuda' | 'webgpu';
export type AttentionMethodName = 'dense' | 'magicpig' | 'topk' | 'quest';

export interface AttentionSettings {
  method?: AttentionMethodName;
  /** SimHash bits per table, 1-16 (engine/attention/types.ts LSH_LIMITS). */
  K?: number;
  /** Hash tables, 2-1024. */
  L?: number;
  sinks?: number;
  window?: number;
  denseLayers?: number[];
  budget?: number | 'auto';
  /** Fewest keys worth a MagicPIG/TopK/Quest index; shorter contexts are attended exactly (default 1024; 0: always index). */
  minIndexed?: number;
  /** KV cache element type. Default: bfloat16 for quantized (packed) weights, as llama.cpp keeps an f16 cache; float32
   *  for float32 models, so that the demo models stay exact against their float64 goldens. */
  kvDtype?: 'float32' | 'bfloat16';
}

export interface LoadParams {
  modelDir: string;
  provider?: ExecutionProvider;
  attention?: AttentionSettings;
  /** RAM budget for the prefix cache, bytes. */
  prefixCacheBytes?: number;
  /** Context window to enforce, tokens (default: the model's max_position_embeddings). */
  contextLength?: number;
  /** How a safetensors checkpoint's matrices are held: auto (float32 under 100M parameters, else int8), f32, int8, int4. */
  weights?: 'auto' | 'f32' | 'int8' | 'int4';
  /**
   * Folder for the packed-weights cache (graphs/) and the on-disk prefix cache (prefix/); the extension passes its
   * global storage. Unset: no prefix cache on disk.
   */
  cacheDir?: string;
  /** Most bytes the on-disk prefix cache may hold (least recently used files go first); default 4 GiB, 0 = off. */
  prefixCacheMaxBytes?: number;
}

export interface ModelInfo {
  modelDir: string;
  modelType: string;
  contextLength: number;
  vocabSize: number;
  numLayers: number;
  /** Execution provider actually in use (after any fallback). */
  provider: string;
  /** Prompt format the engine will use for structured completion requests. */
  promptFormat: 'qwen' | 'starcoder' | 'deepseek' | 'codellama' | 'plain';
  hasChatTemplate: boolean;
  /** safetensors: f32 | int8 | int4; or gguf. */
  weights?: string;
  /** Bytes of weights the engine holds. */
  residentBytes?: number;
  /** Seconds the load took. */
  loadSeconds?: number;
}

export interface SamplingParams {
  temperature?: number;
  topP?: number;
  seed?: number;
}

export interface RepoFile {
  path: string;
  text: string;
}

/** Either a raw prompt or structured parts that the engine renders in the model's own repo/FIM format. */
export interface CompleteParams {
  /** Client-chosen id; streamed notifications carry it. */
  id: string;
  prompt?: string;
  repoName?: string;
  /** Context files in the order they should appear (imported files first). */
  files?: RepoFile[];
  /** The current file. */
  path?: string;
  prefix?: string;
  suffix?: string;
  maxTokens?: number;
  stop?: string[];
  sampling?: SamplingParams;
  attention?: AttentionSettings;
  /** 'completion' requests supersede older ones from the same client and run before 'ask'. */
  priority?: 'completion' | 'ask';
}

export interface UsageStats {
  promptTokens: number;
  cachedTokens: number;
  /** Tokens dropped from the front of the context because it exceeded the model's window. */
  truncatedTokens: number;
  /**
   * The part of truncatedTokens cut because the prompt overflowed the window (files, the front of the prefix); the
   * text after the cursor cut to its fixed cap is not counted. Absent from older engines.
   */
  overflowTokens?: number;
  prefillMs: number;
  decodeTokens: number;
  decodeMs: number;
  attention: AttentionMethodName;
  sampledFraction: number;
  /**
   * Prompt tokens whose KV came from the on-disk prefix cache in this request (part of cachedTokens; 0 when from RAM
   * or cold). Absent from engines without one (and from remote servers).
   */
  diskCachedTokens?: number;
}

export interface CompleteResult {
  id: string;
  text: string;
  finishReason: 'eos' | 'stop' | 'length' | 'cancelled';
  stats: UsageStats;
}

/**
 * Background indexing: the same context as a structured completion (the packer's files, the current file's path and,
 * so the engine keeps the same files as the next completion will, its prefix/suffix window and maxTokens). The engine
 * prefills only the token prefix that the next completion's prompt starts with (everything before the current file's
 * code) at the lowest priority, and keeps it in the prefix cache.
 */
export type IndexParams = Pick<CompleteParams, 'id' | 'repoName' | 'files' | 'path' | 'prefix' | 'suffix' | 'attention'> & {
  /** The next completion's maxTokens (it shapes the token budget, so which files fit). */
  maxTokens?: number;
};

export interface IndexResult {
  id: string;
  /** 'done': the whole prefix is in the cache; 'cancelled': superseded by a newer index request, or cancelled. */
  finishReason: 'done' | 'cancelled';
  /** Tokens of the repository prefix. */
  totalTokens: number;
  /** Tokens of it that were already cached when the request started. */
  cachedTokens: number;
  /** Tokens of it in the cache when the request ended (= totalTokens when done). */
  indexedTokens: number;
  prefillMs: number;
  /** Times it ran: 1 + how often completions or asks preempted it. */
  segments: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface AskParams {
  id: string;
  messages: ChatMessage[];
  /** Repository files to put in front of the conversation. */
  files?: RepoFile[];
  maxTokens?: number;
  sampling?: SamplingParams;
  attention?: AttentionSettings;
}

export interface StatusResult {
  state: 'idle' | 'loading' | 'ready' | 'busy' | 'error';
  model?: ModelInfo;
  rssBytes: number;
  prefixCacheBytes: number;
  prefixCacheEntries: number;
  queued: number;
}

export interface TokenParams {
  id: string;
  text: string;
}

export interface ProgressParams {
  /** e.g. 'load', 'prefill'. */
  kind: string;
  message: string;
  /** 0..1, when known. */
  fraction?: number;
  id?: string;
  /** kind 'index': tokens of the repository prefix in the cache so far, and in all. */
  done?: number;
  total?: number;
}

export interface LogParams {
  level: 'info' | 'warn' | 'error';
  message: string;
}

// Semantics (engine/server/):
// - snout/load streams snout/progress {kind:'load'}; a bad folder fails with BadModel; the previous model stays loaded
//   until the new one is ready. Requests during a load fail with Loading.
// - snout/complete and snout/ask stream snout/token {id, text} and resolve with CompleteResult. Cancelling
//   ($/cancelRequest) or superseding (a newer 'completion' from the same connection) resolves the request with
//   finishReason 'cancelled' and the text so far — a result, not an error. Completions run before asks; an ask
//   yields between tokens while a completion waits. Structured requests are truncated to fit the context
//   (stats.truncatedTokens); a raw `prompt` that does not fit fails with PromptTooLong.
// - Malformed messages get JSON-RPC errors (-32700 parse, -32600 invalid request, -32601 unknown method, -32602 invalid
//   params naming the field). The engine exits when stdin closes. vscode-jsonrpc does not fail pending requests when
//   the stream closes: dispose the connection in onClose.
// - snout/index prefills the repository prefix of the given context at the lowest priority: any completion or ask
//   that waits preempts it between prefill chunks (the part prefilled so far stays in the prefix cache, usable by the
//   request that preempted it), and it resumes afterwards. It streams snout/progress {kind:'index', id, done, total}
//   and resolves with IndexResult; a newer snout/index from the same connection supersedes it ('cancelled').
export const InitializeRequest = new RequestType<LoadParams, ModelInfo, void>('snout/load');
export const CompleteRequest = new RequestType<CompleteParams, CompleteResult, void>('snout/complete');
export const AskRequest = new RequestType<AskParams, CompleteResult, void>('snout/ask');
export const IndexRequest = new RequestType<IndexParams, IndexResult, void>('snout/index');
export const StatusRequest = new RequestType0<StatusResult, void>('snout/status');
export const ShutdownRequest = new RequestType0<void, void>('snout/shutdown');
export const TokenNotification = new NotificationType<TokenParams>('snout/token');
export const ProgressNotification = new NotificationType<ProgressParams>('snout/progress');
export const LogNotification = new NotificationType<LogParams>('snout/log');

/** JSON-RPC error codes the engine uses beyond the standard ones. */
export const ErrorCodes = {
  ModelNotLoaded: -32001,
  BadModel: -32002,
  PromptTooLong: -32003,
  /** The request queue is full; retry later. */
  Overloaded: -32004,
  /** The engine is loading a model. */
  Loading: -32005,
  Cancelled: -32800,
} as const;

