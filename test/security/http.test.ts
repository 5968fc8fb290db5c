// Attack table, row 5 (HTTP): `snout serve --http` against DNS rebinding, leaked or empty tokens, oversized bodies,
// bad ports, path disclosure and clients that never finish.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { modelDir, repoRoot } from '../server/engine-process';

const cli = path.join(repoRoot, 'dist/cli.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-http-'));
const tokenFile = path.join(tmp, 'token');
const TOKEN = 'file-token-3b9f0c';
let server: ChildProcess;
let base = '';
let port = 0;
let stderr = '';

function start(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--http', '127.0.0.1:0', '--model', modelDir('tiny-coder-hf'), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SNOUT_MAX_MESSAGE_BYTES: String(1 << 20), SNOUT_SHUTDOWN_GRACE_MS: '1000', ...env } });
  let out = '';
  child.stderr!.on('data', (c) => { stderr += c; });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
      if (m) { clearTimeout(t); resolve({ child, base: m[1] }); }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}

before(async () => {
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  ({ child: server, base } = await start(['--token-file', tokenFile]));
  port = Number(new URL(base).port);
});
after(() => { server.kill('SIGKILL'); rmSync(tmp, { recursive: true, force: true }); });

const auth = { authorization: `Bearer ${TOKEN}` };

/** A raw HTTP/1.1 exchange (fetch will not send a forged Host header). */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let got = '';
    s.on('data', (c) => { got += c; });
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

describe('attack row 5: HTTP edges', { timeout: 120_000 }, () => {
  test('no Host-header check (DNS rebinding stopped only by the token)', async () => {
    const forged = await raw(`GET /v1/models HTTP/1.1\r\nHost: attacker.example:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    assert.match(forged, /^HTTP\/1\.1 403 /);
    assert.match(forged, /not a loopback address/);
    const origin = await fetch(`${base}/v1/models`, { headers: { ...auth, origin: 'http://attacker.example' } });
    assert.equal(origin.status, 403);
    const ok = await raw(`GET /v1/models HTTP/1.1\r\nHost: localhost:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    assert.match(ok, /^HTTP\/1\.1 200 /);
  });

  test('/v1/models returned the absolute model path', async () => {
    const r = await (await fetch(`${base}/v1/models`, { headers: auth })).json() as { data: { id: string }[] };
    assert.equal(r.data[0].id, 'tiny-coder-hf');
    assert.ok(!JSON.stringify(r).includes(path.sep + 'models' + path.sep));
  });

  test('a body over the limit got a reset instead of 413', async () => {
    const r = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x'.repeat(2 << 20) }) });
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /over the limit of 1048576/);
    // The server is still there.
    assert.equal((await fetch(`${base}/v1/models`, { headers: auth })).status, 200);
  });

  test('--token T is readable in /proc/PID/cmdline: --token-file and SNOUT_TOKEN instead, --token warns', async () => {
    assert.equal((await fetch(`${base}/v1/models`, { headers: auth })).status, 200, 'token from --token-file');
    assert.ok(!readCmdline(server.pid!).includes(TOKEN));
    const viaEnv = await start([], { SNOUT_TOKEN: 'env-token-77' });
    try {
      assert.equal((await fetch(`${viaEnv.base}/v1/models`, { headers: { authorization: 'Bearer env-token-77' } })).status, 200);
      assert.ok(!readCmdline(viaEnv.child.pid!).includes('env-token-77'));
    } finally { viaEnv.child.kill('SIGKILL'); }
    stderr = '';
    const viaFlag = await start(['--token', 'flag-token']);
    viaFlag.child.kill('SIGKILL');
    assert.match(stderr, /warning: --token is visible to other local users/);
  });

  test('--token "" was accepted and then nobody could authenticate', () => {
    for (const args of [['--token', ''], ['--token-file', path.join(tmp, 'empty')]]) {
      writeFileSync(path.join(tmp, 'empty'), '\n');
      const r = spawnSync(process.execPath, [cli, 'serve', '--http', '127.0.0.1:0', '--model', '/nonexistent-model', ...args], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), /^snout: serve: (--token needs a non-empty value|--token-file .* is empty)/);
    }
  });

  test('--http with port 99999 ended in a stack trace after loading the model', () => {
    // The model folder does not exist: the port must be checked first.
    const r = spawnSync(process.execPath, [cli, 'serve', '--http', '127.0.0.1:99999', '--model', '/nonexistent-model'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), 'snout: serve: port 99999 is out of range (0-65535; 0 picks a free one)');
  });

  test('SIGTERM with slow connections open never exited', async () => {
    const slow = await start([], { SNOUT_TOKEN: 'x' });
    const p = Number(new URL(slow.base).port);
    // Two clients that never finish: one mid-headers, one mid-body.
    const a = net.connect(p, '127.0.0.1', () => a.write('POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    const b = net.connect(p, '127.0.0.1', () => b.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Length: 1000\r\n\r\n{"pro`));
    a.on('error', () => {}); b.on('error', () => {});
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((r) => slow.child.on('exit', (code) => r(code)));
    slow.child.kill('SIGTERM');
    // The grace period is 1 s here; the test's own timeout is the failure if it never exits.
    assert.equal(await exited, 0);
    a.destroy(); b.destroy();
  });
});

function readCmdline(pid: number): string {
  return require('node:fs').readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
}
