// The service with a real engine process and tiny-coder: prefix-cache equivalence, cancellation latency, superseding,
// completions before asks, kill -9 detection, and a short typing storm with bounded memory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { CompleteRequest, InitializeRequest, TokenNotification } from '../../engine/protocol';
import { EngineProcess, modelDir, repoRoot } from './engine-process';

const coder = modelDir('tiny-coder-hf');
let engine: EngineProcess;
const report: Record<string, unknown> = {};

// Repository context from the engine's own sources (independent of the model's training data).
const source = (f: string) => ({ path: f, text: readFileSync(path.join(repoRoot, f), 'utf8') });
const head = (f: { path: string; text: string }, chars: number) => ({ path: f.path, text: f.text.slice(0, f.text.lastIndexOf('\n', chars) + 1) });
const files = [head(source('engine/generate/prefix-cache.ts'), 700), head(source('engine/server/scheduler.ts'), 500)];
const request = (id: string, prefix: string, extra: object = {}) => ({
  id, repoName: 'snout', files, path: 'engine/server/example.ts', prefix, suffix: '\n}\n', maxTokens: 24, ...extra,
});

before(async () => {
  engine = new EngineProcess();
  await engine.call('snout/load', { modelDir: coder });
});
after(async () => {
  await engine.close();
  process.stderr.write(`service figures: ${JSON.stringify(report)}\n`);
});

test('prefix cache: a cached prompt gives the same greedy output as a cold run, prefilling only the new tokens', { timeout: 120000 }, async () => {
  const first = await engine.call('snout/complete', request('c1', 'export function lcp(a: number[], b: number[]) {\n'));
  const second = await engine.call('snout/complete', request('c2', 'export function lcp(a: number[], b: number[]) {\n  let i'));
  assert.ok(second.stats.cachedTokens > 0.8 * second.stats.promptTokens, JSON.stringify(second.stats));
  assert.ok(first.stats.promptTokens > 200, `context of ${first.stats.promptTokens} tokens`);
  // Same engine, prefix cache off: every prompt runs cold.
  const cold = new EngineProcess();
  try {
    await cold.call('snout/load', { modelDir: coder, prefixCacheBytes: 0 });
    await cold.call('snout/complete', request('c1', 'export function lcp(a: number[], b: number[]) {\n'));
    const again = await cold.call('snout/complete', request('c2', 'export function lcp(a: number[], b: number[]) {\n  let i'));
    assert.equal(again.stats.cachedTokens, 0);
    assert.equal(second.text, again.text);
    assert.equal(second.stats.promptTokens, again.stats.promptTokens);
    assert.equal((await cold.call('snout/status')).prefixCacheEntries, 0);
    report.prefillMsCached = Math.round(second.stats.prefillMs);
    report.prefillMsCold = Math.round(again.stats.prefillMs);
  } finally { await cold.close(); }
  // Tokens streamed as notifications add up to the final text.
  assert.equal(engine.tokens('c2'), second.text);
});

test('$/cancelRequest stops a generation within a decode step or two', { timeout: 120000 }, async () => {
  const { id, response } = engine.request('snout/complete', { id: 'long', prompt: 'def main():\n', maxTokens: 800 });
  await engine.waitFor(() => engine.tokens('long').length > 0, 30000, 'first token');
  const t0 = performance.now();
  engine.cancel(id);
  const r = await response;
  const latency = performance.now() - t0;
  assert.equal(r.result.finishReason, 'cancelled');
  assert.ok(r.result.stats.decodeTokens < 800);
  const perToken = r.result.stats.decodeMs / Math.max(1, r.result.stats.decodeTokens);
  report.cancelLatencyMs = Math.round(latency * 10) / 10;
  report.decodeMsPerToken = Math.round(perToken * 10) / 10;
  assert.ok(latency < 3 * perToken + 50, `cancel took ${latency.toFixed(1)} ms (a decode step is ${perToken.toFixed(1)} ms)`);
});

test('a new completion supersedes the stale one', { timeout: 120000 }, async () => {
  const a = engine.request('snout/complete', { id: 'stale', prompt: 'class A:\n', maxTokens: 800 });
  await engine.waitFor(() => engine.tokens('stale').length > 0, 30000, 'first token');
  const b = await engine.call('snout/complete', { id: 'fresh', prompt: 'class B:\n', maxTokens: 8 });
  const ra = await a.response;
  assert.equal(ra.result.finishReason, 'cancelled');
  assert.ok(['length', 'eos'].includes(b.finishReason));
});

test('completions go first: an ask yields between tokens, then resumes with the same greedy answer', { timeout: 120000 }, async () => {
  const ask = { messages: [{ role: 'user', content: 'What does commonPrefix return?' }], maxTokens: 60 };
  const alone = await engine.call('snout/ask', { id: 'ask0', ...ask });
  const q = engine.request('snout/ask', { id: 'ask1', ...ask });
  await engine.waitFor(() => engine.tokens('ask1').length > 0, 30000, 'first ask token');
  const c = engine.request('snout/complete', { id: 'during', prompt: 'import os\n', maxTokens: 6 });
  const cr = await c.response;
  const qr = await q.response;
  const order = engine.received.filter((m) => m.id === q.id || m.id === c.id).map((m) => m.id);
  assert.deepEqual(order, [c.id, q.id], 'the completion answered while the ask was still generating');
  assert.ok(cr.result.text.length > 0);
  assert.equal(qr.result.text, alone.text, 'the interrupted ask resumed to the same answer');
  assert.equal(qr.result.finishReason, alone.finishReason);
});

test('kill -9 of the engine mid-stream is detected by a client within a second', { timeout: 120000 }, async () => {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist/engine.js')], { stdio: ['pipe', 'pipe', 'ignore'] });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  let closedAt = 0;
  // vscode-jsonrpc does not fail pending requests when the stream closes; disposing the connection does.
  conn.onClose(() => { closedAt = performance.now(); conn.dispose(); });
  conn.onError(() => {});
  let firstToken: () => void;
  const gotToken = new Promise<void>((r) => { firstToken = r; });
  conn.onNotification(TokenNotification, () => firstToken());
  conn.listen();
  await conn.sendRequest(InitializeRequest, { modelDir: coder });
  const pending = conn.sendRequest(CompleteRequest, { id: 'k', prompt: 'def f():\n', maxTokens: 800 });
  const failed = pending.then(() => 0, () => performance.now());
  await gotToken;
  const t0 = performance.now();
  child.kill('SIGKILL');
  const rejectedAt = await Promise.race([failed, new Promise<number>((r) => setTimeout(() => r(-1), 2000))]);
  await new Promise((r) => setTimeout(r, 20));
  report.killDetectMs = Math.round((closedAt - t0) * 10) / 10;
  assert.ok(closedAt > 0 && closedAt - t0 < 1000, `connection close seen after ${closedAt ? (closedAt - t0).toFixed(1) : 'never'} ms`);
  assert.ok(rejectedAt > 0 && rejectedAt - t0 < 1000, 'the pending request was rejected');
  conn.dispose();
});

test('typing storm: each request cancels the previous one; every request is answered and memory stays bounded', { timeout: 120000 }, async () => {
  const seconds = Number(process.env.SNOUT_STORM_SECONDS ?? 3);
  const rate = 50;
  const storm = new EngineProcess();
  try {
    await storm.call('snout/load', { modelDir: coder });
    const base = 'export function grow(n: number) {\n  const out: number[] = [];\n  for (let i = 0; i < n; i++) {\n    out.push(';
    await storm.call('snout/complete', request('warm', base));
    const typed = 'i * i + 1);\n  }\n  return out;\n}\n\nexport function shrink(xs: number[]) {\n  return xs.filter((x) => x % 2 === 0).map((x) => x / 2);\n}\n';
    const sent: { id: number }[] = [];
    const t0 = Date.now();
    let rssMid = 0;
    for (let k = 0; Date.now() - t0 < seconds * 1000; k++) {
      const prefix = base + typed.repeat(4).slice(0, k % (typed.length * 4));
      sent.push(storm.request('snout/complete', request(`s${k}`, prefix), 60000));
      if (k === Math.floor((rate * seconds) / 2)) rssMid = rss(storm.child.pid!);
      // Absolute schedule: 50 requests per second however long each send took.
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + ((k + 1) * 1000) / rate - Date.now())));
    }
    const sendSeconds = (Date.now() - t0) / 1000;
    const responses = await Promise.all(sent.map((s) => storm.waitFor(() => storm.responseTo(s.id), 60000, `storm reply ${s.id}`)));
    const errors = responses.filter((r) => r.error);
    assert.deepEqual(errors.map((e) => e.error!.message), [], 'no errors');
    const finished = responses.filter((r) => r.result.finishReason !== 'cancelled');
    assert.ok(responses.at(-1)!.result.finishReason !== 'cancelled', 'the last keystroke gets its completion');
    const status = await storm.call('snout/status');
    const peak = peakRss(storm.child.pid!);
    report.storm = { seconds, requests: sent.length, ratePerS: Math.round(sent.length / sendSeconds), completed: finished.length, peakRssMiB: Math.round(peak / 2 ** 20), rssMidMiB: Math.round(rssMid / 2 ** 20), rssEndMiB: Math.round(rss(storm.child.pid!) / 2 ** 20), cacheEntries: status.prefixCacheEntries };
    assert.ok(peak < 1.5 * 2 ** 30, `peak RSS ${peak}`);
    assert.ok(status.queued === 0);
  } finally { await storm.close(); }
});

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

test('loading another model stops running requests first, then serves with the new model', { timeout: 120000 }, async () => {
  const q = engine.request('snout/ask', { id: 'switch', messages: [{ role: 'user', content: 'Explain the scheduler.' }], maxTokens: 600 });
  await engine.waitFor(() => engine.tokens('switch').length > 0, 30000, 'first ask token');
  const info = await engine.call('snout/load', { modelDir: modelDir('stories260K-hf') });
  assert.equal(info.promptFormat, 'plain');
  assert.equal((await q.response).result.finishReason, 'cancelled');
  const r = await engine.call('snout/complete', { id: 'story', prompt: 'Once upon a time', maxTokens: 8 });
  assert.ok(r.text.length > 0 && r.stats.promptTokens > 1);
  assert.equal((await engine.call('snout/status')).model.modelDir, info.modelDir);
});
