// The remote backend against a real `snout serve --http` (tiny-coder-hf, token set) as the OpenAI-compatible server,
// plus small loopback servers for what a real one does only under trouble (429, never answering).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { cutAtSpecialToken } from '../../extension/completion/filters';
import type { EngineState } from '../../extension/engine/client';
import { RemoteBackend } from '../../extension/remote/openai';
import { formatFromModelName, promptFormat, renderRemotePrompt } from '../../extension/remote/render';
import { modelDir, repoRoot } from '../server/engine-process';

const cli = path.join(repoRoot, 'dist/cli.js');
const token = 'test-token-0123456789abcdef';

async function serve(): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--http', '127.0.0.1:0', '--model', modelDir('tiny-coder-hf'), '--token', token], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const base = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60000);
    child.stdout!.on('data', (c) => {
      out += c;
      const url = /serving (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
      if (url) { clearTimeout(t); resolve(url[1]); }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  return { child, base };
}

let server: { child: ChildProcess; base: string };
before(async () => { server = await serve(); });
after(() => { server.child.kill('SIGTERM'); });

const backend = (o: Partial<ConstructorParameters<typeof RemoteBackend>[0]> = {}) => {
  const states: [EngineState, string | undefined][] = [];
  const b = new RemoteBackend({ url: `${server.base}/v1`, apiKey: () => token, log: () => {}, onState: (s, d) => states.push([s, d]), ...o });
  return { b, states };
};

const files = [
  { path: 'shapes/geometry.py', text: 'import math\n\n\ndef area(r):\n    return math.pi * r * r\n' },
  { path: 'shapes/util.py', text: 'def clamp(x, lo, hi):\n    # Limits x to the closed interval from lo to hi; lo must not exceed hi, or the result is hi.\n    return max(lo, min(hi, x))\n' },
];

test('the packed prompt renders in the model family\'s layout, as the engine would, within a character budget', () => {
  const parts = { repoName: 'repo', files, path: 'main.py', prefix: 'from shapes.geometry import area\nprint(', suffix: ')\n' };
  const q = renderRemotePrompt(promptFormat('qwen'), parts, 10_000, 3.5);
  assert.equal(q.prompt, '<|repo_name|>repo\n<|file_sep|>shapes/geometry.py\n' + files[0].text + '<|file_sep|>shapes/util.py\n' + files[1].text +
    '<|file_sep|>main.py\n<|fim_prefix|>from shapes.geometry import area\nprint(<|fim_suffix|>)\n<|fim_middle|>');
  const d = renderRemotePrompt(promptFormat('deepseek'), parts, 10_000, 3.5);
  assert.ok(d.prompt.startsWith('<｜fim▁begin｜># Path: shapes/geometry.py\n') && d.prompt.endsWith('print(<｜fim▁hole｜>)\n<｜fim▁end｜>'), d.prompt);
  // Over budget: the last file goes first, the current file stays.
  // Budget in characters, each special token counting as one: the prompt without the last file fits, with it not.
  const one = renderRemotePrompt(promptFormat('qwen'), { ...parts, files: [files[0]] }, 10_000, 3.5);
  const small = renderRemotePrompt(promptFormat('qwen'), parts, one.prompt.length, 3.5);
  assert.equal(small.filesKept, 1);
  assert.ok(!small.prompt.includes('shapes/util.py') && small.prompt.endsWith('<|fim_middle|>'));
  assert.equal(formatFromModelName('Qwen/Qwen2.5-Coder-7B'), 'qwen');
  assert.equal(formatFromModelName('bigcode/starcoder2-15b'), 'starcoder');
  assert.equal(formatFromModelName('deepseek-ai/deepseek-coder-6.7b-base'), 'deepseek');
  assert.equal(formatFromModelName('codellama/CodeLlama-7b-hf'), 'codellama');
  assert.equal(formatFromModelName('my-model'), 'plain');
});

test('completions stream through /v1/completions and match the server\'s own rendering of the same request', { timeout: 120000 }, async () => {
  const { b, states } = backend();
  const model = await b.start();
  assert.equal(model.promptFormat, 'qwen', 'from the server\'s prompt_format');
  assert.equal(model.contextLength, 1024, 'max_model_len');
  assert.deepEqual(states.map((s) => s[0]), ['starting', 'ready']);
  const req = { id: 'c1', repoName: 'repo', files, path: 'main.py', prefix: 'from shapes.geometry import area\n\n\ndef ', suffix: '\n', maxTokens: 24, sampling: { temperature: 0 } };
  const pieces: string[] = [];
  const r = await b.complete(req, undefined, (t) => pieces.push(t));
  assert.ok(pieces.length > 1, 'streamed');
  assert.equal(pieces.join(''), r.text);
  assert.ok(r.stats.promptTokens > 50 && r.stats.decodeTokens > 0);
  // Reference: the engine renders the structured request itself (real tokenizer, same layout), greedy.
  const ref = await (await fetch(`${server.base}/v1/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: req.prefix, suffix: req.suffix, files, path: 'main.py', repo_name: 'repo', max_tokens: 24, temperature: 0 }),
  })).json();
  assert.equal(r.stats.promptTokens, ref.usage.prompt_tokens, 'the same prompt, token for token');
  assert.equal(cutAtSpecialToken(r.text), cutAtSpecialToken(ref.choices[0].text));
  await b.dispose();
});

test('Ask streams through /v1/chat/completions with the files in front of the question', { timeout: 120000 }, async () => {
  const { b } = backend();
  const pieces: string[] = [];
  const r = await b.ask({ id: 'a1', messages: [{ role: 'user', content: 'What does area compute?' }], files, maxTokens: 16 }, undefined, (t) => pieces.push(t));
  assert.ok(r.text.length > 0 && pieces.join('') === r.text);
  assert.ok(r.stats.promptTokens > 40, 'the files were sent');
  await b.dispose();
});

test('cancel closes the request at once', { timeout: 120000 }, async () => {
  const { b } = backend();
  await b.start();
  const cts = new CancellationTokenSource();
  const t0 = Date.now();
  const r = await b.complete({ id: 'c2', prompt: 'def main():\n', maxTokens: 900, sampling: { temperature: 0 } }, cts.token, () => cts.cancel());
  assert.equal(r.finishReason, 'cancelled');
  assert.ok(Date.now() - t0 < 30_000);
  assert.equal(b.state, 'ready', 'a cancel is not a failure');
  await b.dispose();
});

test('wrong token and unknown model: one clear line each, state error', { timeout: 120000 }, async () => {
  const { b, states } = backend({ apiKey: () => 'wrong', backoffMs: { initial: 60_000, max: 60_000 } });
  await assert.rejects(b.start(), /refused the API key \(401\); set it with "Snout: Set remote API key…"/);
  assert.equal(b.state, 'error');
  assert.match(states.at(-1)![1]!, /^127\.0\.0\.1:\d+ refused the API key \(401\).* Retrying in 60 s\.$/);
  await b.dispose();
  const m = backend({ model: 'nope', backoffMs: { initial: 60_000, max: 60_000 } });
  await assert.rejects(m.b.start(), /does not serve the model "nope" \(it serves .*tiny-coder-hf\); check snout\.backend\.model/);
  await m.b.dispose();
});

test('a server killed mid-stream gives "server gone" at once, then the backend keeps probing with backoff and a clear line', { timeout: 180000 }, async () => {
  const second = await serve();
  const { b, states } = backend({ url: second.base, backoffMs: { initial: 200, max: 400 } });
  await b.start();
  let killedAt = 0;
  const p = b.complete({ id: 'c3', prompt: 'def main():\n', maxTokens: 900, sampling: { temperature: 0 } }, undefined, () => {
    if (!killedAt) { killedAt = Date.now(); second.child.kill('SIGKILL'); }
  });
  await assert.rejects(p, /closed the connection in the middle of the answer|ended the stream without \[DONE\]/);
  assert.ok(Date.now() - killedAt < 5000, 'noticed without waiting for a timeout');
  assert.equal(b.state, 'error');
  // Probing a dead server keeps failing with a clear line.
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(states.some(([s, d]) => s === 'error' && /cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\): is the server running\?/.test(d ?? '')), JSON.stringify(states));
  await b.dispose();
});

test('a slow server times out with one line; 429 honours Retry-After; the probe brings the backend back', { timeout: 60000 }, async () => {
  let mode: 'hang' | 'busy' | 'ok' = 'hang';
  const fake = http.createServer((req, res) => {
    if (mode === 'hang') return; // never answers
    if (mode === 'busy') { res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"error":{"message":"slow down"}}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'Qwen/Qwen2.5-Coder-1.5B', max_model_len: 32768 }] }));
  });
  const base = await new Promise<string>((r) => fake.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`)));
  try {
    const { b, states } = backend({ url: base, timeoutMs: 300, backoffMs: { initial: 100, max: 200 } });
    const t0 = Date.now();
    await assert.rejects(b.start(), /no answer from 127\.0\.0\.1:\d+ for 0\.3 s \(timeout; snout\.backend\.timeoutMs\)/);
    assert.ok(Date.now() - t0 < 5000);
    mode = 'busy';
    await new Promise((r) => setTimeout(r, 700)); // the probe (100-200 ms backoff) meets the 429
    assert.ok(states.some(([s, d]) => s === 'error' && /busy \(429, too many requests\)\. Retrying in 1 s\./.test(d ?? '')), JSON.stringify(states));
    mode = 'ok';
    const deadline = Date.now() + 5000;
    while (b.state !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.state, 'ready', 'recovered without the user doing anything');
    assert.equal(b.model!.promptFormat, 'qwen', 'format from the model name');
    assert.equal(b.model!.contextLength, 32768);
    await b.dispose();
  } finally {
    fake.close();
    fake.closeAllConnections();
  }
});

test('a prompt the server finds too long (400) is sent once more, shorter', { timeout: 120000 }, async () => {
  const logs: string[] = [];
  // Overestimating characters per token makes the first rendering too long for tiny-coder's 1024-token window.
  const { b } = backend({ charsPerToken: () => 3.2, log: (l) => logs.push(l) });
  const source = readFileSync(path.join(repoRoot, 'engine/prompt/completion.ts'), 'utf8');
  const chunks = Array.from({ length: 12 }, (_, i) => ({ path: `part${i}.ts`, text: source.slice(i * 400, (i + 1) * 400) }));
  const r = await b.complete({ id: 'c9', repoName: 'repo', files: chunks, path: 'main.ts', prefix: 'export function ', suffix: '', maxTokens: 8, sampling: { temperature: 0 } });
  assert.ok(logs.some((l) => /prompt is \d+ tokens.*sending a shorter prompt/.test(l)), logs.join('\n'));
  assert.ok(r.stats.promptTokens > 500 && r.stats.promptTokens <= 1024 - 8, `prompt ${r.stats.promptTokens}`);
  assert.equal(b.state, 'ready', 'a too-long prompt says nothing about the server');
  await b.dispose();
});
