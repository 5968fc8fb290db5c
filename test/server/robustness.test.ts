// 200+ malformed or hostile messages to a real engine process with a real model: every one that can be answered gets
// a JSON-RPC error with a clear message, none crashes the engine, and it then completes exactly as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineProcess, frame, modelDir } from './engine-process';

const MAX_MESSAGE = 256 * 1024;
let engine: EngineProcess;
const valid = { id: 'ok', repoName: 'json', path: 'json/encoder.py', prefix: 'def py_encode_basestring(s):\n', suffix: '\n\n', maxTokens: 12 };

before(() => { engine = new EngineProcess([], { SNOUT_MAX_MESSAGE_BYTES: String(MAX_MESSAGE) }); });
after(async () => { await engine.close(); });

test('before a model is loaded: status is idle, complete is refused, a bad folder is a clear BadModel error', { timeout: 120000 }, async () => {
  assert.equal((await engine.call('snout/status')).state, 'idle');
  const c = await engine.request('snout/complete', valid).response;
  assert.equal(c.error?.code, -32001);
  assert.match(c.error!.message, /no model loaded/);
  const bad = await engine.request('snout/load', { modelDir: '/nonexistent/model' }).response;
  assert.equal(bad.error?.code, -32002);
  assert.match(bad.error!.message, /model not found: \/nonexistent\/model/);
  const notModel = await engine.request('snout/load', { modelDir: __dirname }).response;
  assert.match(notModel.error!.message, /no config\.json/);
});

/** One hostile input and what must come back: an error with this code (and id), or nothing (notifications). */
type Case = { name: string; bytes: Buffer; reply?: { id: number | string | null; code: number; match?: RegExp } };

function cases(): Case[] {
  const out: Case[] = [];
  let n = 1000;
  const raw = (name: string, body: string, code: number, match?: RegExp) => out.push({ name, bytes: frame(body), reply: { id: null, code, match } });
  const req = (name: string, method: unknown, params: unknown, code: number, match?: RegExp, extra: object = {}) => {
    const id = n++;
    out.push({ name, bytes: frame(JSON.stringify({ jsonrpc: '2.0', id, method, params, ...extra })), reply: { id, code, match } });
  };
  // Not JSON at all.
  for (const body of ['{', '{"jsonrpc":"2.0",', 'nul', 'undefined', "{'a':1}", '{"a":}', '[1,2', '"unterminated', '\u0000\u0001', '{"id":1,"method":"snout/status"', ')]}', '{{}}', 'NaN', '--', '{"a":1}}'])
    raw(`bad JSON ${JSON.stringify(body)}`, body, -32700, /Parse error/);
  for (let i = 0; i < 10; i++) raw(`random bytes ${i}`, Buffer.from(Array.from({ length: 50 + i * 7 }, (_, j) => (j * 131 + i * 17) % 256)).toString('latin1'), -32700, /Parse error/);
  // JSON, but not a message.
  for (const body of ['42', '"str"', 'null', 'true', '[]', '[{"jsonrpc":"2.0","id":1,"method":"snout/status"}]', '{}', '{"jsonrpc":"2.0"}'])
    raw(`not a message ${body}`, body, -32600, /Invalid Request/);
  for (const id of [{}, [1], true, 1.5e400 === Infinity ? { x: 1 } : 0])
    raw(`bad id ${JSON.stringify(id)}`, JSON.stringify({ jsonrpc: '2.0', id, method: 'snout/status' }), -32600, /"id" must be/);
  // Bad envelope with a usable id.
  for (const v of ['1.0', 2, null, undefined]) req(`jsonrpc ${v}`, 'snout/status', undefined, -32600, /jsonrpc/, { jsonrpc: v });
  for (const m of [42, null, {}, ['snout/status']]) req(`method ${JSON.stringify(m)}`, m, undefined, -32600, /method/);
  // Unknown methods.
  for (const m of ['snout/nope', 'rm -rf /', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'snout/load/../status', 'SNOUT/STATUS', 'x'.repeat(100)])
    req(`unknown method ${m.slice(0, 20)}`, m, {}, -32601, /Unhandled method/);
  req('method name of 10K chars', 'x'.repeat(10000), {}, -32600, /too long/);
  // params of the wrong shape.
  for (const p of ['str', 5, true, null, [1, 2], ['a']]) for (const m of ['snout/complete', 'snout/ask', 'snout/load', 'snout/index'])
    if (p !== null) req(`${m} params ${JSON.stringify(p)}`, m, p, -32602, /params/);
  // complete: wrong types and out-of-range values, one field at a time.
  const badComplete: [string, object, RegExp][] = [
    ['no id', { prefix: 'x' }, /complete\.id is required/],
    ['id object', { id: {}, prefix: 'x' }, /complete\.id must be a string/],
    ['id 1000 chars', { id: 'i'.repeat(1000), prefix: 'x' }, /complete\.id is 1000 characters/],
    ['prefix number', { id: 'a', prefix: 5 }, /complete\.prefix must be a string/],
    ['neither prompt nor prefix', { id: 'a' }, /either prompt or prefix/],
    ['prompt and prefix', { id: 'a', prompt: 'x', prefix: 'y' }, /not both/],
    ['maxTokens -1', { id: 'a', prefix: 'x', maxTokens: -1 }, /maxTokens must be an integer/],
    ['maxTokens 1.5', { id: 'a', prefix: 'x', maxTokens: 1.5 }, /maxTokens must be an integer/],
    ['maxTokens "10"', { id: 'a', prefix: 'x', maxTokens: '10' }, /maxTokens must be an integer/],
    ['maxTokens whole context', { id: 'a', prefix: 'x', maxTokens: 5000 }, /leaves no room/],
    ['files not array', { id: 'a', prefix: 'x', files: 'a.py' }, /files must be an array/],
    ['file without text', { id: 'a', prefix: 'x', files: [{ path: 'a.py' }] }, /files\[0\]\.text is required/],
    ['file is number', { id: 'a', prefix: 'x', files: [1] }, /files\[0\] must be an object/],
    ['file path huge', { id: 'a', prefix: 'x', files: [{ path: 'p'.repeat(5000), text: '' }] }, /path is 5000 characters/],
    ['temperature string', { id: 'a', prefix: 'x', sampling: { temperature: 'hot' } }, /temperature must be a number/],
    ['temperature negative', { id: 'a', prefix: 'x', sampling: { temperature: -1 } }, /temperature must be a number/],
    ['topP 2', { id: 'a', prefix: 'x', sampling: { topP: 2 } }, /topP must be a number/],
    ['seed float', { id: 'a', prefix: 'x', sampling: { seed: 0.5 } }, /seed must be an integer/],
    ['sampling array', { id: 'a', prefix: 'x', sampling: [] }, /sampling must be an object/],
    ['attention method', { id: 'a', prefix: 'x', attention: { method: 'psychic' } }, /method must be one of/],
    ['attention K 0', { id: 'a', prefix: 'x', attention: { K: 0 } }, /K must be an integer/],
    ['attention L huge', { id: 'a', prefix: 'x', attention: { L: 1e9 } }, /L must be an integer/],
    ['attention K 17 (codes are 16 bits)', { id: 'a', prefix: 'x', attention: { K: 17 } }, /K must be an integer in 1\.\.16/],
    ['attention L 1 (sampling needs 2 collisions)', { id: 'a', prefix: 'x', attention: { L: 1 } }, /L must be an integer in 2\.\.1024/],
    ['denseLayers strings', { id: 'a', prefix: 'x', attention: { denseLayers: ['0'] } }, /denseLayers must be integers/],
    ['stop empty string', { id: 'a', prefix: 'x', stop: [''] }, /stop must hold/],
    ['stop not array', { id: 'a', prefix: 'x', stop: '\n' }, /stop must be an array/],
    ['stop 100 entries', { id: 'a', prefix: 'x', stop: Array(100).fill('x') }, /stop has 100 entries/],
    ['priority bogus', { id: 'a', prefix: 'x', priority: 'urgent' }, /priority must be one of/],
    ['repoName object', { id: 'a', prefix: 'x', repoName: { a: 1 } }, /repoName must be a string/],
  ];
  for (const [name, p, match] of badComplete) req(`complete ${name}`, 'snout/complete', p, -32602, match);
  // Prompts longer than the context (raw prompts are not truncated; structured ones are, see the service tests).
  req('raw prompt of ~3000 tokens', 'snout/complete', { id: 'long', prompt: 'x = 1\n'.repeat(1000) }, -32003, /prompt is \d+ tokens/);
  req('raw prompt 1 token short of room', 'snout/complete', { id: 'long2', prompt: 'a = b\n'.repeat(400), maxTokens: 1000 }, -32003, /allows 24/);
  // ask.
  const badAsk: [string, object, RegExp][] = [
    ['no messages', { id: 'q' }, /messages must be a non-empty array/],
    ['empty messages', { id: 'q', messages: [] }, /non-empty/],
    ['role god', { id: 'q', messages: [{ role: 'god', content: 'hi' }] }, /role must be one of/],
    ['content number', { id: 'q', messages: [{ role: 'user', content: 1 }] }, /content must be a string/],
    ['message string', { id: 'q', messages: ['hi'] }, /messages\[0\] must be an object/],
    ['maxTokens 0', { id: 'q', messages: [{ role: 'user', content: 'hi' }], maxTokens: 0 }, /maxTokens must be an integer/],
  ];
  for (const [name, p, match] of badAsk) req(`ask ${name}`, 'snout/ask', p, -32602, match);
  // load: bad folders and types (the loaded model must survive all of them).
  for (const [name, p, code, match] of [
    ['modelDir number', { modelDir: 7 }, -32602, /modelDir must be a string/],
    ['modelDir missing', {}, -32602, /modelDir is required/],
    ['modelDir nonexistent', { modelDir: '/no/such/dir' }, -32002, /not found/],
    ['modelDir a file', { modelDir: __filename }, -32002, /not a model \(expected a folder or a \.gguf file\)/],
    ['modelDir without config', { modelDir: '/tmp' }, -32002, /no config\.json/],
    ['provider bogus', { modelDir: '/tmp', provider: 'tpu' }, -32602, /provider must be one of/],
    ['prefixCacheBytes negative', { modelDir: '/tmp', prefixCacheBytes: -5 }, -32602, /prefixCacheBytes/],
  ] as [string, object, number, RegExp][]) req(`load ${name}`, 'snout/load', p, code, match);
  // Huge strings: over the framing limit (skipped unread), and a big-but-legal structured request that gets truncated.
  const hugeId = n++;
  out.push({ name: 'message over the size limit', bytes: frame(JSON.stringify({ jsonrpc: '2.0', id: hugeId, method: 'snout/complete', params: { id: 'h', prefix: 'x'.repeat(MAX_MESSAGE) } })), reply: { id: hugeId, code: -32600, match: /exceeds the limit/ } });
  out.push({ name: 'absurd Content-Length', bytes: Buffer.from('Content-Length: 99999999999999999999\r\n\r\n{"jsonrpc":"2.0"}'), reply: { id: null, code: -32600, match: /exceeds the limit/ } });
  req('string with lone surrogates and NULs', 'snout/complete', { id: '\ud800\u0000', prefix: 5 }, -32602, /prefix must be a string/);
  // Broken framing: the reader must resync at the next real frame.
  out.push({ name: 'header without Content-Length', bytes: Buffer.from('X-Nothing: 1\r\n\r\n'), reply: { id: null, code: -32700, match: /Content-Length/ } });
  out.push({ name: 'Content-Length not a number', bytes: Buffer.from('Content-Length: abc\r\n\r\n'), reply: { id: null, code: -32700, match: /Content-Length/ } });
  // Notifications get no reply, even when wrong; they must not break anything.
  for (const p of [undefined, null, {}, { id: {} }, { id: 99999 }, 'x'])
    out.push({ name: `$/cancelRequest ${JSON.stringify(p)}`, bytes: frame(JSON.stringify({ jsonrpc: '2.0', method: '$/cancelRequest', params: p })) });
  for (const m of ['snout/nope', 'exit', '$/setTrace', 'snout/token'])
    out.push({ name: `notification ${m}`, bytes: frame(JSON.stringify({ jsonrpc: '2.0', method: m, params: { text: 'x' } })) });
  while (out.length < 200) req(`unknown method filler ${out.length}`, `snout/unknown${out.length}`, {}, -32601, /Unhandled method/);
  return out;
}

test('200+ malformed or hostile messages: each answered with a clear error, and the engine keeps serving', { timeout: 120000 }, async () => {
  const info = await engine.call('snout/load', { modelDir: modelDir('tiny-coder-hf') });
  assert.equal(info.promptFormat, 'qwen');
  const progress = engine.received.filter((m) => m.method === 'snout/progress' && m.params.kind === 'load');
  assert.ok(progress.length >= 2, 'progress notifications while loading');
  assert.ok(progress.every((m) => typeof m.params.message === 'string'));
  const before = await engine.call('snout/complete', valid);
  assert.equal(before.finishReason, 'length');

  const all = cases();
  assert.ok(all.length >= 200, `${all.length} cases`);
  const start = engine.received.length;
  for (const c of all) engine.writeRaw(c.bytes);
  const status = await engine.call('snout/status', undefined, 60000);
  assert.equal(status.model.modelDir, info.modelDir, 'the loaded model survived');
  // Replies to messages with an id; id-less replies (parse errors etc.) in order of sending.
  const replies = engine.received.slice(start).filter((m) => m.method === undefined && m.error);
  const nullReplies = replies.filter((m) => m.id === null);
  const expectedNull = all.filter((c) => c.reply && c.reply.id === null);
  assert.equal(nullReplies.length, expectedNull.length, `id-less error replies: ${nullReplies.map((m) => m.error!.message).join(' | ')}`);
  expectedNull.forEach((c, i) => {
    assert.equal(nullReplies[i].error!.code, c.reply!.code, `${c.name}: ${nullReplies[i].error!.message}`);
    if (c.reply!.match) assert.match(nullReplies[i].error!.message, c.reply!.match, c.name);
  });
  for (const c of all.filter((x) => x.reply && x.reply.id !== null)) {
    const r = engine.responseTo(c.reply!.id!);
    assert.ok(r, `${c.name}: no reply`);
    assert.equal(r.error?.code, c.reply!.code, `${c.name}: ${JSON.stringify(r.error ?? r.result)}`);
    if (c.reply!.match) assert.match(r.error!.message, c.reply!.match, c.name);
  }
  const unexpected = engine.received.slice(start).filter((m) => m.method === undefined && m.id !== null && !all.some((c) => c.reply?.id === m.id) && m.result === undefined);
  assert.deepEqual(unexpected, [], 'no reply to notifications');

  // Big but legal: structured parts far over the context are truncated, not refused.
  const huge = await engine.call('snout/complete', { ...valid, id: 'big', prefix: 'v = 1\n'.repeat(30000), files: [{ path: 'a.py', text: 'w = 2\n'.repeat(5000) }], maxTokens: 4 });
  assert.ok(huge.stats.truncatedTokens > 50000 && huge.stats.promptTokens <= 1020, JSON.stringify(huge.stats));
  const afterwards = await engine.call('snout/complete', { ...valid, id: 'ok2' });
  assert.equal(afterwards.text, before.text, 'greedy completion unchanged after the barrage');
});

test('the engine exits by itself when its stdin closes', { timeout: 120000 }, async () => {
  const t0 = Date.now();
  engine.child.stdin.end();
  assert.equal(await engine.exited, 0);
  assert.ok(Date.now() - t0 < 5000);
});

test('snout/shutdown answers, then the engine exits with status 0', { timeout: 120000 }, async () => {
  const e = new EngineProcess();
  try {
    const r = await e.request('snout/shutdown').response;
    assert.equal(r.error, undefined);
    assert.equal(await e.exited, 0);
  } finally { await e.close(); }
});
