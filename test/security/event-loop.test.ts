// Attack table, rows 3 and 5 (protocol): work on hostile input is linear and bounded, so other clients keep being
// answered; the stdio reader neither re-copies its buffer per chunk nor loses a frame that follows junk.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { SafeMessageReader } from '../../engine/server/safe-reader';
import { EngineProcess, frame, modelDir } from '../server/engine-process';

let engine: EngineProcess;
before(async () => {
  engine = new EngineProcess();
  await engine.call('snout/load', { modelDir: modelDir('tiny-coder-hf'), provider: 'cpu' }, 120_000);
});
after(() => engine.close());

describe('attack row 3: the event loop freezes', { timeout: 120_000 }, () => {
  test('snout/ask with 10,000 short messages (~1 MB, was 249 s and uncancellable): answered, others not kept waiting', async () => {
    const messages = Array.from({ length: 10_000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i} `.repeat(8) }));
    messages[messages.length - 1].role = 'user';
    const ask = engine.request('snout/ask', { id: 'many', messages, maxTokens: 4 }, 60_000);
    // Sent after the ask: must not wait for a quadratic render to finish.
    const status = await engine.call('snout/status', undefined, 20_000);
    assert.ok(status.model);
    const r = await ask.response;
    assert.ok(r.result, JSON.stringify(r.error));
    assert.ok(r.result.stats.promptTokens <= 1024 && r.result.stats.truncatedTokens > 0);
  });

  test('a raw 16 M-character prompt (was tokenized whole: 21 s, ~1 GB) is refused at its frame header, unread', async () => {
    const rss0 = (await engine.call('snout/status')).rssBytes;
    const r = await engine.request('snout/complete', { id: 'huge', prompt: 'x = 1\n'.repeat(16 * 1024 * 1024 / 6), maxTokens: 4 }, 60_000).response;
    // The frame limit follows the loaded context (requestByteLimit): 16 MB cannot be a prompt for 1024 tokens. The
    // refusal names the request (its id leads the frame), so the client is not left waiting.
    assert.equal(r.error?.code, -32600);
    assert.match(r.error!.message, /message of \d+ bytes exceeds the limit of \d+/);
    const rss1 = (await engine.call('snout/status')).rssBytes;
    assert.ok(rss1 - rss0 < 512 * 2 ** 20, `grew ${rss1 - rss0} bytes`);
  });

  test('a raw prompt within the frame limit but over budget × 32 characters is refused by its length before tokenizing', async () => {
    const r = await engine.request('snout/complete', { id: 'long', prompt: 'x = 1\n'.repeat(2 * 1024 * 1024 / 6), maxTokens: 4 }, 60_000).response;
    assert.equal(r.error?.code, -32003);
    assert.match(r.error!.message, /prompt is \d+ characters; .* allows \d+ tokens, at most ~\d+ characters/);
  });

  test('a 60 MB frame to a loaded engine is refused at its header (parsing it held the event loop ~1.6 s); the next request is answered', async () => {
    const { requestByteLimit } = await import('../../engine/server/service');
    const status = engine.request('snout/status', undefined, 20_000);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'sixty', method: 'snout/complete', params: { id: 's', prefix: 'a'.repeat(60 * 2 ** 20) } });
    const before = engine.received.length;
    engine.writeRaw(frame(body));
    const after = engine.request('snout/status', undefined, 20_000);
    assert.ok((await status.response).result && (await after.response).result);
    const refusal = engine.received.slice(before).find((m) => m.error?.code === -32600);
    assert.ok(refusal, 'the big frame got an error reply');
    assert.match(refusal!.error!.message, new RegExp(`exceeds the limit of ${requestByteLimit(1024)}\\b`));
  });

  test('the stdio reader joins a 60 MB frame once (was re-copied per chunk: 11.7 s)', () => {
    const input = new PassThrough();
    const reader = new SafeMessageReader(input, () => {}, () => {});
    let got = 0;
    reader.listen(() => { got++; });
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'x', params: { s: 'a'.repeat(60 * 2 ** 20) } }));
    const bytes = frame(body);
    // Count what Buffer.concat copies while the frame arrives in 64 KB chunks: linear means a small multiple of it.
    const concat = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], n?: number) => { const b = concat(list, n); copied += b.length; return b; }) as typeof Buffer.concat;
    try {
      for (let at = 0; at < bytes.length; at += 65536) input.write(bytes.subarray(at, at + 65536));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(got, 1);
    assert.ok(copied < 3 * bytes.length, `copied ${copied} bytes for a ${bytes.length}-byte frame`);
  });
});

describe('attack row 5: protocol edges', { timeout: 60_000 }, () => {
  test('junk bytes without a newline do not swallow the next valid frame', async () => {
    const errors = engine.received.length;
    engine.writeRaw('garbage-without-any-newline');
    const { response } = engine.request('snout/status', undefined, 10_000);
    const r = await response;
    assert.ok(r.result, JSON.stringify(r));
    assert.ok(engine.received.slice(errors).some((m) => m.error?.code === -32700 && /junk before a message header/.test(m.error.message)));
  });
});

describe('attack row 3, within the limits: a long prompt is tokenized in slices', { timeout: 180_000 }, () => {
  let big: EngineProcess;
  before(async () => {
    big = new EngineProcess();
    // A 32K-token context admits raw prompts of ~1 M characters: a second or more of tokenizing.
    await big.call('snout/load', { modelDir: modelDir('tiny-coder-hf'), provider: 'cpu', contextLength: 32768 }, 120_000);
  });
  after(() => big.close());

  test('a status request sent after a ~900 K-character prompt is answered before that prompt is done (was: after it)', async () => {
    // Distinct lines, so no line is in the tokenizer's cache yet.
    let prompt = '';
    for (let i = 0; prompt.length < 900_000; i++) prompt += `value_${i} = compute(${i}, "item ${i}")\n`;
    const complete = big.request('snout/complete', { id: 'slices', prompt, maxTokens: 4 }, 120_000);
    const status = big.request('snout/status', undefined, 120_000);
    const first = await Promise.race([complete.response.then(() => 'complete'), status.response.then(() => 'status')]);
    assert.equal(first, 'status');
    const r = await complete.response;
    // It does not fit 32K tokens: refused by its token count, after tokenizing all of it.
    assert.equal(r.error?.code, -32003);
    assert.match(r.error!.message, /prompt is \d+ tokens/);
  });
});
