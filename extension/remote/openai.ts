// A remote OpenAI-compatible server (vLLM, llama.cpp's server, TGI, `snout serve --http`) as Snout's backend:
// completions go to /v1/completions as one prompt string in the served model's FIM layout (render.ts), streamed as
// SSE; Ask goes to /v1/chat/completions with the repository files in front of the question. Cancelling aborts the
// HTTP request. A failure is one line (401, 404 model, 429, timeout, server gone); the backend then probes the
// server with exponential backoff and is ready again when it answers. No vscode import: the adapter passes settings,
// the API key and callbacks, and tests drive it against a real `snout serve --http`.
import { repositoryContext } from '../../engine/prompt/context-text';
import type { PromptFormatName } from '../../engine/prompt/format';
import type { AskParams, CompleteParams, CompleteResult, ModelInfo, UsageStats } from '../../engine/protocol';
import type { CancelToken, EngineState } from '../engine/client';
import { formatFromModelName, promptFormat, renderRemotePrompt, type FormatSetting } from './render';

export interface RemoteOptions {
  /** Server address, with or without the trailing /v1. */
  url: string;
  /** Served model name; empty = the first one /v1/models lists. */
  model?: string;
  apiKey?: () => Promise<string | undefined> | string | undefined;
  /** FIM layout: from the model's name ('auto'; the server's own prompt_format when it reports one) or forced. */
  promptFormat?: FormatSetting;
  /** Context window when the server does not report max_model_len. */
  contextTokens?: number;
  /** No byte from the server for this long = a timeout (first byte and between chunks). */
  timeoutMs?: number;
  /** Characters per token of the packed text (the extension's estimator), for the character budget. */
  charsPerToken?: () => number;
  log: (line: string) => void;
  onState?: (state: EngineState, detail?: string) => void;
  onReady?: (model: ModelInfo) => void;
  backoffMs?: { initial: number; max: number };
}

export class RemoteError extends Error {
  constructor(message: string, readonly status?: number, readonly retryAfterMs?: number) { super(message); }
}

const seconds = (ms: number) => (ms < 10_000 ? (ms / 1000).toFixed(1).replace(/\.0$/, '') : String(Math.round(ms / 1000)));
const emptyStats = (): UsageStats => ({ promptTokens: 0, cachedTokens: 0, truncatedTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, attention: 'dense', sampledFraction: 1 });

export class RemoteBackend {
  private _state: EngineState = 'stopped';
  private _model: ModelInfo | undefined;
  private format: PromptFormatName = 'plain';
  private served = '';
  private starting: Promise<ModelInfo> | undefined;
  private failures = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly live = new Set<AbortController>();
  readonly base: string;

  constructor(private readonly o: RemoteOptions) {
    this.base = o.url.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
  }

  get state(): EngineState { return this._state; }
  get model(): ModelInfo | undefined { return this._model; }
  private get host(): string { try { return new URL(this.base).host; } catch { return this.base; } }

  private setState(s: EngineState, detail?: string): void {
    this._state = s;
    this.o.onState?.(s, detail);
  }

  private async headers(): Promise<Record<string, string>> {
    const key = await this.o.apiKey?.();
    return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
  }

  /** Checks the server and the model (GET /v1/models) and resolves with what the extension needs to pack for it. */
  start(): Promise<ModelInfo> {
    if (this.disposed) return Promise.reject(new Error('remote backend disposed'));
    if (this._state === 'ready' && this._model) return Promise.resolve(this._model);
    if (!this.starting) {
      const p = this.connect().finally(() => { if (this.starting === p) this.starting = undefined; });
      this.starting = p;
    }
    return this.starting;
  }

  private async connect(): Promise<ModelInfo> {
    clearTimeout(this.probeTimer);
    if (!/^https?:\/\/[^/]/.test(this.base)) {
      const msg = `snout.backend.url must be an http(s) address, got ${JSON.stringify(this.o.url)}`;
      this.setState('error', msg);
      throw new RemoteError(msg);
    }
    this.setState(this._state === 'error' ? 'restarting' : 'starting', this.base);
    try {
      const body = await this.request('GET', '/v1/models', undefined, undefined) as { data?: { id: string; max_model_len?: number; prompt_format?: string }[] };
      const served = Array.isArray(body?.data) ? body.data : [];
      const wanted = this.o.model?.trim();
      const entry = wanted ? served.find((m) => m.id === wanted) : served[0];
      if (!entry) {
        throw new RemoteError(wanted ? `${this.host} does not serve the model "${wanted}" (it serves ${served.map((m) => m.id).join(', ') || 'none'}); check snout.backend.model.` : `${this.host} lists no models.`, 404);
      }
      const setting = this.o.promptFormat ?? 'auto';
      const reported = ['qwen', 'starcoder', 'deepseek', 'codellama', 'plain'].includes(entry.prompt_format ?? '') ? entry.prompt_format as PromptFormatName : undefined;
      this.format = setting !== 'auto' ? setting : reported ?? formatFromModelName(entry.id);
      const contextLength = Number.isInteger(entry.max_model_len) && entry.max_model_len! > 0 ? entry.max_model_len! : this.o.contextTokens ?? 8192;
      this.served = entry.id;
      this._model = {
        modelDir: `${this.base} · ${entry.id}`, modelType: 'remote', contextLength, vocabSize: 0, numLayers: 0,
        provider: 'remote', promptFormat: this.format, hasChatTemplate: true,
      };
      this.failures = 0;
      this.setState('ready');
      this.o.log(`remote backend ready: ${entry.id} at ${this.base}, context ${contextLength}, prompt format ${this.format}`);
      this.o.onReady?.(this._model);
      return this._model;
    } catch (e) {
      this.failed(e as Error);
      throw e;
    }
  }

  /** One line in the status bar and the log, then a probe after an exponential backoff. */
  private failed(e: Error): void {
    if (this.disposed) return;
    this.failures++;
    const { initial, max } = this.o.backoffMs ?? { initial: 1000, max: 30_000 };
    const retryAfter = e instanceof RemoteError ? e.retryAfterMs : undefined;
    // The server's Retry-After wins over the backoff (asking earlier would only be refused again).
    const delay = retryAfter ?? Math.min(max, initial * 2 ** (this.failures - 1));
    this.o.log(`remote backend: ${e.message} (retrying in ${seconds(delay)} s)`);
    this.setState('error', `${e.message} Retrying in ${seconds(delay)} s.`);
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => { this.start().catch(() => {}); }, delay);
  }

  /** A fetch that times out when the server goes quiet and turns every failure into one clear line. */
  private async request(method: string, path: string, body: unknown, token: CancelToken | undefined, onEvent?: (data: any) => void): Promise<unknown> {
    const ac = new AbortController();
    this.live.add(ac);
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => { timedOut = true; ac.abort(); }, timeoutMs); };
    const sub = token?.onCancellationRequested(() => ac.abort());
    if (token?.isCancellationRequested) ac.abort();
    const explain = (e: unknown): Error => {
      if (token?.isCancellationRequested) return new CancelledError();
      if (timedOut) return new RemoteError(`no answer from ${this.host} for ${seconds(timeoutMs)} s (timeout; snout.backend.timeoutMs).`);
      if (e instanceof RemoteError) return e;
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as NodeJS.ErrnoException).code;
      return new RemoteError(`cannot reach ${this.host} (${cause ?? (e as Error).message}): is the server running?`);
    };
    arm();
    try {
      let res: Response;
      try {
        res = await fetch(`${this.base}${path}`, { method, headers: await this.headers(), body: body === undefined ? undefined : JSON.stringify(body), signal: ac.signal });
      } catch (e) { throw explain(e); }
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        let detail = '';
        try { detail = JSON.parse(text)?.error?.message ?? ''; } catch { detail = text.slice(0, 200); }
        throw this.statusError(res.status, detail, res.headers.get('retry-after'));
      }
      if (!onEvent) return await res.json();
      // SSE: events separated by a blank line, each `data: <json>`; `data: [DONE]` ends the stream.
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        arm();
        let chunk: ReadableStreamReadResult<string>;
        try { chunk = await reader.read(); } catch (e) {
          if (token?.isCancellationRequested || timedOut) throw explain(e);
          throw new RemoteError(`${this.host} closed the connection in the middle of the answer (server gone?).`);
        }
        if (chunk.done) throw new RemoteError(`${this.host} ended the stream without [DONE] (server gone?).`);
        buf += chunk.value;
        let at: number;
        while ((at = buf.search(/\r?\n\r?\n/)) >= 0) {
          const event = buf.slice(0, at);
          buf = buf.slice(at).replace(/^\r?\n\r?\n/, '');
          const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (!data) continue;
          if (data === '[DONE]') { void reader.cancel().catch(() => {}); return undefined; }
          let parsed: any;
          try { parsed = JSON.parse(data); } catch { throw new RemoteError(`${this.host} sent an event that is not JSON: ${data.slice(0, 80)}`); }
          // An error after the stream began (the server validates late): a request error keeps its 400 meaning.
          if (parsed?.error) throw new RemoteError(`${this.host}: ${parsed.error.message ?? JSON.stringify(parsed.error)}`, parsed.error.type === 'invalid_request_error' ? 400 : undefined);
          onEvent(parsed);
        }
        if (buf.length > 1 << 20) throw new RemoteError(`${this.host} sent an event over 1 MB`);
      }
    } finally {
      clearTimeout(timer);
      sub?.dispose();
      this.live.delete(ac);
    }
  }

  private statusError(status: number, detail: string, retryAfter: string | null): RemoteError {
    const d = detail ? ` (${detail.replace(/\s+/g, ' ').slice(0, 160)})` : '';
    if (status === 401 || status === 403) return new RemoteError(`${this.host} refused the API key (${status}); set it with "Snout: Set remote API key…".`, status);
    if (status === 404) return new RemoteError(`${this.host} answered 404${d}: check snout.backend.url and snout.backend.model.`, status);
    if (status === 429) {
      const s = Number(retryAfter);
      return new RemoteError(`${this.host} is busy (429, too many requests).`, status, Number.isFinite(s) && s > 0 ? Math.min(300, s) * 1000 : undefined);
    }
    return new RemoteError(`${this.host} answered ${status}${d}.`, status);
  }

  private async run(path: string, body: Record<string, unknown>, token: CancelToken | undefined, onText: ((t: string) => void) | undefined, pick: (choice: any) => string | undefined): Promise<CompleteResult> {
    await this.start();
    const started = Date.now();
    let first = 0;
    let text = '';
    let pieces = 0;
    let finish: string | undefined;
    let usage: any;
    const stats = emptyStats();
    try {
      await this.request('POST', path, { ...body, model: this.served, stream: true, stream_options: { include_usage: true } }, token, (ev) => {
        if (ev.usage) usage = ev.usage;
        const choice = ev.choices?.[0];
        if (!choice) return;
        const t = pick(choice);
        if (t) {
          first ||= Date.now();
          text += t;
          pieces++;
          onText?.(t);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      });
    } catch (e) {
      if (e instanceof CancelledError) return { id: String(body.id ?? ''), text, finishReason: 'cancelled', stats };
      // A request the server rejects as such (400: too long, bad field) says nothing about the server's health.
      if (!(e instanceof RemoteError && (e.status === 400 || e.status === 413))) this.failed(e as Error);
      throw e;
    }
    this.failures = 0;
    stats.prefillMs = (first || Date.now()) - started;
    stats.decodeMs = first ? Date.now() - first : 0;
    stats.decodeTokens = usage?.completion_tokens ?? pieces;
    stats.promptTokens = usage?.prompt_tokens ?? 0;
    stats.cachedTokens = usage?.prompt_tokens_details?.cached_tokens ?? 0;
    return { id: String(body.id ?? ''), text, finishReason: finish === 'length' ? 'length' : 'stop', stats };
  }

  async complete(params: CompleteParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult> {
    const model = await this.start();
    const maxTokens = params.maxTokens ?? 64;
    const cpt = this.o.charsPerToken?.() ?? 3.5;
    const send = (prompt: string, truncated: number) => this.run('/v1/completions', {
      prompt, max_tokens: maxTokens, temperature: params.sampling?.temperature ?? 0, ...(params.sampling?.topP !== undefined ? { top_p: params.sampling.topP } : {}),
      ...(params.stop?.length ? { stop: params.stop.slice(0, 8) } : {}),
    }, token, onText, (c) => c.text).then((r) => ({ ...r, id: params.id, stats: { ...r.stats, truncatedTokens: truncated } }));
    if (params.prompt !== undefined) return send(params.prompt, 0);
    const render = (budgetChars: number) => {
      const r = renderRemotePrompt(promptFormat(this.format), { repoName: params.repoName, files: params.files, path: params.path, prefix: params.prefix ?? '', suffix: params.suffix },
        Math.max(256, Math.floor(budgetChars)), cpt);
      return { prompt: r.prompt, truncated: Math.ceil(r.truncatedChars / cpt) };
    };
    const budget = (model.contextLength - maxTokens) * cpt;
    const first = render(budget);
    try {
      return await send(first.prompt, first.truncated);
    } catch (e) {
      // The character budget rests on an estimate of characters per token; a server that finds the prompt too long
      // (400) gets it once more at 60% (the extension's estimator learns the real ratio from the servers' counts).
      if (!(e instanceof RemoteError && e.status === 400 && /token|context|length|long/i.test(e.message))) throw e;
      this.o.log(`remote backend: ${e.message}; sending a shorter prompt`);
      const second = render(budget * 0.6);
      return send(second.prompt, second.truncated);
    }
  }

  ask(params: AskParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult> {
    const context = repositoryContext(params.files ?? []);
    const messages = params.messages.map((m) => ({ role: m.role, content: m.content }));
    if (context) {
      const i = messages.findIndex((m) => m.role === 'user');
      if (i >= 0) messages[i] = { ...messages[i], content: context + messages[i].content };
      else messages.push({ role: 'user', content: context });
    }
    return this.run('/v1/chat/completions', {
      messages, max_tokens: params.maxTokens ?? 512, temperature: params.sampling?.temperature ?? 0,
    }, token, onText, (c) => c.delta?.content).then((r) => ({ ...r, id: params.id }));
  }

  async restart(): Promise<ModelInfo> {
    this.failures = 0;
    clearTimeout(this.probeTimer);
    for (const ac of this.live) ac.abort();
    this._model = undefined;
    this.setState('stopped');
    return this.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.probeTimer);
    for (const ac of this.live) ac.abort();
    this._model = undefined;
    this.setState('stopped');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.probeTimer);
    for (const ac of this.live) ac.abort();
    this.setState('stopped');
  }
}

class CancelledError extends Error {
  constructor() { super('cancelled'); }
}
