// Opt-in local HTTP: OpenAI-compatible /v1/completions and /v1/chat/completions (JSON or SSE streaming) over the same
// EngineService. Loopback only, and every request needs the bearer token — any local process or web page could
// otherwise drive the model. No CORS headers are sent, so browsers cannot read responses cross-origin; a Host or
// Origin that is not loopback is refused (DNS rebinding: a web page whose name resolves to 127.0.0.1 is still
// another origin), and replies never carry the model's absolute path.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { ErrorCodes, type ChatMessage, type CompleteResult, type RepoFile } from '../protocol';
import { EngineService, ServiceError } from './service';
import { askParams, completeParams, ParamError } from './validate';

/** Largest request body: what the loaded model's context can use, as for stdio frames (SNOUT_MAX_MESSAGE_BYTES can only lower it). */
const ENV_MAX_BODY = Number(process.env.SNOUT_MAX_MESSAGE_BYTES) || Infinity;

/** Host names/addresses that stay on this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export const newToken = () => randomBytes(24).toString('base64url');

/** The host part of a Host header ("127.0.0.1:8080", "[::1]:8080", "localhost"). */
function hostOf(header: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(header.trim());
  return m ? m[1] : '';
}

/** Host must name this machine; Origin, when a browser sends one, must be a loopback http(s) origin. */
export function trustedOrigin(req: http.IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host || !isLoopback(hostOf(host))) return `Host ${JSON.stringify(host ?? '')} is not a loopback address`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let ok = false;
    try {
      const u = new URL(origin);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && isLoopback(u.hostname);
    } catch { /* not a URL */ }
    if (!ok) return `Origin ${JSON.stringify(origin)} is not a loopback origin`;
  }
  if (origin === 'null') return 'Origin "null" (a sandboxed or file: page) is refused';
  return undefined;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error') { super(message); }
}

function statusOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ParamError) return new HttpError(400, e.message);
  if (e instanceof ServiceError) {
    const s = e.code === ErrorCodes.Overloaded ? 429 : e.code === ErrorCodes.ModelNotLoaded || e.code === ErrorCodes.Loading ? 503
      : e.code === ErrorCodes.PromptTooLong || e.code === -32602 ? 400 : 500;
    return new HttpError(s, e.message, s >= 500 ? 'server_error' : 'invalid_request_error');
  }
  return new HttpError(500, `internal error: ${(e as Error)?.message ?? e}`, 'server_error');
}

function readBody(req: http.IncomingMessage, maxBody: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) { reject(new HttpError(413, `request body of ${declared} bytes is over the limit of ${maxBody}`)); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        // Answer 413 at once; the rest is read and dropped (not buffered) so the client gets to read the reply.
        req.off('data', onData);
        req.resume();
        chunks.length = 0;
        reject(new HttpError(413, `request body over the limit of ${maxBody} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (size > maxBody) return;
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) { reject(new HttpError(400, `body is not valid JSON: ${(e as Error).message}`)); }
    });
    req.on('error', reject);
  });
}

const finish = (r: CompleteResult['finishReason']) => (r === 'length' ? 'length' : 'stop');
const arrOrOne = (v: unknown) => (typeof v === 'string' ? [v] : v);

export interface HttpOptions {
  host: string;
  port: number;
  token: string;
  /** What /v1/models and replies call the model: a name, never a path. */
  modelName: string;
}

export function serveHttp(service: EngineService, o: HttpOptions): Promise<http.Server> {
  if (!isLoopback(o.host)) throw new Error(`refusing to listen on ${o.host}: the HTTP server binds to loopback only (127.0.0.1, ::1, localhost)`);
  if (!o.token.trim()) throw new Error('refusing an empty bearer token: nobody could authenticate');
  const expected = Buffer.from(`Bearer ${o.token}`);
  const authorized = (req: http.IncomingMessage) => {
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  let counter = 0;

  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      if (res.headersSent) { res.end(); return; }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const fail = (e: unknown) => {
      const h = statusOf(e);
      // A body that was refused unread: close the connection after the reply rather than read on.
      if (h.status === 413) res.setHeader('connection', 'close');
      if (res.headersSent) {
        res.write(`data: ${JSON.stringify({ error: { message: h.message, type: h.type } })}\n\n`);
        res.end();
      } else send(h.status, { error: { message: h.message, type: h.type } });
    };
    try {
      const untrusted = trustedOrigin(req);
      if (untrusted) throw new HttpError(403, `${untrusted}; this server answers loopback clients only`, 'permission_error');
      if (!authorized(req)) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new HttpError(401, 'missing or wrong bearer token (Authorization: Bearer <token>)', 'authentication_error');
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && url.pathname === '/v1/models') {
        // max_model_len as vLLM reports it; prompt_format tells a remote client which FIM layout to render.
        const info = service.status().model;
        send(200, { object: 'list', data: [{ id: o.modelName, object: 'model', owned_by: 'snout', ...(info ? { max_model_len: info.contextLength, prompt_format: info.promptFormat } : {}) }] });
        return;
      }
      if (req.method !== 'POST' || !['/v1/completions', '/v1/chat/completions'].includes(url.pathname)) throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
      const body = await readBody(req, Math.min(ENV_MAX_BODY, service.maxRequestBytes()));
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
      const b = body as Record<string, unknown>;
      const chat = url.pathname === '/v1/chat/completions';
      const id = `${chat ? 'chatcmpl' : 'cmpl'}-${Date.now().toString(36)}${(counter++).toString(36)}`;
      const created = Math.floor(Date.now() / 1000);
      const stream = b.stream === true;
      const abort = new AbortController();
      res.on('close', () => { if (!res.writableFinished) abort.abort(); });
      const sampling = { temperature: b.temperature ?? 0, topP: b.top_p, seed: b.seed };
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        if (chat) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: o.modelName, choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] })}\n\n`);
      }
      const onText = stream ? (text: string) => {
        const choice = chat ? { index: 0, delta: { content: text }, finish_reason: null } : { index: 0, text, finish_reason: null };
        res.write(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created, model: o.modelName, choices: [choice] })}\n\n`);
      } : undefined;

      let r: CompleteResult;
      if (chat) {
        const p = askParams({ id, messages: b.messages as ChatMessage[], files: b.files as RepoFile[], maxTokens: b.max_tokens ?? b.max_completion_tokens, sampling });
        r = await service.ask(p, { signal: abort.signal, onText });
      } else {
        const prompts = arrOrOne(b.prompt);
        if (!Array.isArray(prompts) || prompts.length !== 1) throw new HttpError(400, 'prompt must be a string (or an array of one string)');
        // An OpenAI `suffix`, or Snout's `files`/`path`, makes it a structured (FIM / repository) request.
        const structured = b.suffix !== undefined || b.files !== undefined || b.path !== undefined;
        const p = completeParams({
          id, maxTokens: b.max_tokens ?? 64, stop: arrOrOne(b.stop), sampling,
          ...(structured ? { prefix: prompts[0], suffix: b.suffix, files: b.files, path: b.path, repoName: b.repo_name } : { prompt: prompts[0] }),
        });
        r = await service.complete(p, { signal: abort.signal, onText });
      }
      const usage = {
        prompt_tokens: r.stats.promptTokens, completion_tokens: r.stats.decodeTokens, total_tokens: r.stats.promptTokens + r.stats.decodeTokens,
        prompt_tokens_details: { cached_tokens: r.stats.cachedTokens },
      };
      if (stream) {
        const choice = chat ? { index: 0, delta: {}, finish_reason: finish(r.finishReason) } : { index: 0, text: '', finish_reason: finish(r.finishReason) };
        res.write(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created, model: o.modelName, choices: [choice], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
      } else if (chat) {
        send(200, { id, object: 'chat.completion', created, model: o.modelName, choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finish(r.finishReason) }], usage });
      } else {
        send(200, { id, object: 'text_completion', created, model: o.modelName, choices: [{ index: 0, text: r.text, finish_reason: finish(r.finishReason), logprobs: null }], usage });
      }
    } catch (e) {
      fail(e);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host.replace(/^\[|\]$/g, ''), () => resolve(server));
  });
}
