// extension/engine/client.ts against the real engine process (dist/engine.js, tiny-coder-hf): load, stream,
// prefix-cache reuse, cancellation via $/cancelRequest, crash → restart with backoff, dispose.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { EngineClient, type CrashInfo, type EngineState } from '../../extension/engine/client';
import { resolveModelDir } from '../../extension/engine/model-path';

const root = path.resolve(__dirname, '../..');
const enginePath = path.join(root, 'dist/engine.js');
const modelDir = resolveModelDir(undefined, root);
const skip = !existsSync(enginePath) ? 'dist/engine.js not built (npm run build)' : !modelDir ? 'no default model in ../shared/models' : false;

function client(extra: { onCrash?: (c: CrashInfo) => void; onState?: (s: EngineState) => void } = {}) {
  const lines: string[] = [];
  const c = new EngineClient({
    enginePath, runtime: process.execPath, loadParams: () => ({ modelDir: modelDir!, provider: 'cpu' }),
    log: (l) => lines.push(l), backoffMs: { initial: 100, max: 1000 }, ...extra,
  });
  return { c, lines };
}

const until = async (cond: () => boolean, ms = 20_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('engine client: loads the default model, streams tokens, reuses the prefix cache', { skip, timeout: 60_000 }, async () => {
  const { c, lines } = client();
  try {
    const model = await c.start();
    assert.equal(model.modelDir, modelDir);
    assert.ok(model.contextLength > 0);
    assert.ok(lines.some((l) => l === `engine started (pid ${c.pid})`), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('Snout engine ready')));
    const files = [{ path: 'util.py', text: 'def add(a, b):\n    return a + b\n' }];
    let streamed = '';
    const r1 = await c.complete({ id: 'a', repoName: 'r', files, path: 'main.py', prefix: 'from util import add\nx = ', suffix: '\n', maxTokens: 8 }, undefined, (t) => { streamed += t; });
    assert.equal(streamed, r1.text);
    assert.equal(r1.stats.cachedTokens, 0);
    const r2 = await c.complete({ id: 'b', repoName: 'r', files, path: 'main.py', prefix: 'from util import add\nx = a', suffix: '\n', maxTokens: 8 });
    // Same files, one more character typed: everything up to the edit comes from the prefix cache.
    assert.ok(r2.stats.cachedTokens >= r1.stats.promptTokens - 4, JSON.stringify(r2.stats));
  } finally {
    await c.dispose();
  }
});

test('engine client: a cancelled token stops generation early', { skip, timeout: 60_000 }, async () => {
  const { c } = client();
  try {
    await c.start();
    const cts = new CancellationTokenSource();
    let n = 0;
    const started = Date.now();
    const outcome = await c.complete({ id: 'c', prompt: 'def main():\n', maxTokens: 900 }, cts.token, () => { if (++n === 3) cts.cancel(); })
      .then((r) => r.finishReason, (e) => `rejected ${e.code ?? e.message}`);
    assert.ok(outcome === 'cancelled' || /rejected/.test(outcome), outcome);
    assert.ok(n < 100, `${n} tokens streamed after cancel`);
    assert.ok(Date.now() - started < 20_000);
  } finally {
    await c.dispose();
  }
});

test('engine client: a killed engine comes back (backoff) and the crash is reported once per crash', { skip, timeout: 60_000 }, async () => {
  const crashes: CrashInfo[] = [];
  const states: EngineState[] = [];
  const { c, lines } = client({ onCrash: (x) => crashes.push(x), onState: (s) => states.push(s) });
  try {
    await c.start();
    const pid1 = c.pid!;
    process.kill(pid1, 'SIGKILL');
    await until(() => crashes.length === 1);
    assert.equal(crashes[0].restartInMs, 100);
    assert.equal(crashes[0].signal, 'SIGKILL');
    await until(() => c.state === 'ready');
    assert.notEqual(c.pid, pid1);
    assert.ok(states.includes('restarting'));
    const r = await c.complete({ id: 'd', prompt: 'import ', maxTokens: 4 });
    assert.ok(r.stats.promptTokens > 0);
    assert.equal(lines.filter((l) => l.startsWith('engine started (pid')).length, 2);
  } finally {
    await c.dispose();
  }
  assert.equal(c.state, 'stopped');
  assert.equal(c.pid, undefined);
});

test('engine client: a folder that is not a model is an error state, not a restart loop', { skip, timeout: 30_000 }, async () => {
  const crashes: CrashInfo[] = [];
  const c = new EngineClient({ enginePath, runtime: process.execPath, loadParams: () => ({ modelDir: path.join(root, 'extension') }), log: () => {}, onCrash: (x) => crashes.push(x) });
  try {
    await assert.rejects(c.start());
    assert.equal(c.state, 'error');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(crashes.length, 0);
  } finally {
    await c.dispose();
  }
});

test('engine client: restart during a load gives a fresh, ready engine', { skip, timeout: 60_000 }, async () => {
  const { c, lines } = client();
  try {
    const first = c.start();
    first.catch(() => {});
    await until(() => c.pid !== undefined);
    const pid1 = c.pid;
    const model = await c.restart();
    assert.equal(c.state, 'ready');
    assert.equal(model.modelDir, modelDir);
    assert.notEqual(c.pid, pid1);
    assert.equal(lines.filter((l) => l.startsWith('engine started (pid')).length, 2);
  } finally {
    await c.dispose();
  }
});
