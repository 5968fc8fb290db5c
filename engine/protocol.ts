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
  /** Folder for the packed-weights cache (the extension passes its global storage). */
  cacheDir?: string;
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
}

export interface CompleteResult {
  id: string;
  text: string;
  finishReason: 'eos' | 'stop' | 'length' | 'cancelled';
  stats: UsageStats;
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
export const InitializeRequest = new RequestType<LoadParams, ModelInfo, void>('snout/load');
export const CompleteRequest = new RequestType<CompleteParams, CompleteResult, void>('snout/complete');
export const AskRequest = new RequestType<AskParams, CompleteResult, void>('snout/ask');
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

