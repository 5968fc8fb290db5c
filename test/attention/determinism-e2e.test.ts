// Prefix cache + sampled attention end to end on tiny-coder: greedy output of a reused sequence (prompt A, then prompt
// B sharing A's start; then a prompt that extends the sequence by one token) equals a fresh sequence's, with a small
// tail threshold so the LSH index / Quest pages really serve most of the context.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, type LoadedModel } from '../../engine/index';
import { hasModel, modelDir, readGolden } from '../engine/paths';

const name = 'tiny-coder-hf';
const greedy = { temperature: 0, topP: 1, seed: 0 };

describe('tiny-coder: cached sequence == fresh sequence with sampled attention', { skip: !hasModel(name) && `${name} not found` }, () => {
  let model: LoadedModel;
  before(async () => { model = await loadModel(modelDir(name), { provider: 'cpu' }); });
  after(async () => { await model?.dispose(); });

  for (const method of ['magicpig', 'quest'] as const) {
    it(`${method}: prompt B after prompt A, then a one-token prefill remainder, decode exactly like cold runs`, async () => {
      const cases: { input_ids: number[] }[] = readGolden(name).cases;
      const a = cases.flatMap((c) => c.input_ids); // ~380 tokens of code
      const b = [...a.slice(0, 300), ...cases[1].input_ids.slice(0, 80)];
      const attention = { method, K: 8, L: 40, sinks: 4, window: 16, tailThreshold: 16, minIndexed: 0 };
      const run = (seq: ReturnType<LoadedModel['newSequence']>, ids: number[]) =>
        model.generate(seq, { ids, maxTokens: 12, sampling: greedy, attention });

      const warm = model.newSequence();
      const ra = await run(warm, a);
      const rb = await run(warm, b);
      assert.equal(rb.stats.cachedTokens, 300);
      const coldB = await run(model.newSequence(), b);
      assert.deepEqual(rb.ids, coldB.ids);
      assert.equal(rb.stats.sampledFraction, coldB.stats.sampledFraction);
      assert.ok(coldB.stats.sampledFraction < 0.9, `the index is used: sampled fraction ${coldB.stats.sampledFraction}`);

      // A prompt that is B cut by one token more than its new end (a backspace): the cache holds 339 of its 340
      // tokens, so its prefill is a one-token remainder, which must be exact (prompt), not a sampled decode step.
      const c = b.slice(0, 340);
      const rc = await run(warm, c);
      assert.equal(rc.stats.cachedTokens, c.length - 1);
      const coldC = await run(model.newSequence(), c);
      assert.deepEqual(rc.ids, coldC.ids);
      assert.equal(rc.stats.sampledFraction, coldC.stats.sampledFraction);

      // Tokens generated with sampled attention have approximate K/V: exactLength stops before the first of them.
      const d = [...c, ...rc.ids];
      const attn = (warm as unknown as { attention: { exactLength: number; length: number } }).attention;
      assert.equal(attn.exactLength, c.length, 'generated tokens are not exact');
      assert.ok(attn.length > c.length && d.length > attn.length);
      assert.ok(ra.ids.length > 0);

      // The user accepts the suggestion and types on: the next prompt extends the generated tokens. generate() reuses
      // only the exact prefix, so the output is the cold run's.
      const e = [...d, ...a.slice(0, 5)];
      const re = await run(warm, e);
      assert.equal(re.stats.cachedTokens, c.length, 'reuse stops at exactLength, before the generated tokens');
      const coldE = await run(model.newSequence(), e);
      assert.deepEqual(re.ids, coldE.ids);
      assert.equal(re.stats.sampledFraction, coldE.stats.sampledFraction);
    });
  }
});
