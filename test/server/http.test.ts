// Opt-in local HTTP (`snout serve --http`) with a real model: loopback only, bearer token required, OpenAI-compatible
// JSON and SSE streaming that agree with each other.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { modelDir, repoRoot } from './engine-process';

const cli = path.join(repoRoot, 'dist/cli.js');
let server: ChildProcess;
let base = '';
let token = '';

before(async () => {
  server = spawn(process.execPath, [cli, 'serve', '--http', '127.0.0.1:0', '--model', modelDir('tiny-coder-hf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60000);
    server.stdout!.on('data', (c) => {
      out += c;
      const url = /serving (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
      const tok = /bearer token (\S+)/.exec(out);
      if (url && tok) { base = url[1]; token = tok[1]; clearTimeout(t); resolve(); }
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
});
after(() => { server.kill('SIGTERM'); });

const auth = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

async function sse(res: Response): Promise<any[]> {
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const text = await res.text();
  const events = text.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

test('binds to loopback only', { timeout: 120000 }, () => {
  for (const host of ['0.0.0.0', '192.168.1.10', '[::]']) {
    const r = spawnSync(process.execPath, [cli, 'serve', '--http', `${host}:0`, '--model', modelDir('tiny-coder-hf')], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 1, host);
    assert.match(r.stderr, /loopback only/);
  }
});

test('every route needs the bearer token', { timeout: 120000 }, async () => {
  assert.ok(token.length >= 24, 'a generated token is printed');
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: token }, { authorization: `Basic ${token}` }] as Record<string, string>[]) {
    const r = await fetch(`${base}/v1/completions`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'x' }) });
    assert.equal(r.status, 401);
    assert.match((await r.json()).error.message, /bearer token/);
  }
  const models = await fetch(`${base}/v1/models`, { headers: auth() });
  assert.equal(models.status, 200);
  assert.equal((await models.json()).data.length, 1);
});

test('/v1/completions: JSON and SSE streaming give the same greedy text', { timeout: 120000 }, async () => {
  const body = { prompt: 'def add(a, b):\n', max_tokens: 16, temperature: 0 };
  const plain = await (await fetch(`${base}/v1/completions`, { method: 'POST', headers: auth(), body: JSON.stringify(body) })).json();
  assert.equal(plain.object, 'text_completion');
  assert.ok(plain.choices[0].text.length > 0);
  assert.ok(plain.usage.prompt_tokens > 0);
  const chunks = await sse(await fetch(`${base}/v1/completions`, { method: 'POST', headers: auth(), body: JSON.stringify({ ...body, stream: true }) }));
  assert.ok(chunks.length > 2, 'streamed in pieces');
  assert.equal(chunks.map((c) => c.choices[0].text).join(''), plain.choices[0].text);
  assert.equal(chunks.at(-1).choices[0].finish_reason, plain.choices[0].finish_reason);
});

test('/v1/completions with suffix is fill-in-the-middle; /v1/chat/completions streams deltas', { timeout: 120000 }, async () => {
  const fim = await (await fetch(`${base}/v1/completions`, { method: 'POST', headers: auth(), body: JSON.stringify({ prompt: 'def add(a, b):\n', suffix: '\n\nprint(add(1, 2))\n', max_tokens: 12 }) })).json();
  assert.ok(typeof fim.choices[0].text === 'string');
  const msgs = { messages: [{ role: 'user', content: 'Write a function.' }], max_tokens: 12 };
  const whole = await (await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: auth(), body: JSON.stringify(msgs) })).json();
  assert.equal(whole.choices[0].message.role, 'assistant');
  const chunks = await sse(await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: auth(), body: JSON.stringify({ ...msgs, stream: true }) }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), whole.choices[0].message.content);
});

test('bad requests get 4xx with a message, and the server keeps serving', { timeout: 120000 }, async () => {
  const post = (p: string, body: string) => fetch(`${base}${p}`, { method: 'POST', headers: auth(), body });
  assert.equal((await post('/v1/completions', '{not json')).status, 400);
  assert.equal((await post('/v1/completions', '[]')).status, 400);
  assert.equal((await post('/v1/completions', JSON.stringify({ prompt: 5 }))).status, 400);
  assert.equal((await post('/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: -3 }))).status, 400);
  const long = await post('/v1/completions', JSON.stringify({ prompt: 'x = 1\n'.repeat(1000) }));
  assert.equal(long.status, 400);
  assert.match((await long.json()).error.message, /prompt is \d+ tokens/);
  assert.equal((await post('/v1/chat/completions', JSON.stringify({ messages: [] }))).status, 400);
  assert.equal((await post('/v1/nothing', '{}')).status, 404);
  const ok = await post('/v1/completions', JSON.stringify({ prompt: 'import os\n', max_tokens: 4 }));
  assert.equal(ok.status, 200);
});
