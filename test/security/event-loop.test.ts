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

  test('a raw 16 M-character prompt (was tokenized whole: 21 s, ~1 GB) is refused by its length before tokenizing', async () => {
    const rss0 = (await engine.call('snout/status')).rssBytes;
    const r = await engine.request('snout/complete', { id: 'huge', prompt: 'x = 1\n'.repeat(16 * 1024 * 1024 / 6), maxTokens: 4 }, 60_000).response;
    assert.equal(r.error?.code, -32003);
    assert.match(r.error!.message, /prompt is \d+ characters; .* allows \d+ tokens, at most ~\d+ characters/);
    const rss1 = (await engine.call('snout/status')).rssBytes;
    assert.ok(rss1 - rss0 < 512 * 2 ** 20, `grew ${rss1 - rss0} bytes`);
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
