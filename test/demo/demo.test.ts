// `npm run demo` end to end: the real engine process, the extension's packer on the e2e fixture repository, two
// completion requests. Checks what the demo claims to show against the fixture itself: report.py imports geometry.py,
// so geometry.py must be packed first; the model streams something; typing reuses the engine's prefix cache.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(__dirname, '../..');
const shared = process.env.SNOUT_SHARED ?? path.resolve(root, '../shared');
const model = process.env.SNOUT_MODEL ?? path.join(shared, 'models', 'tiny-coder-hf');
const skip = existsSync(path.join(model, 'config.json')) ? false : `no model at ${model}`;

test('npm run demo: packs imports first, streams a completion, and the typed request hits the prefix cache', { skip, timeout: 60_000 }, () => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: root, encoding: 'utf8', timeout: 55_000 });
  const out = r.stdout;
  console.log(`demo ran in ${Date.now() - t0} ms`);
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${out}\n${r.stderr}`);

  // The fixture's own import statement says which file the packer must put first.
  const report = readFileSync(path.join(root, 'test/e2e/fixture-repo/shapes/report.py'), 'utf8');
  const imported = `shapes/${/^from \.(\w+) import/m.exec(report)![1]}.py`;
  const first = /^ {2}1\. (\S+) {2}\[(\w+)/m.exec(out);
  assert.ok(first, out);
  assert.deepEqual([first[1], first[2]], [imported, 'imported'], out);
  assert.match(out, /attention: magicpig /);

  const streamed = [...out.matchAll(/^streamed tokens: ([\s\S]*?)⏎ \[(\w+)\]$/gm)];
  assert.equal(streamed.length, 2, out);
  assert.ok(streamed[0][1].trim().length > 0, `request 1 streamed nothing:\n${out}`);

  const cache = /^request 2 \(typed\): .*cached (\d+)\/(\d+) prompt tokens/m.exec(out);
  assert.ok(cache, out);
  const [cached, prompt] = [Number(cache[1]), Number(cache[2])];
  assert.ok(prompt > 100 && cached > 0.9 * prompt, `request 2 reused ${cached}/${prompt} prompt tokens`);
  assert.match(out, /^request 1 \(cold\): .*cached 0\//m, 'the first request is cold');
});

test('npm run demo -- --backend URL --token-file F: the same flow through a remote `snout serve --http`', { skip, timeout: 120_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-demo-'));
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, 'demo-remote-token-0123456789\n');
  const server = spawn(process.execPath, [path.join(root, 'dist/cli.js'), 'serve', '--http', '127.0.0.1:0', '--model', model, '--token', 'demo-remote-token-0123456789'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let log = '';
    const base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 60_000);
      server.stdout!.on('data', (c) => { log += c; const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(log); if (m) { clearTimeout(t); resolve(m[1]); } });
    });
    const run = (token: string) => new Promise<{ status: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--backend', base, '--token-file', token], { cwd: root });
      let out = '';
      c.stdout.on('data', (d) => { out += d; });
      c.stderr.on('data', (d) => { out += d; });
      c.on('exit', (status) => resolve({ status, out }));
    });
    const r = await run(tokenFile);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /^remote backend: http:\/\/127\.0\.0\.1:\d+/m);
    assert.match(r.out, /prompt format qwen/);
    const streamed = [...r.out.matchAll(/^streamed tokens: ([\s\S]*?)⏎ \[(\w+)\]$/gm)];
    assert.equal(streamed.length, 2, r.out);
    assert.ok(streamed[0][1].trim().length > 0, r.out);
    // The remote server's prefix cache serves the typed request (the prompt rendered here is byte-stable).
    const cache = /^request 2 \(typed\): .*cached (\d+)\/(\d+) prompt tokens/m.exec(r.out);
    assert.ok(cache && Number(cache[1]) > 0.9 * Number(cache[2]) && Number(cache[2]) > 100, r.out);
    writeFileSync(tokenFile, 'wrong\n');
    const bad = await run(tokenFile);
    assert.equal(bad.status, 1);
    assert.match(bad.out, /snout demo: 127\.0\.0\.1:\d+ refused the API key \(401\)/);
  } finally {
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
