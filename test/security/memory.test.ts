// Attack table, row 2: K and L inside the allowed range exhausted RAM (the LSH tables are sized by L·2^K per layer
// and KV head). Now the room is sized by the context, the whole estimate is counted against the cache budget before
// anything is allocated, and a request that cannot fit is refused with a clear error. Then 100 requests at the K/L
// limits: the engine's RSS stays under a stated bound.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { EngineProcess, modelDir } from '../server/engine-process';

const BUDGET = 256 * 2 ** 20;
/** The bound: the cache budget plus what the process holds with the model loaded and nothing cached (~250 MB here). */
const RSS_BOUND = BUDGET + 512 * 2 ** 20;
let engine: EngineProcess;
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${engine.child.pid}/status`, 'utf8'))![1]) * 1024;

before(async () => {
  engine = new EngineProcess();
  await engine.call('snout/load', { modelDir: modelDir('tiny-coder-hf'), provider: 'cpu', prefixCacheBytes: BUDGET }, 120_000);
});
after(() => engine.close());

const body = 'def add(a, b):\n    return a + b\n\n'.repeat(20);
const request = (i: number, K: number, L: number) => engine.request('snout/complete', {
  id: `m${i}`, prompt: `# request ${i % 12}\n${body}`, maxTokens: 2, attention: { method: 'magicpig', K, L, sinks: 4, window: 16 },
}, 120_000).response;

describe('attack row 2: K and L inside the allowed range exhaust RAM', { timeout: 600_000 }, () => {
  test('K=16, L=1024 on a short prompt (10.6 GB peak): refused before allocating, with the estimate', async () => {
    const r = await request(0, 16, 1024);
    assert.equal(r.error?.code, -32602, JSON.stringify(r));
    assert.match(r.error!.message, /would need ~\d+ MB of RAM \(KV cache \d+ MB, attention index \d+ MB \(K=16, L=1024\)\).*more than the cache budget of 256 MB/);
    const st = await engine.call('snout/status');
    assert.ok(st.rssBytes < RSS_BOUND, `${st.rssBytes}`);
  });

  test('K=14, L=1024 (3.4 GB kept after the request while the cache reported ~0 MB): refused; what runs is counted', async () => {
    const r = await request(1, 14, 1024);
    assert.match(r.error?.message ?? '', /attention index/);
    const ok = await request(2, 1, 1024);
    assert.ok(ok.result, JSON.stringify(ok.error));
    const st = await engine.call('snout/status');
    assert.ok(st.prefixCacheBytes > 0 && st.prefixCacheBytes <= BUDGET, `${st.prefixCacheBytes}`);
  });

  test(`RSS after 100 requests at the K/L limits stays under the cache budget + 512 MB (${RSS_BOUND / 2 ** 20} MB)`, async () => {
    const limits: [number, number][] = [[16, 1024], [1, 1024], [16, 2], [1, 2], [14, 1024]];
    let served = 0, refused = 0;
    for (let i = 0; i < 100; i++) {
      const [K, L] = limits[i % limits.length];
      const r = await request(i, K, L);
      if (r.result) served++;
      else { assert.match(r.error!.message, /more than the cache budget/); refused++; }
    }
    const st = await engine.call('snout/status');
    const peak = peakRss();
    process.stdout.write(`# 100 requests: ${served} served, ${refused} refused; RSS after ${(st.rssBytes / 2 ** 20).toFixed(0)} MB, peak ${(peak / 2 ** 20).toFixed(0)} MB, cache ${(st.prefixCacheBytes / 2 ** 20).toFixed(0)} MB\n`);
    assert.equal(served, 60);
    assert.ok(st.prefixCacheBytes <= BUDGET);
    assert.ok(st.rssBytes < RSS_BOUND, `RSS ${st.rssBytes} over ${RSS_BOUND}`);
    assert.ok(peak < RSS_BOUND, `peak RSS ${peak} over ${RSS_BOUND}`);
  });
});
