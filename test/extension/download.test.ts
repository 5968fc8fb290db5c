// Model download against a loopback server that imitates the Hugging Face hub: a tree listing with LFS sha256s,
// `resolve` URLs that redirect to a CDN on another origin with the sha256 as X-Linked-Etag, Range requests, a 404
// repository, a 401 gated one, a connection cut halfway, a corrupted file, a slow file to cancel, and a proxy.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import {
  downloadModel, HubError, listRepoFiles, parseRepoId, partialDir, progressLine, selectFiles, type DownloadProgress, type HubFile,
} from '../../extension/download/hub';
import { presetsFor, ramNeeded } from '../../extension/download/presets';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const weights = randomBytes(3 << 20);
const gguf = randomBytes(1 << 20);
const repoFiles: Record<string, Record<string, Buffer>> = {
  'org/model': {
    'config.json': Buffer.from('{"model_type":"qwen2"}'),
    'tokenizer.json': Buffer.from('{"model":{}}'),
    'model.safetensors': weights,
    'README.md': Buffer.from('# model'),
    'onnx/model.onnx': randomBytes(100),
  },
  'org/gated': { 'config.json': Buffer.from('{}'), 'tokenizer.json': Buffer.from('{}'), 'model.safetensors': randomBytes(1000) },
  'org/gguf': {
    'model-q4_k_m.gguf': randomBytes(1000),
    'model-q8_0.gguf': gguf,
    'model-fp16-00001-of-00002.gguf': randomBytes(10),
    'model-fp16-00002-of-00002.gguf': randomBytes(10),
  },
};
const isLfs = (name: string) => /\.(safetensors|gguf|onnx)$/.test(name);

/** Per-test behaviour of the CDN. */
const cdn = {
  cutOnce: new Set<string>(), // files whose next full answer is cut halfway
  corrupt: new Set<string>(), // files served with one byte flipped
  slow: new Set<string>(), // files trickled out slowly
  ignoreRange: false,
  requests: [] as { path: string; range?: string; auth?: string }[],
};
let hubRequests: { path: string; auth?: string }[] = [];
let hub: http.Server;
let cdnServer: http.Server;
let hubUrl = '';
let cdnUrl = '';
let tmp = '';

const listen = (s: http.Server) => new Promise<string>((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as net.AddressInfo).port}`)));

before(async () => {
  cdnServer = http.createServer((req, res) => {
    const [repoA, repoB, ...rest] = decodeURIComponent(new URL(req.url!, 'http://x').pathname).split('/').slice(1);
    const repo = `${repoA}/${repoB}`;
    const name = rest.join('/');
    cdn.requests.push({ path: `${repo}/${name}`, range: req.headers.range, auth: req.headers.authorization });
    let body = repoFiles[repo]?.[name];
    if (!body) { res.writeHead(404).end(); return; }
    if (cdn.corrupt.has(name)) { body = Buffer.from(body); body[body.length >> 1] ^= 0xff; }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !cdn.ignoreRange) {
      start = Number(m[1]);
      if (start >= body.length) { res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end(); return; }
      res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const rest_ = body.subarray(start);
    if (cdn.cutOnce.has(name) && start === 0) {
      cdn.cutOnce.delete(name);
      res.write(rest_.subarray(0, rest_.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (cdn.slow.has(name)) {
      let at = 0;
      const t = setInterval(() => {
        if (res.destroyed) { clearInterval(t); return; }
        res.write(rest_.subarray(at, at + 4096));
        at += 4096;
        if (at >= rest_.length) { clearInterval(t); res.end(); }
      }, 5);
      res.on('close', () => clearInterval(t));
      return;
    }
    res.end(rest_);
  });
  cdnUrl = await listen(cdnServer);
  hub = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    hubRequests.push({ path: url.pathname, auth: req.headers.authorization });
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
    const repo = tree?.[1] ?? resolve?.[1];
    if (!repo || !repoFiles[repo]) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}'); return; }
    if (repo === 'org/gated' && req.headers.authorization !== 'Bearer hf_good') { res.writeHead(401).end('{"error":"gated"}'); return; }
    const files = repoFiles[repo];
    if (tree) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.entries(files).map(([p, b]) => ({
        type: 'file', path: p, size: b.length, oid: 'deadbeef', ...(isLfs(p) ? { lfs: { oid: sha(b), size: b.length, pointerSize: 130 } } : {}),
      })).concat([{ type: 'directory', path: 'onnx', size: 0, oid: 'x' } as any])));
      return;
    }
    const name = decodeURIComponent(resolve![2]);
    const body = files[name];
    if (!body) { res.writeHead(404).end('{"error":"Entry not found"}'); return; }
    if (isLfs(name)) {
      // Like the hub: LFS files redirect to the CDN; the redirect carries the sha256 as X-Linked-Etag.
      res.writeHead(302, { location: `${cdnUrl}/${repo}/${encodeURIComponent(name)}`, 'x-linked-etag': `"${sha(body)}"`, 'x-linked-size': body.length, etag: '"gitoid"' }).end();
      return;
    }
    res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef01234567"', 'content-length': body.length }).end(body);
  });
  hubUrl = await listen(hub);
});

after(() => { hub.close(); cdnServer.close(); hub.closeAllConnections(); cdnServer.closeAllConnections(); });

beforeEach(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-dl-'));
  cdn.cutOnce.clear(); cdn.corrupt.clear(); cdn.slow.clear(); cdn.ignoreRange = false; cdn.requests = [];
  hubRequests = [];
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const want = async (repo: string, token?: string) => selectFiles(await listRepoFiles(repo, { hubUrl, token }), 'safetensors');

test('lists the repository and downloads the files Snout loads, with progress, into a folder that appears when complete', async () => {
  const files = await want('org/model');
  assert.deepEqual(files.map((f) => f.path).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
  assert.equal(files.find((f) => f.path === 'model.safetensors')!.sha256, sha(weights));
  const events: DownloadProgress[] = [];
  const out = await downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', onProgress: (p) => events.push(p) });
  assert.equal(out, path.join(tmp, 'models', 'm'));
  for (const f of files) assert.deepEqual(readFileSync(path.join(out, f.path)), repoFiles['org/model'][f.path]);
  assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']); // no .part left
  assert.ok(!existsSync(partialDir(tmp, 'm')));
  const total = files.reduce((s, f) => s + f.size, 0);
  assert.ok(events.length >= 3);
  assert.ok(events.every((e, i) => e.totalBytes === total && (i === 0 || e.bytes >= events[i - 1].bytes)), 'bytes only grow');
  assert.equal(events.at(-1)!.bytes, total);
  assert.deepEqual([...new Set(events.map((e) => e.file))], files.map((f) => f.path));
  // Speed and time left once bytes have flowed for a while; the notification line carries them.
  const late = events.filter((e) => e.file === 'model.safetensors' && e.bytesPerSecond > 0);
  assert.ok(late.length > 0, 'a speed was measured');
  assert.ok(late.every((e) => e.etaSeconds !== undefined && Math.abs(e.etaSeconds - (e.totalBytes - e.bytes) / e.bytesPerSecond) < 1e-6));
  assert.equal(progressLine({ file: 'model.safetensors', fileIndex: 2, files: 3, bytes: 1.5e9, totalBytes: 3.1e9, bytesPerSecond: 12.3e6, etaSeconds: 130 }),
    'model.safetensors (3/3) · 1.5 GB of 3.1 GB · 12 MB/s · 2 min left');
  // The LFS file came from the CDN (another origin) after the hub's redirect.
  assert.deepEqual(cdn.requests.map((r) => r.path), ['org/model/model.safetensors']);
});

test('a connection cut halfway is resumed with a Range request and the result verifies', async () => {
  const files = await want('org/model');
  cdn.cutOnce.add('model.safetensors');
  const out = await downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', retryDelayMs: 10 });
  assert.deepEqual(readFileSync(path.join(out, 'model.safetensors')), weights);
  assert.equal(cdn.requests.length, 2);
  assert.equal(cdn.requests[0].range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn.requests[1].range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt < weights.length, `resumed at ${cdn.requests[1].range}`);
});

test('without retries the interruption is reported, the part is kept, and the next run resumes from it', async () => {
  const files = await want('org/model');
  cdn.cutOnce.add('model.safetensors');
  await assert.rejects(downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', retries: 0 }),
    (e: HubError) => e.kind === 'interrupted' && /resumes from there/.test(e.message));
  const part = path.join(partialDir(tmp, 'm'), 'model.safetensors.part');
  const kept = statSync(part).size;
  assert.ok(kept > 0 && kept < weights.length);
  assert.ok(!existsSync(path.join(tmp, 'models', 'm')), 'a half-downloaded model is never published');
  const events: DownloadProgress[] = [];
  const out = await downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', onProgress: (p) => events.push(p) });
  assert.equal(cdn.requests.at(-1)!.range, `bytes=${kept}-`);
  assert.deepEqual(readFileSync(path.join(out, 'model.safetensors')), weights);
  // config.json and tokenizer.json were complete already: not fetched again.
  assert.equal(hubRequests.filter((r) => r.path.endsWith('config.json') && r.path.includes('resolve')).length, 1);
  assert.ok(events.some((e) => e.file === 'model.safetensors' && e.bytes >= kept));
});

test('a server that ignores Range restarts the file from zero and still verifies', async () => {
  const files = await want('org/model');
  cdn.cutOnce.add('model.safetensors');
  await assert.rejects(downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', retries: 0 }));
  cdn.ignoreRange = true;
  const out = await downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm' });
  assert.deepEqual(readFileSync(path.join(out, 'model.safetensors')), weights);
});

test('a checksum mismatch deletes the part file and publishes nothing', async () => {
  const files = await want('org/model');
  cdn.corrupt.add('model.safetensors');
  await assert.rejects(downloadModel({ hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm' }),
    (e: HubError) => e.kind === 'checksum' && /model\.safetensors: sha256 .* does not match/.test(e.message));
  assert.ok(!existsSync(path.join(partialDir(tmp, 'm'), 'model.safetensors.part')));
  assert.ok(!existsSync(path.join(partialDir(tmp, 'm'), 'model.safetensors')));
  assert.ok(!existsSync(path.join(tmp, 'models', 'm')));
});

test('404 repository and 401 gated repository give clear messages; the token opens it and never goes to the CDN', async () => {
  await assert.rejects(listRepoFiles('org/missing', { hubUrl }), (e: HubError) => e.kind === 'not-found' && /org\/missing.*not found.*404/.test(e.message));
  await assert.rejects(listRepoFiles('org/gated', { hubUrl }), (e: HubError) => e.kind === 'auth' && /gated or private.*Hugging Face token/.test(e.message));
  await assert.rejects(listRepoFiles('org/gated', { hubUrl, token: 'hf_bad' }), (e: HubError) => e.kind === 'auth' && /refused the Hugging Face token/.test(e.message));
  hubRequests = [];
  const files = await want('org/gated', 'hf_good');
  const out = await downloadModel({ hubUrl, token: 'hf_good', repo: 'org/gated', files, storageDir: tmp, name: 'g' });
  assert.deepEqual(readFileSync(path.join(out, 'model.safetensors')), repoFiles['org/gated']['model.safetensors']);
  assert.ok(hubRequests.every((r) => r.auth === 'Bearer hf_good'));
  assert.ok(cdn.requests.length > 0 && cdn.requests.every((r) => r.auth === undefined), 'the token stays with the hub');
});

test('cancel stops the transfer and leaves nothing behind', async () => {
  const files = await want('org/model');
  cdn.slow.add('model.safetensors');
  const ac = new AbortController();
  const p = downloadModel({
    hubUrl, repo: 'org/model', files, storageDir: tmp, name: 'm', signal: ac.signal,
    onProgress: (e) => { if (e.file === 'model.safetensors' && e.bytes > 100_000) ac.abort(); },
  });
  await assert.rejects(p, (e: HubError) => e.kind === 'cancelled');
  assert.ok(!existsSync(partialDir(tmp, 'm')));
  assert.ok(!existsSync(path.join(tmp, 'models', 'm')));
});

test('offline: an unreachable hub gives one clear line', async () => {
  const closed = http.createServer();
  const url = await listen(closed);
  closed.close();
  await assert.rejects(listRepoFiles('org/model', { hubUrl: url }), (e: HubError) => e.kind === 'offline' && /cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\).*offline.*snout\.hub\.url/.test(e.message));
});

test('requests go through the configured proxy', async () => {
  const seen: string[] = [];
  // A forward proxy for plain http: absolute-URI requests are replayed to their target.
  const proxy = http.createServer((req, res) => {
    seen.push(req.url!);
    const up = http.request(req.url!, { method: req.method, headers: req.headers }, (r) => { res.writeHead(r.statusCode!, r.headers); r.pipe(res); });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const proxyUrl = await listen(proxy);
  try {
    const files = selectFiles(await listRepoFiles('org/model', { hubUrl, proxy: proxyUrl }), 'safetensors');
    await downloadModel({ hubUrl, proxy: proxyUrl, repo: 'org/model', files, storageDir: tmp, name: 'm' });
    assert.ok(seen.some((u) => u.startsWith(`${hubUrl}/api/models/org/model/tree/main`)));
    assert.ok(seen.includes(`${cdnUrl}/org/model/model.safetensors`));
  } finally {
    proxy.close();
    proxy.closeAllConnections();
  }
});

test('GGUF: the quantisation asked for, split parts together; repository ids are checked', async () => {
  const files = await listRepoFiles('org/gguf', { hubUrl });
  assert.deepEqual(selectFiles(files, 'gguf', 'q8_0').map((f) => f.path), ['model-q8_0.gguf']);
  assert.deepEqual(selectFiles(files, 'gguf', 'q4_k_m').map((f) => f.path), ['model-q4_k_m.gguf']);
  assert.deepEqual(selectFiles(files, 'gguf', 'fp16').map((f) => f.path), ['model-fp16-00001-of-00002.gguf', 'model-fp16-00002-of-00002.gguf']);
  const out = await downloadModel({ hubUrl, repo: 'org/gguf', files: selectFiles(files, 'gguf', 'q8_0'), storageDir: tmp, name: 'q' });
  assert.equal(out, path.join(tmp, 'models', 'q', 'model-q8_0.gguf'), 'the .gguf file is what snout.modelPath gets');
  assert.deepEqual(readFileSync(out), gguf);
  const evil: HubFile[] = [{ path: '../x.safetensors', size: 1 }, { path: '/etc/config.json', size: 1 }, { path: 'ok.safetensors', size: 1 }];
  assert.deepEqual(selectFiles(evil, 'safetensors').map((f) => f.path), ['ok.safetensors']);
  assert.equal(parseRepoId('Qwen/Qwen2.5-Coder-1.5B'), 'Qwen/Qwen2.5-Coder-1.5B');
  assert.equal(parseRepoId('https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B/tree/main'), 'Qwen/Qwen2.5-Coder-1.5B');
  for (const bad of ['Qwen', 'a/b/c', '../x', 'a/..', 'a b/c']) assert.equal(parseRepoId(bad), undefined, bad);
});

test('presets are sized for the machine', () => {
  // Qwen2.5-Coder-1.5B Q8_0: 1.54B weights × 1.125 bytes × 1.3 (the process around them) + 28 layers × 2 KV heads × 128 × K and V × 4 bytes × 32K tokens.
  assert.equal(Math.round(ramNeeded({ params: 1.54e9, layers: 28, kvHeads: 2, headDim: 128 }, 'gguf-q8_0') / 1e6), Math.round((1.54e9 * 1.125 * 1.3 + 28 * 2 * 128 * 2 * 4 * 32768) / 1e6));
  const small = presetsFor(8e9);
  assert.equal(small.find((p) => p.recommended)!.preset.id, 'qwen2.5-coder-1_5b-q8_0');
  assert.ok(small.filter((p) => p.preset.params > 3e9).every((p) => !p.fits));
  const big = presetsFor(64e9);
  assert.equal(big.find((p) => p.recommended)!.preset.id, 'qwen2.5-coder-7b-q8_0');
  assert.ok(presetsFor(64e9, false).every((p) => p.preset.format === 'safetensors'));
});
