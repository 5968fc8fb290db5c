// Downloading a model from a Hugging Face hub (or a mirror): list the repository, fetch the files Snout needs from the
// hub's `resolve` URLs with resume (HTTP Range), verify each LFS file against its sha256 (the ETag the hub gives), and
// publish the model folder only when every file is complete, so a half-downloaded model is never loaded.
// No vscode import: the command (command.ts) passes settings, the token and a progress callback; tests drive it with a
// loopback server.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { formatBytes } from './presets';

export type HubErrorKind = 'offline' | 'auth' | 'gated' | 'not-found' | 'rate-limited' | 'http' | 'checksum' | 'interrupted' | 'cancelled' | 'no-files';

export class HubError extends Error {
  constructor(readonly kind: HubErrorKind, message: string, readonly status?: number) { super(message); }
}

export interface HubOptions {
  /** The hub's address, e.g. https://huggingface.co or a mirror. */
  hubUrl: string;
  /** Hugging Face access token (gated or private repositories). Sent to the hub only, never to the CDN it redirects to. */
  token?: string;
  /** http.proxy (http://host:port); requests tunnel through it. */
  proxy?: string;
  /** http.proxyStrictSSL: false accepts the proxy's or mirror's self-signed certificate. */
  strictSSL?: boolean;
  signal?: AbortSignal;
  /** A connection silent this long counts as cut (default 30 s). */
  idleTimeoutMs?: number;
}

export interface HubFile {
  path: string;
  size: number;
  /** LFS sha256 from the listing (absent for small git files such as config.json). */
  sha256?: string;
}

export interface DownloadProgress {
  file: string;
  fileIndex: number;
  files: number;
  /** Bytes present so far over all files (resumed bytes included). */
  bytes: number;
  totalBytes: number;
  /** Download speed over the last few seconds. */
  bytesPerSecond: number;
  /** Seconds left at that speed; undefined until there is a speed. */
  etaSeconds: number | undefined;
}

const duration = (s: number) => (s < 90 ? `${Math.ceil(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

/** One line for the progress notification: file, bytes, speed, time left. */
export function progressLine(p: DownloadProgress): string {
  const speed = p.bytesPerSecond > 0 ? ` · ${formatBytes(p.bytesPerSecond)}/s` : '';
  const eta = p.etaSeconds !== undefined ? ` · ${duration(p.etaSeconds)} left` : '';
  return `${p.file} (${p.fileIndex + 1}/${p.files}) · ${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)}${speed}${eta}`;
}

const offlineCodes = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN']);
const sha256Re = /^[0-9a-f]{64}$/;
const isCancel = (o: HubOptions) => o.signal?.aborted === true;

/** "owner/name" (letters, digits, - _ .), the shape of every hub repository id. */
export function parseRepoId(input: string): string | undefined {
  const s = input.trim().replace(/^https?:\/\/[^/]+\//, '').replace(/\/(tree|blob|resolve)\/.*$/, '').replace(/\/+$/, '');
  return /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/.test(s) && !s.includes('..') ? s : undefined;
}

function agentFor(url: URL, o: HubOptions): http.Agent | undefined {
  if (!o.proxy) return undefined;
  const tls = o.strictSSL === false ? { rejectUnauthorized: false } : {};
  return url.protocol === 'https:' ? new HttpsProxyAgent(o.proxy, tls) : new HttpProxyAgent(o.proxy);
}

interface Response { res: http.IncomingMessage; url: URL; /** Headers of the hub's first answer (the redirect carries the LFS ETag). */ first: http.IncomingHttpHeaders }

/** GET with redirects followed by hand: the token goes to the hub's own origin only. */
function get(url: URL, o: HubOptions, headers: Record<string, string> = {}, redirects = 5, first?: http.IncomingHttpHeaders): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (isCancel(o)) { reject(new HubError('cancelled', 'download cancelled')); return; }
    const hub = new URL(o.hubUrl);
    const h: Record<string, string> = { 'user-agent': 'snout-vscode', ...headers };
    if (o.token && url.origin === hub.origin) h.authorization = `Bearer ${o.token}`;
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { headers: h, agent: agentFor(url, o), rejectUnauthorized: o.strictSSL !== false, signal: o.signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) { reject(new HubError('http', `too many redirects fetching ${url.pathname}`)); return; }
        get(new URL(res.headers.location, url), o, headers, redirects - 1, first ?? res.headers).then(resolve, reject);
        return;
      }
      resolve({ res, url, first: first ?? res.headers });
    });
    req.setTimeout(o.idleTimeoutMs ?? 30_000, () => req.destroy(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => reject(networkError(e, url, o)));
  });
}

function networkError(e: NodeJS.ErrnoException, url: URL, o: HubOptions): HubError {
  if (isCancel(o) || e.name === 'AbortError') return new HubError('cancelled', 'download cancelled');
  if (e.code && offlineCodes.has(e.code)) {
    return new HubError('offline', `cannot reach ${url.host} (${e.code}): you look offline. Check the connection${o.proxy ? ` and the proxy ${o.proxy}` : ' (VS Code\'s http.proxy is honoured)'}, or set snout.hub.url to a mirror you can reach.`);
  }
  return new HubError('interrupted', `connection to ${url.host} lost (${e.code ?? e.message})`);
}

async function readText(res: http.IncomingMessage, limit = 16 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) { res.destroy(); throw new HubError('http', `answer over ${limit} bytes`); }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function statusError(status: number, repo: string, o: HubOptions, what: string): HubError {
  if (status === 401) {
    return new HubError('auth', o.token
      ? `${repo}: the hub refused the Hugging Face token (401). Check it with "Snout: Set Hugging Face token…".`
      : `${repo} is gated or private (401): add a Hugging Face token with "Snout: Set Hugging Face token…" (the hub also answers 401 for a repository that does not exist).`, status);
  }
  if (status === 403) return new HubError('gated', `${repo} is gated (403): accept its terms at ${new URL(`/${repo}`, o.hubUrl)} with the account of your token.`, status);
  if (status === 404) return new HubError('not-found', `${repo}: ${what} not found on ${new URL(o.hubUrl).host} (404). Check the repository id.`, status);
  if (status === 429) return new HubError('rate-limited', `${new URL(o.hubUrl).host} is rate-limiting downloads (429); try again in a few minutes${o.token ? '' : ' or add a Hugging Face token'}.`, status);
  return new HubError('http', `${repo}: the hub answered ${status} for ${what}.`, status);
}

/** Every file of `repo` at `revision` with its size and LFS sha256 (`/api/models/{repo}/tree/{revision}`). */
export async function listRepoFiles(repo: string, o: HubOptions, revision = 'main'): Promise<HubFile[]> {
  const url = new URL(`/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`, o.hubUrl);
  const { res } = await get(url, o, { accept: 'application/json' });
  if (res.statusCode !== 200) { res.resume(); throw statusError(res.statusCode ?? 0, repo, o, 'repository'); }
  let entries: unknown;
  try { entries = JSON.parse(await readText(res)); } catch (e) {
    if (e instanceof HubError) throw e;
    throw new HubError('http', `${url.host} did not answer with a file list (is snout.hub.url a Hugging Face hub?)`);
  }
  if (!Array.isArray(entries)) throw new HubError('http', `${url.host} did not answer with a file list (is snout.hub.url a Hugging Face hub?)`);
  return entries.filter((e) => e?.type === 'file' && typeof e.path === 'string').map((e) => ({
    path: e.path as string,
    size: Number(e.lfs?.size ?? e.size ?? 0),
    sha256: typeof e.lfs?.oid === 'string' && sha256Re.test(e.lfs.oid) ? e.lfs.oid : undefined,
  }));
}

/**
 * The files Snout loads: for GGUF the one quantisation asked for (all its split parts), for safetensors the weights
 * with their index, config and tokenizer. Paths with '..' or absolute paths are never taken.
 */
export function selectFiles(files: HubFile[], format: 'gguf' | 'safetensors', quant?: string): HubFile[] {
  const safe = files.filter((f) => !f.path.split('/').includes('..') && !path.isAbsolute(f.path) && !f.path.includes('\\'));
  if (format === 'gguf') {
    const q = (quant ?? '').toLowerCase();
    const ggufs = safe.filter((f) => f.path.toLowerCase().endsWith('.gguf') && !f.path.includes('/'));
    return q ? ggufs.filter((f) => new RegExp(`[-_.]${q.replace(/[^a-z0-9_]/g, '')}([-.]|$)`).test(f.path.toLowerCase())) : ggufs.slice(0, 1);
  }
  const wanted = new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors.index.json']);
  return safe.filter((f) => !f.path.includes('/') && (wanted.has(f.path) || f.path.endsWith('.safetensors')));
}

export interface DownloadRequest extends HubOptions {
  repo: string;
  revision?: string;
  files: HubFile[];
  /** Global storage folder; models go to <storageDir>/models/<name>, in-progress ones to <storageDir>/models/.partial/<name>. */
  storageDir: string;
  /** Folder name for this model. */
  name: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Tries per file after a cut connection, each resuming where the last stopped (default 3). */
  retries?: number;
  retryDelayMs?: number;
}

export const modelsDir = (storageDir: string) => path.join(storageDir, 'models');
export const partialDir = (storageDir: string, name: string) => path.join(storageDir, 'models', '.partial', name);

const safeName = (name: string) => {
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) throw new Error(`bad model folder name ${JSON.stringify(name)}`);
  return name;
};

/** What to load from a finished download folder: the (first) .gguf file if any, else the folder. */
export async function loadablePath(dir: string): Promise<string> {
  const entries = (await fs.readdir(dir)).filter((f) => f.toLowerCase().endsWith('.gguf')).sort();
  return entries.length ? path.join(dir, entries[0]) : dir;
}

class Speed {
  private samples: [number, number][] = [];
  add(bytes: number, now = Date.now()): void {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
  }
  get bytesPerSecond(): number {
    if (this.samples.length < 2) return 0;
    const [t0] = this.samples[0];
    const [t1] = this.samples[this.samples.length - 1];
    const bytes = this.samples.slice(1).reduce((s, [, b]) => s + b, 0);
    return t1 > t0 ? (1000 * bytes) / (t1 - t0) : 0;
  }
}

/**
 * Downloads `files` of `repo` and returns the loadable path (the folder, or its .gguf file). Parts live in the
 * partial folder and survive an interruption (the next call resumes them); cancelling removes them; a checksum
 * mismatch removes that file's part. The finished folder appears in one rename.
 */
export async function downloadModel(r: DownloadRequest): Promise<string> {
  if (!r.files.length) throw new HubError('no-files', `${r.repo}: nothing to download`);
  const name = safeName(r.name);
  const partial = partialDir(r.storageDir, name);
  const final = path.join(modelsDir(r.storageDir), name);
  await fs.mkdir(partial, { recursive: true });
  const totalBytes = r.files.reduce((s, f) => s + f.size, 0);
  const done: number[] = r.files.map(() => 0);
  const speed = new Speed();
  let lastEmit = 0;
  const emit = (i: number, force = false) => {
    const now = Date.now();
    if (!force && now - lastEmit < 100) return;
    lastEmit = now;
    const bytes = done.reduce((a, b) => a + b, 0);
    const bps = speed.bytesPerSecond;
    r.onProgress?.({ file: r.files[i].path, fileIndex: i, files: r.files.length, bytes, totalBytes, bytesPerSecond: bps, etaSeconds: bps > 0 ? (totalBytes - bytes) / bps : undefined });
  };
  try {
    for (let i = 0; i < r.files.length; i++) {
      const f = r.files[i];
      for (let attempt = 0; ; attempt++) {
        try {
          await downloadFile(r, f, partial, (have) => { done[i] = have; emit(i); }, (n) => speed.add(n));
          done[i] = f.size;
          emit(i, true);
          break;
        } catch (e) {
          if (!(e instanceof HubError) || e.kind !== 'interrupted' || attempt >= (r.retries ?? 3)) throw e;
          await new Promise((res) => setTimeout(res, (r.retryDelayMs ?? 1000) * 2 ** attempt));
          if (isCancel(r)) throw new HubError('cancelled', 'download cancelled');
        }
      }
    }
    await fs.rm(final, { recursive: true, force: true });
    await fs.rename(partial, final);
    return await loadablePath(final);
  } catch (e) {
    if (isCancel(r) || (e instanceof HubError && e.kind === 'cancelled')) {
      // Cancelled on purpose: nothing is left behind (an interruption keeps the parts for resuming).
      await fs.rm(partial, { recursive: true, force: true });
      throw new HubError('cancelled', 'download cancelled');
    }
    if (e instanceof HubError && e.kind === 'interrupted') {
      throw new HubError('interrupted', `${e.message}; the download stopped at ${done.reduce((a, b) => a + b, 0)} of ${totalBytes} bytes and resumes from there when you run it again.`);
    }
    throw e;
  }
}

async function hashFile(file: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const c of createReadStream(file)) hash.update(c as Buffer);
}

async function downloadFile(r: DownloadRequest, f: HubFile, dir: string, onBytes: (have: number) => void, onNew: (n: number) => void): Promise<void> {
  const target = path.join(dir, f.path);
  const part = `${target}.part`;
  if (await fs.stat(target).then((s) => s.size === f.size, () => false)) { onBytes(f.size); return; }
  let have = await fs.stat(part).then((s) => s.size, () => 0);
  if (have > f.size) { await fs.rm(part, { force: true }); have = 0; }
  const url = new URL(`/${r.repo}/resolve/${encodeURIComponent(r.revision ?? 'main')}/${f.path.split('/').map(encodeURIComponent).join('/')}`, r.hubUrl);
  const { res, first } = await get(url, r, have > 0 ? { range: `bytes=${have}-` } : {});
  const status = res.statusCode ?? 0;
  // The hub's LFS ETag is the file's sha256 (on the redirect to the CDN: X-Linked-Etag).
  const etag = String(first['x-linked-etag'] ?? first.etag ?? '').replace(/^W\//, '').replace(/"/g, '');
  const expected = sha256Re.test(etag) ? etag : f.sha256;
  if (status === 416 && have === f.size) res.resume();
  else if (status === 206) {
    const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== have) { res.destroy(); await fs.rm(part, { force: true }); throw new HubError('interrupted', `${f.path}: the server resumed at the wrong offset`); }
  } else if (status === 200) {
    have = 0; // the server ignored the Range header: start over
  } else {
    res.resume();
    throw statusError(status, r.repo, r, f.path);
  }
  await fs.mkdir(path.dirname(part), { recursive: true });
  const hash = createHash('sha256');
  if (have > 0) await hashFile(part, hash);
  onBytes(have);
  if (status !== 416) {
    const out = createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
    try {
      await new Promise<void>((resolve, reject) => {
        let failed = false;
        const fail = (e: Error) => { if (!failed) { failed = true; res.destroy(); reject(e); } };
        res.on('data', (c: Buffer) => {
          have += c.length;
          if (have > f.size) { fail(new HubError('checksum', `${f.path}: the server sent more than the listed ${f.size} bytes`)); return; }
          hash.update(c);
          onNew(c.length);
          onBytes(have);
          if (!out.write(c)) { res.pause(); out.once('drain', () => res.resume()); }
        });
        res.on('aborted', () => fail(new HubError('interrupted', `connection to ${url.host} lost in ${f.path}`)));
        res.on('error', (e: NodeJS.ErrnoException) => fail(networkError(e, url, r)));
        res.on('end', () => { if (!failed) resolve(); });
        out.on('error', fail);
      });
    } catch (e) {
      await new Promise<void>((resolve) => out.end(resolve));
      if (e instanceof HubError && e.kind === 'checksum') await fs.rm(part, { force: true });
      throw e;
    }
    await new Promise<void>((resolve) => out.end(resolve));
  }
  if (have < f.size) throw new HubError('interrupted', `connection to ${url.host} ended early in ${f.path} (${have} of ${f.size} bytes)`);
  if (expected) {
    const got = hash.digest('hex');
    if (got !== expected) {
      await fs.rm(part, { force: true });
      throw new HubError('checksum', `${f.path}: sha256 ${got.slice(0, 12)}… does not match the hub's ${expected.slice(0, 12)}…; the file was deleted, run the download again.`);
    }
  }
  await fs.rename(part, target);
}
