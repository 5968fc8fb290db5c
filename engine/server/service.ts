// The engine as a service, independent of transport (stdio JSON-RPC and local HTTP both drive this): load a model,
// render requests into prompts, run them through the scheduler and the prefix cache, stream text back.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AttentionConfig } from '../attention/types';
import { DiskPrefixCache } from '../generate/disk-prefix-cache';
import { commonPrefix, PrefixCache, type Lease } from '../generate/prefix-cache';
import type { GenerateResult, LoadedModel, LoadProgress } from '../generate/types';
import { CachedTokenizer, completionTexts, detectPromptFormat, encodeSegments, layoutStops, renderChat, renderCompletion, renderRepositoryPrefix, type PromptFormat } from '../prompt';
import {
  ErrorCodes, type AskParams, type AttentionSettings, type CompleteParams, type CompleteResult, type IndexParams, type IndexResult, type LoadParams,
  type ModelInfo, type ProgressParams, type StatusResult, type ExecutionProvider,
} from '../protocol';
import { ModelScheduler, Overloaded, Superseded, type Priority } from './scheduler';

export interface LoaderOptions {
  provider?: ExecutionProvider;
  onProgress?: (p: LoadProgress) => void;
  /** Context to enforce (tokens); default the model's own. */
  contextLimit?: number;
  attention?: Partial<AttentionConfig>;
  weights?: LoadParams['weights'];
  cacheDir?: string;
}
export type ModelLoader = (dir: string, opts: LoaderOptions) => Promise<LoadedModel>;
export type Logger = (level: 'info' | 'warn' | 'error', message: string) => void;

/** An error with a JSON-RPC code; transports map it (HTTP: 4xx/5xx). */
export class ServiceError extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

export interface StreamOptions {
  /** Requests from one client supersede that client's older completions. */
  client?: string;
  signal?: AbortSignal;
  onText?: (text: string) => void;
  onProgress?: (p: ProgressParams) => void;
}

export const DEFAULT_PREFIX_CACHE_BYTES = 1 << 30;

/**
 * The largest request a context can justify. Prompt text beyond budget × 32 characters can never fit (no token is
 * longer than ~32 characters; complete() refuses it), and one character takes at most 6 bytes of JSON (a \u escape),
 * so a frame over 192 bytes a token of context only carries text the engine would drop. Parsing JSON is synchronous
 * (~5 ms a MB here), so this is also what keeps one frame from holding the event loop past a decode step: a 60 MB
 * frame took ~1.6 s. The 4 MiB base is room for JSON framing (10,000 short chat messages) and for snout/load.
 */
export function requestByteLimit(contextLength?: number): number {
  const base = 4 << 20;
  return contextLength ? base + contextLength * 192 : base;
}
const DEFAULT_COMPLETION_TOKENS = 64;
const DEFAULT_ASK_TOKENS = 256;

/**
 * Test only: SNOUT_TEST_DELAY_MS makes every completion wait that long (abortably, holding no lock) before it runs,
 * so the end-to-end suite can play a slow model with the tiny one. Never set it for real use.
 */
const testDelayMs = Math.max(0, Math.min(60_000, Number(process.env.SNOUT_TEST_DELAY_MS) || 0));

const abortableSleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  if (signal.aborted) return resolve();
  const t = setTimeout(done, ms);
  function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
  signal.addEventListener('abort', done, { once: true });
});

function attentionConfig(a?: AttentionSettings): Partial<AttentionConfig> | undefined {
  if (!a) return undefined;
  const c: Partial<AttentionConfig> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  return c;
}

/** The answer to a request stopped before it reached the model (superseded or cancelled while tokenizing). */
function cancelledResult(id: string): CompleteResult {
  const stats = { promptTokens: 0, cachedTokens: 0, truncatedTokens: 0, overflowTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, attention: 'dense' as const, sampledFraction: 1 };
  return { id, text: '', finishReason: 'cancelled', stats };
}

export class EngineService {
  private model?: LoadedModel;
  private info?: ModelInfo;
  private format?: PromptFormat;
  private tokenizer?: CachedTokenizer;
  private cache?: PrefixCache;
  private defaults?: Partial<AttentionConfig>;
  private loading?: Promise<ModelInfo>;
  private failed = false;
  private readonly scheduler = new ModelScheduler();
  private readonly latest = new Map<string, AbortController>();
  /** Per client, its index request in flight (a newer one supersedes it). */
  private readonly latestIndex = new Map<string, AbortController>();
  /** Every request in flight (queued or running), so a model switch or shutdown can stop them all. */
  private readonly active = new Set<AbortController>();

  constructor(private readonly loader: ModelLoader, private readonly log: Logger) {}

  async load(p: LoadParams, onProgress?: (p: ProgressParams) => void): Promise<ModelInfo> {
    if (this.loading) throw new ServiceError(ErrorCodes.Loading, 'a model is already loading');
    const dir = path.resolve(p.modelDir);
    if (!existsSync(dir)) throw new ServiceError(ErrorCodes.BadModel, `model not found: ${dir}`);
    const st = statSync(dir);
    if (st.isFile() && !dir.toLowerCase().endsWith('.gguf')) throw new ServiceError(ErrorCodes.BadModel, `not a model (expected a folder or a .gguf file): ${dir}`);
    if (st.isDirectory() && !existsSync(path.join(dir, 'config.json')) && !readdirSync(dir).some((f) => f.toLowerCase().endsWith('.gguf'))) {
      throw new ServiceError(ErrorCodes.BadModel, `not a model folder (no config.json or .gguf file): ${dir}`);
    }
    this.loading = this.doLoad(dir, p, onProgress);
    try { return await this.loading; } finally { this.loading = undefined; }
  }

  private async doLoad(dir: string, p: LoadParams, onProgress?: (p: ProgressParams) => void): Promise<ModelInfo> {
    let model: LoadedModel;
    try {
      model = await this.loader(dir, {
        provider: p.provider,
        contextLimit: p.contextLength,
        attention: attentionConfig(p.attention),
        weights: p.weights,
        cacheDir: p.cacheDir,
        onProgress: (x) => onProgress?.({ kind: 'load', message: x.message, fraction: x.fraction }),
      });
    } catch (e) {
      this.failed = true;
      throw new ServiceError(ErrorCodes.BadModel, `cannot load ${dir}: ${(e as Error)?.message ?? e}`);
    }
    this.failed = false;
    await this.unload(); // the previous model stays usable until the new one has loaded
    this.model = model;
    this.format = detectPromptFormat(model.tokenizer);
    this.tokenizer = new CachedTokenizer(model.tokenizer);
    this.defaults = attentionConfig(p.attention);
    this.cache = new PrefixCache(model, p.prefixCacheBytes ?? DEFAULT_PREFIX_CACHE_BYTES, undefined, this.diskCache(model, p));
    this.info = {
      modelDir: dir,
      modelType: model.spec.modelType,
      contextLength: p.contextLength ?? model.spec.maxPositionEmbeddings,
      vocabSize: model.spec.vocabSize,
      numLayers: model.spec.numLayers,
      provider: model.provider,
      promptFormat: this.format.name,
      hasChatTemplate: !!model.tokenizer.chatTemplate,
      weights: model.weights?.format,
      residentBytes: model.weights?.residentBytes,
      loadSeconds: model.loadSeconds,
    };
    const resident = model.weights?.residentBytes ? `, ${(model.weights.residentBytes / 2 ** 30).toFixed(2)} GiB of ${model.weights.format} weights` : '';
    this.log('info', `loaded ${dir} (${this.info.modelType}, ${this.info.promptFormat} prompts, context ${this.info.contextLength}, ${model.provider}${resident}, ${(model.loadSeconds ?? 0).toFixed(1)} s)`);
    return this.info;
  }

  /** The prefix cache's disk tier: with a cacheDir, a model that states its KV identity, and a non-zero cap. */
  private diskCache(model: LoadedModel, p: LoadParams): DiskPrefixCache | undefined {
    if (!p.cacheDir || p.prefixCacheMaxBytes === 0 || model.kvIdentity === undefined || !model.attentionFor) return undefined;
    const m = model as LoadedModel & Required<Pick<LoadedModel, 'attentionFor'>>;
    return new DiskPrefixCache(p.cacheDir, {
      identity: m.kvIdentity,
      shape: { numLayers: m.spec.numLayers, numHeads: m.spec.numHeads, numKvHeads: m.spec.numKvHeads, headDim: m.spec.headDim },
      attentionFor: (a) => m.attentionFor(a),
    }, { maxBytes: p.prefixCacheMaxBytes, log: (line) => this.log('warn', line) });
  }

  /** Waits for the disk tier's write in progress (tests and benches; nothing needs it for correctness). */
  async flushDisk(): Promise<void> {
    await this.cache?.disk?.flush();
  }

  private async unload() {
    for (const c of this.active) c.abort();
    // The running request stops within a decode step; the model must not be disposed under it.
    while (this.scheduler.busy) await new Promise((r) => setTimeout(r, 2));
    this.cache?.clear();
    await this.cache?.disk?.flush(); // a write in progress finishes (or a later engine would find no file)
    const m = this.model;
    this.model = this.info = this.format = this.cache = this.tokenizer = undefined;
    await m?.dispose();
  }

  private ready(): { model: LoadedModel; info: ModelInfo; format: PromptFormat; cache: PrefixCache; tok: CachedTokenizer } {
    if (this.loading) throw new ServiceError(ErrorCodes.Loading, 'the model is still loading');
    if (!this.model || !this.info || !this.format || !this.cache || !this.tokenizer) throw new ServiceError(ErrorCodes.ModelNotLoaded, 'no model loaded: call snout/load first');
    return { model: this.model, info: this.info, format: this.format, cache: this.cache, tok: this.tokenizer };
  }

  private budgetFor(maxTokens: number, ctx: number, what: string): number {
    if (maxTokens >= ctx) throw new ServiceError(-32602, `${what}.maxTokens ${maxTokens} leaves no room for a prompt in the context of ${ctx} tokens`);
    return ctx - maxTokens;
  }

  async complete(p: CompleteParams, o: StreamOptions = {}): Promise<CompleteResult> {
    const { info, format, tok } = this.ready();
    const maxTokens = p.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
    const budget = this.budgetFor(maxTokens, info.contextLength, 'complete');
    const priority: Priority = p.priority ?? 'completion';
    // A new completion from a client makes its previous one stale, from the moment it arrives (tokenizing included).
    const ctrl = new AbortController();
    const key = o.client !== undefined && priority === 'completion' ? o.client : undefined;
    if (key !== undefined) { this.latest.get(key)?.abort(); this.latest.set(key, ctrl); }
    const stopped = o.signal ? AbortSignal.any([ctrl.signal, o.signal]) : ctrl.signal;
    try {
      let ids: number[];
      let truncatedTokens = 0;
      let overflowTokens = 0;
      if (p.prompt !== undefined) {
        // Cut by characters before tokenizing: no token is longer than ~32 characters, so a longer prompt cannot fit,
        // and tokenizing megabytes only to refuse them would hold the event loop for seconds.
        if (p.prompt.length > budget * 32) {
          throw new ServiceError(ErrorCodes.PromptTooLong, `prompt is ${p.prompt.length} characters; with maxTokens ${maxTokens} the context of ${info.contextLength} allows ${budget} tokens, at most ~${budget * 32} characters`);
        }
        // Tokenize in slices (the event loop stays responsive), then encode from the warmed cache.
        const warming = tok.warm([p.prompt], stopped);
        if (warming) await warming;
        if (stopped.aborted) return cancelledResult(p.id);
        ids = encodeSegments(tok, [{ text: p.prompt }], true);
        if (ids.length > budget) {
          throw new ServiceError(ErrorCodes.PromptTooLong, `prompt is ${ids.length} tokens; with maxTokens ${maxTokens} the context of ${info.contextLength} allows ${budget}`);
        }
      } else {
        const parts = { repoName: p.repoName, files: p.files, path: p.path, prefix: p.prefix ?? '', suffix: p.suffix };
        const warming = tok.warm(completionTexts(format, parts, budget), stopped);
        if (warming) await warming; // (only when it takes more than a slice: a keystroke stays synchronous)
        if (stopped.aborted) return cancelledResult(p.id);
        try {
          const r = renderCompletion(tok, format, parts, budget);
          ids = r.ids;
          truncatedTokens = r.truncatedTokens;
          overflowTokens = r.overflowTokens;
        } catch (e) {
          throw new ServiceError(ErrorCodes.PromptTooLong, (e as Error).message);
        }
      }
      if (ids.length === 0) ids = tok.bosId !== undefined ? [tok.bosId] : ids;
      if (ids.length === 0) throw new ServiceError(-32602, 'complete: the prompt is empty');
      return await this.run(p.id, ids, { truncatedTokens, overflowTokens }, maxTokens, priority, p, ctrl, o);
    } finally {
      if (key !== undefined && this.latest.get(key) === ctrl) this.latest.delete(key);
    }
  }

  async ask(p: AskParams, o: StreamOptions = {}): Promise<CompleteResult> {
    const { info, tok } = this.ready();
    const maxTokens = p.maxTokens ?? DEFAULT_ASK_TOKENS;
    const budget = this.budgetFor(maxTokens, info.contextLength, 'ask');
    let r: Awaited<ReturnType<typeof renderChat>>;
    try {
      r = await renderChat(tok, p.messages, p.files ?? [], budget);
    } catch (e) {
      throw new ServiceError(-32603, `the model's chat template failed: ${(e as Error).message}`);
    }
    return this.run(p.id, r.ids, r, maxTokens, 'ask', p, new AbortController(), o);
  }

  /**
   * Background indexing: prefill the repository prefix of a completion context (renderRepositoryPrefix) at the
   * lowest priority. Each grant of the model runs one segment: take the cached sequence sharing the longest prefix,
   * prefill the rest in chunks, and stop at a chunk boundary when a completion or ask starts waiting (generate()
   * leaves seq.tokens = what was prefilled). The sequence goes back to the prefix cache after every segment, not
   * only at the end, so the request that preempted it finds the part already done; the next segment picks up from
   * whatever sequence then holds the longest prefix (often the preempting completion's, which already prefilled the
   * rest, since its prompt starts with the same tokens).
   */
  async index(p: IndexParams, o: StreamOptions = {}): Promise<IndexResult> {
    const { info, format, tok } = this.ready();
    const maxTokens = p.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
    const budget = this.budgetFor(maxTokens, info.contextLength, 'index');
    let ids: number[];
    const parts = { repoName: p.repoName, files: p.files, path: p.path, prefix: p.prefix ?? '', suffix: p.suffix };
    // Tokenized in slices first, as for complete (the repository is the long part of a prompt).
    const warming = tok.warm(completionTexts(format, parts, budget), o.signal);
    if (warming) await warming;
    try {
      ids = renderRepositoryPrefix(tok, format, parts, budget).ids;
    } catch (e) {
      throw new ServiceError(ErrorCodes.PromptTooLong, (e as Error).message);
    }
    const result: IndexResult = { id: p.id, finishReason: 'cancelled', totalTokens: ids.length, cachedTokens: 0, indexedTokens: 0, prefillMs: 0, segments: 0 };
    const ctrl = new AbortController();
    const key = o.client ?? '';
    this.latestIndex.get(key)?.abort();
    this.latestIndex.set(key, ctrl);
    this.active.add(ctrl);
    const onUserAbort = () => ctrl.abort();
    o.signal?.addEventListener('abort', onUserAbort, { once: true });
    if (o.signal?.aborted) ctrl.abort();
    const attention = { ...this.defaults, ...attentionConfig(p.attention) };
    let lastProgress = 0;
    const progress = (done: number, force = false) => {
      const now = Date.now();
      if (!o.onProgress || (!force && now - lastProgress < 200)) return;
      lastProgress = now;
      o.onProgress({ kind: 'index', id: p.id, message: `indexing ${done}/${ids.length}`, fraction: ids.length ? done / ids.length : 1, done, total: ids.length });
    };
    try {
      // One token or none (an empty context) is not worth a cache entry.
      if (ids.length < 2) { result.finishReason = 'done'; result.indexedTokens = ids.length; return result; }
      while (!ctrl.signal.aborted) {
        const yieldCtrl = new AbortController();
        const stopSegment = () => yieldCtrl.abort();
        ctrl.signal.addEventListener('abort', stopSegment, { once: true });
        let release: () => void;
        try {
          release = await this.scheduler.acquire('index', ctrl.signal, stopSegment);
        } catch (e) {
          ctrl.signal.removeEventListener('abort', stopSegment);
          if (e instanceof Superseded) break;
          if (e instanceof Overloaded) throw new ServiceError(ErrorCodes.Overloaded, e.message);
          throw e;
        }
        let lease: Lease | undefined;
        let finished = false;
        let cache: PrefixCache | undefined;
        try {
          if (ctrl.signal.aborted) break;
          const ready = this.ready();
          const model = ready.model;
          cache = ready.cache;
          result.segments++;
          // A disk read is sliced and stops when a waiting request preempts the indexing.
          lease = await cache.acquireAsync(ids, attention, this.memoryCheck(model, cache, Math.min(ids.length + maxTokens, info.contextLength), attention), yieldCtrl.signal);
          const have = commonPrefix(lease.seq.tokens, ids);
          if (result.segments === 1) result.cachedTokens = have;
          result.indexedTokens = have;
          progress(have, true);
          if (have >= ids.length) finished = true;
          else {
            // maxTokens 0: prefill (and, for sampled attention, index the keys: prepare()) without decoding.
            const r = await model.generate(lease.seq, {
              ids, maxTokens: 0, sampling: { temperature: 0, topP: 1, seed: 0 }, attention, signal: yieldCtrl.signal,
              onPrefillProgress: (done) => { result.indexedTokens = done; progress(done); },
            });
            result.prefillMs += r.stats.prefillMs;
            result.indexedTokens = commonPrefix(lease.seq.tokens, ids);
            finished = r.finishReason !== 'cancelled';
          }
        } catch (e) {
          if (lease) { cache?.discard(lease.seq); lease = undefined; }
          throw e;
        } finally {
          ctrl.signal.removeEventListener('abort', stopSegment);
          if (lease) cache?.release(lease.seq);
          release();
          if (finished) result.finishReason = 'done';
        }
        if (finished) break;
        // Preempted (not cancelled): queue again behind whatever preempted it.
      }
      progress(result.indexedTokens, true);
      return result;
    } finally {
      o.signal?.removeEventListener('abort', onUserAbort);
      this.active.delete(ctrl);
      if (this.latestIndex.get(key) === ctrl) this.latestIndex.delete(key);
    }
  }

  /**
   * Runs one request to completion. Asks may be interrupted between tokens by waiting completions: the segment ends
   * 'cancelled', the lock is released, and generation resumes later from prompt + generated tokens on the same
   * (pinned) sequence, so nothing is recomputed.
   */
  private async run(
    id: string, ids: number[], cut: { truncatedTokens: number; overflowTokens: number }, maxTokens: number, priority: Priority,
    p: CompleteParams | AskParams, ctrl: AbortController, o: StreamOptions,
  ): Promise<CompleteResult> {
    const { model, cache } = this.ready();
    this.active.add(ctrl);
    const onUserAbort = () => ctrl.abort();
    o.signal?.addEventListener('abort', onUserAbort, { once: true });
    if (o.signal?.aborted) ctrl.abort();
    // A structured completion is one code span: the layout's own markers (next file, FIM tokens) end it.
    const fmt = this.format;
    const markers = fmt && priority === 'completion' && 'prefix' in p && p.prefix !== undefined
      ? layoutStops(fmt)
      : [];
    const userStops = 'stop' in p ? p.stop ?? [] : [];
    const stop = [...userStops, ...markers];
    const sampling = { temperature: p.sampling?.temperature ?? 0, topP: p.sampling?.topP ?? 1, seed: p.sampling?.seed ?? 0 };
    const attention = { ...this.defaults, ...attentionConfig(p.attention) };
    const stats = { promptTokens: ids.length, cachedTokens: 0, diskCachedTokens: 0, truncatedTokens: cut.truncatedTokens, overflowTokens: cut.overflowTokens, prefillMs: 0, decodeTokens: 0, decodeMs: 0, attention: attention.method ?? 'dense', sampledFraction: 1 };
    const generated: number[] = [];
    let text = '';
    let finishReason: CompleteResult['finishReason'] = 'cancelled';
    let lease: Lease | undefined;
    let segments = 0;
    let lastProgress = 0;
    try {
      if (testDelayMs > 0 && priority === 'completion') await abortableSleep(testDelayMs, ctrl.signal);
      while (generated.length < maxTokens) {
        const yieldCtrl = new AbortController();
        const stopSegment = () => yieldCtrl.abort();
        ctrl.signal.addEventListener('abort', stopSegment, { once: true });
        let release: () => void;
        try {
          release = await this.scheduler.acquire(priority, ctrl.signal, stopSegment);
        } catch (e) {
          ctrl.signal.removeEventListener('abort', stopSegment);
          if (e instanceof Superseded) break;
          if (e instanceof Overloaded) throw new ServiceError(ErrorCodes.Overloaded, e.message);
          throw e;
        }
        let r: GenerateResult;
        try {
          if (ctrl.signal.aborted) break;
          if (!lease) {
            // A disk read (seconds at 32K) is sliced: cancellations and status get through meanwhile.
            lease = await cache.acquireAsync(ids, attention, this.memoryCheck(model, cache, Math.min(ids.length + maxTokens, this.info?.contextLength ?? Infinity), attention), yieldCtrl.signal);
          }
          r = await model.generate(lease.seq, {
            ids: generated.length ? ids.concat(generated) : ids,
            maxTokens: maxTokens - generated.length,
            sampling: { ...sampling, seed: (sampling.seed + generated.length) >>> 0 },
            stop,
            attention,
            signal: yieldCtrl.signal,
            onText: (t) => { text += t; o.onText?.(t); },
            onPrefillProgress: o.onProgress && ((done, total) => {
              const now = Date.now();
              if (now - lastProgress < 100 && done < total) return;
              lastProgress = now;
              o.onProgress!({ kind: 'prefill', id, message: `prefill ${done}/${total}`, fraction: total ? done / total : 1 });
            }),
          });
          if (segments === 0) {
            stats.cachedTokens = r.stats.cachedTokens;
            stats.diskCachedTokens = Math.min(r.stats.cachedTokens, lease.diskTokens);
          }
        } catch (e) {
          if (lease) { cache.discard(lease.seq); lease = undefined; }
          throw e;
        } finally {
          ctrl.signal.removeEventListener('abort', stopSegment);
          release();
        }
        segments++;
        generated.push(...r.ids);
        stats.prefillMs += r.stats.prefillMs;
        stats.decodeMs += r.stats.decodeMs;
        stats.decodeTokens += r.stats.decodeTokens;
        stats.attention = r.stats.attention;
        stats.sampledFraction = r.stats.sampledFraction;
        finishReason = r.finishReason;
        // Cancelled but not by the client: the segment yielded to a completion; resume.
        if (r.finishReason === 'cancelled' && !ctrl.signal.aborted) continue;
        break;
      }
      if (generated.length >= maxTokens && finishReason === 'cancelled' && !ctrl.signal.aborted) finishReason = 'length';
    } finally {
      o.signal?.removeEventListener('abort', onUserAbort);
      this.active.delete(ctrl);
      if (lease) cache.release(lease.seq);
    }
    // The streamed pieces are exact per segment; the final text is the exact decode when generation was not split.
    if (segments > 1) text = model.tokenizer.decode(generated, { skipSpecialTokens: true });
    return { id, text, finishReason, stats };
  }

  /**
   * Bytes the request's sequence will need (KV cache + LSH index, from its context and its K and L); a request that
   * cannot fit the cache budget even alone is refused before anything is allocated.
   */
  private memoryCheck(model: LoadedModel, cache: PrefixCache, tokens: number, attention: Partial<AttentionConfig>): number {
    const est = model.estimateBytes?.(tokens, attention);
    if (!est) return 0;
    // A budget of 0 means "keep nothing between requests", not "run nothing": one request may then use the default.
    const limit = cache.budgetBytes > 0 ? cache.budgetBytes : DEFAULT_PREFIX_CACHE_BYTES;
    if (est.total > limit) {
      const mb = (x: number) => `${Math.ceil(x / 2 ** 20)} MB`;
      const knobs = attention.method && attention.method !== 'dense' ? ` (K=${attention.K ?? 'default'}, L=${attention.L ?? 'default'})` : '';
      throw new ServiceError(-32602, `this request would need ~${mb(est.total)} of RAM (KV cache ${mb(est.kv)}, attention index ${mb(est.index)}${knobs}) `
        + `for ${tokens} tokens, more than the cache budget of ${mb(limit)}; lower K or L, shorten the request, or raise prefixCacheBytes`);
    }
    return est.total;
  }

  /** See requestByteLimit; while a model loads, the one loaded before it (or none) sets the limit. */
  maxRequestBytes(): number {
    return requestByteLimit(this.info?.contextLength);
  }

  status(): StatusResult {
    const state = this.loading ? 'loading' : this.model ? (this.scheduler.busy ? 'busy' : 'ready') : this.failed ? 'error' : 'idle';
    return {
      state,
      model: this.info,
      rssBytes: process.memoryUsage().rss,
      prefixCacheBytes: this.cache?.bytes() ?? 0,
      prefixCacheEntries: this.cache?.size ?? 0,
      queued: this.scheduler.queued,
    };
  }

  async shutdown(): Promise<void> {
    await this.unload();
  }
}
