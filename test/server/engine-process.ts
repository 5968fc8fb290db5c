// A real engine process for tests, spoken to through raw JSON-RPC frames (an independent reading of the protocol:
// nothing here shares code with the engine's reader). Spawns the built bundle dist/engine.js.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
export const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
export const modelDir = (name: string) => path.join(sharedDir, 'models', name);

export type Msg = { jsonrpc: '2.0'; id?: number | string | null; method?: string; params?: any; result?: any; error?: { code: number; message: string } };

export function frame(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`Content-Length: ${b.length}\r\n\r\n`, 'ascii'), b]);
}

export class EngineProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly received: Msg[] = [];
  stderr = '';
  exited: Promise<number | null>;
  private buf = Buffer.alloc(0);
  private listeners: (() => void)[] = [];
  private nextId = 1;

  constructor(args: string[] = [], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [path.join(repoRoot, 'dist/engine.js'), ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (c: Buffer) => this.onData(c));
    this.child.stderr.on('data', (c: Buffer) => { this.stderr += c.toString(); if (this.stderr.length > 1e6) this.stderr = this.stderr.slice(-5e5); });
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => { resolve(code); this.wake(); }));
  }

  private onData(c: Buffer) {
    this.buf = Buffer.concat([this.buf, c]);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /Content-Length: (\d+)/i.exec(this.buf.subarray(0, end).toString('ascii'));
      if (!m) throw new Error(`engine wrote a frame without Content-Length: ${this.buf.subarray(0, 200)}`);
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      this.received.push(JSON.parse(this.buf.subarray(end + 4, end + 4 + len).toString('utf8')));
      this.buf = this.buf.subarray(end + 4 + len);
      this.wake();
    }
  }

  private wake() {
    const l = this.listeners;
    this.listeners = [];
    for (const f of l) f();
  }

  /** Waits until `pred` holds over the received messages (rechecked on every message). */
  async waitFor<T>(pred: () => T | undefined, timeoutMs = 30000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v !== undefined && v !== false) return v;
      if (this.child.exitCode !== null) throw new Error(`engine exited (${this.child.exitCode}) while waiting for ${what}; stderr:\n${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.listeners.push(() => { clearTimeout(t); r(); }); });
    }
  }

  writeRaw(bytes: Buffer | string) {
    this.child.stdin.write(bytes);
  }

  send(msg: object) {
    this.writeRaw(frame(JSON.stringify(msg)));
  }

  notify(method: string, params?: unknown) {
    this.send({ jsonrpc: '2.0', method, params });
  }

  /** Sends a request; returns its id and a promise of its response message. */
  request(method: string, params?: unknown, timeoutMs = 60000): { id: number; response: Promise<Msg> } {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, params });
    return { id, response: this.waitFor(() => this.responseTo(id), timeoutMs, `response to ${method} #${id}`) };
  }

  async call(method: string, params?: unknown, timeoutMs = 60000): Promise<any> {
    const r = await this.request(method, params, timeoutMs).response;
    if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
    return r.result;
  }

  responseTo(id: number | string): Msg | undefined {
    return this.received.find((m) => m.id === id && m.method === undefined);
  }

  tokens(id: string): string {
    return this.received.filter((m) => m.method === 'snout/token' && m.params.id === id).map((m) => m.params.text).join('');
  }

  cancel(id: number) {
    this.notify('$/cancelRequest', { id });
  }

  async close() {
    if (this.child.exitCode === null) {
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
  }
}
