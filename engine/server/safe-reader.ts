// A JSON-RPC message reader for an untrusted byte stream. vscode-jsonrpc's own reader drops malformed input silently
// (or loses framing); this one answers every bad frame with a JSON-RPC error and keeps reading:
//   bad header / no Content-Length → -32700 and resync at the next "Content-Length:" (junk glued in front of a
//                                    header costs the junk only, never the frame after it)
//   body over the size limit       → -32600, skipped without buffering (the limit may move: the engine derives it
//                                    from the loaded model's context, see EngineService.maxRequestBytes)
//   body that is not JSON          → -32700
//   JSON that is not a request/notification/response (batches, bad id, params not an object) → -32600 / -32602
// Well-formed messages go to the connection, which answers unknown methods with -32601.
import { AbstractMessageReader, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc/node';

export type ErrorReply = (id: string | number | null, code: number, message: string) => void;

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = Buffer.from('Content-Length:');
const MAX_HEADER = 8 * 1024;

export class SafeMessageReader extends AbstractMessageReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Chunks of a body still arriving, joined once it is complete (joining per chunk is quadratic in the frame). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private bodyLength = -1;
  /** After an oversized frame: discard input until the next "Content-Length:" (a bogus length cannot wedge us). */
  private scanning = false;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly reply: ErrorReply,
    private readonly log: (message: string) => void,
    maxMessageBytes: number | (() => number) = 64 * 1024 * 1024,
  ) {
    super();
    this.limit = typeof maxMessageBytes === 'number' ? () => maxMessageBytes : maxMessageBytes;
  }

  private readonly limit: () => number;

  listen(callback: DataCallback): Disposable {
    const onData = (chunk: Buffer) => {
      try { this.onData(chunk, callback); } catch (e) { this.fireError(e); }
    };
    const onEnd = () => this.fireClose();
    this.input.on('data', onData);
    this.input.on('end', onEnd);
    this.input.on('close', onEnd);
    this.input.on('error', (e: Error) => { this.fireError(e); this.fireClose(); });
    return { dispose: () => { this.input.off('data', onData); this.input.off('end', onEnd); this.input.off('close', onEnd); } };
  }

  private onData(chunk: Buffer, callback: DataCallback): void {
    if (this.bodyLength >= 0 && !this.scanning) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.buf.length + this.pendingBytes < this.bodyLength) return;
      chunk = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.scanning) {
      const at = this.buf.indexOf(CONTENT_LENGTH);
      if (at < 0) {
        // Keep a tail that could be the start of a split header.
        this.buf = Buffer.from(this.buf.subarray(Math.max(0, this.buf.length - CONTENT_LENGTH.length)));
        return;
      }
      this.scanning = false;
      this.buf = this.buf.subarray(at);
    }
    for (;;) {
      if (this.bodyLength < 0) {
        const end = this.buf.indexOf(HEADER_END);
        if (end < 0) {
          if (this.buf.length > MAX_HEADER) this.resync('header too long or missing its blank line');
          return;
        }
        const header = this.buf.subarray(0, end).toString('ascii');
        const m = /^content-length:\s*(\d+)\s*$/im.exec(header);
        // Junk without a line break right before a real header ("xyzContent-Length: 5"): answer the junk, keep the frame.
        const glued = m ? -1 : this.buf.subarray(0, end).indexOf(CONTENT_LENGTH, 1);
        if (glued > 0) {
          this.reply(null, -32700, `Parse error: ${glued} bytes of junk before a message header`);
          this.buf = this.buf.subarray(glued);
          continue;
        }
        this.buf = this.buf.subarray(end + HEADER_END.length);
        if (!m) { this.reply(null, -32700, 'Parse error: message header has no valid Content-Length'); this.resyncToHeader(); continue; }
        const length = Number(m[1]);
        const limit = this.limit();
        if (length > limit) {
          this.reply(leadingId(this.buf), -32600, `Invalid Request: message of ${length} bytes exceeds the limit of ${limit}`);
          this.scanning = true;
          return this.onData(Buffer.alloc(0), callback);
        }
        this.bodyLength = length;
      }
      if (this.buf.length < this.bodyLength) return;
      const body = this.buf.subarray(0, this.bodyLength).toString('utf8');
      this.buf = this.buf.subarray(this.bodyLength);
      this.bodyLength = -1;
      this.deliver(body, callback);
    }
  }

  /** Drop bytes up to the next "Content-Length:" (a garbled stream recovers at the next real frame). */
  private resyncToHeader() {
    const at = this.buf.indexOf(CONTENT_LENGTH);
    this.buf = at >= 0 ? this.buf.subarray(at) : Buffer.alloc(0);
  }

  private resync(why: string) {
    this.reply(null, -32700, `Parse error: ${why}`);
    const at = this.buf.indexOf(CONTENT_LENGTH, 1);
    this.buf = at >= 0 ? this.buf.subarray(at) : Buffer.alloc(0);
  }

  private deliver(body: string, callback: DataCallback) {
    let msg: unknown;
    try { msg = JSON.parse(body); } catch (e) {
      this.reply(null, -32700, `Parse error: ${(e as Error).message}`);
      return;
    }
    const problem = check(msg);
    if (problem) {
      if (problem.reply) this.reply(problem.id, problem.code, problem.message);
      else this.log(`ignored notification: ${problem.message}`);
      return;
    }
    callback(msg as Message);
  }
}

/**
 * The id of a refused (unread) frame when its first bytes are already here and name it up front, as JSON-RPC writers
 * do ({"jsonrpc":"2.0","id":7,...}): the client's request then fails at once instead of waiting forever.
 */
function leadingId(body: Buffer): string | number | null {
  const m = /^\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,15}|"[^"\\]{0,256}")\s*,/.exec(body.subarray(0, 320).toString('utf8'));
  if (!m) return null;
  return m[1].startsWith('"') ? m[1].slice(1, -1) : Number(m[1]);
}

type Problem = { id: string | number | null; code: number; message: string; reply: boolean };

/** Why a parsed value is not a message the connection can handle (undefined when it is fine). */
function check(m: unknown): Problem | undefined {
  const bad = (message: string, id: string | number | null = null, code = -32600, reply = true): Problem => ({ id, code, message, reply });
  if (Array.isArray(m)) return bad('Invalid Request: batch requests are not supported');
  if (typeof m !== 'object' || m === null) return bad('Invalid Request: a message must be a JSON object');
  const o = m as Record<string, unknown>;
  const hasId = 'id' in o && o.id !== undefined;
  const idOk = typeof o.id === 'string' || (typeof o.id === 'number' && Number.isFinite(o.id));
  const id = idOk ? (o.id as string | number) : null;
  if (hasId && !idOk) return bad('Invalid Request: "id" must be a string or a number');
  if (o.jsonrpc !== '2.0') return bad('Invalid Request: "jsonrpc" must be "2.0"', id);
  if (typeof o.method !== 'string') {
    if (hasId && ('result' in o || 'error' in o)) return undefined; // a response (the engine sends no requests; harmless)
    return bad('Invalid Request: "method" must be a string', id);
  }
  if (o.method.length > 200) return bad('Invalid Request: method name too long', id);
  const p = o.params;
  if (p !== undefined && (typeof p !== 'object' || p === null || Array.isArray(p))) {
    return bad(`Invalid params: "params" of ${o.method} must be an object`, id, -32602, hasId);
  }
  if (!hasId && o.method === '$/cancelRequest') {
    const cid = (p as Record<string, unknown> | undefined)?.id;
    if (typeof cid !== 'string' && typeof cid !== 'number') return bad('$/cancelRequest needs params.id', null, -32602, false);
  }
  return undefined;
}
