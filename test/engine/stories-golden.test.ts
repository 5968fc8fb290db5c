// stories260K (a real Llama checkpoint) against golden.json from an independent float64 numpy forward.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, type LoadedModel } from '../../engine/index';
import { hasModel, maxAbsDiff, modelDir, readGolden } from './paths';

const name = 'stories260K-hf';
const greedy = { temperature: 0, topP: 1, seed: 0 };

describe('stories260K golden', { skip: !hasModel(name) && `${name} not found` }, () => {
  let model: LoadedModel;
  const golden = hasModel(name) ? readGolden(name) : undefined;

  before(async () => { model = await loadModel(modelDir(name), { provider: 'cpu' }); });
  after(async () => { await model?.dispose(); });

  it('prompt: ids and last-position logits within 1e-4', async () => {
    const ids = model.tokenizer.encode(golden.prompt.text);
    assert.deepEqual(ids, golden.prompt.input_ids);
    const logits = await model.logits(ids);
    assert.ok(maxAbsDiff(logits, golden.prompt.last_logits) <= 1e-4, `max abs diff ${maxAbsDiff(logits, golden.prompt.last_logits)}`);
  });

  it('prompt: 64 greedy tokens', async () => {
    const r = await model.generate(model.newSequence(), { ids: golden.prompt.input_ids, maxTokens: 64, sampling: greedy });
    assert.deepEqual(r.ids, golden.prompt.greedy_64_ids);
  });

  it('200 greedy tokens from BOS are identical', async () => {
    const seq = model.newSequence();
    const r = await model.generate(seq, { ids: golden.greedy_from_bos.input_ids, maxTokens: 200, sampling: greedy });
    assert.deepEqual(r.ids, golden.greedy_from_bos.generated_ids);
    assert.equal(r.finishReason, 'length');
    assert.equal(model.tokenizer.decode(r.ids, { skipSpecialTokens: true }), golden.greedy_from_bos.text);
    assert.deepEqual(seq.tokens, [...golden.greedy_from_bos.input_ids, ...r.ids]);
  });

  it('long_400: last-position logits within 2e-4 (prefilled in chunks)', async () => {
    const logits = await model.logits(golden.long_400.input_ids);
    assert.ok(maxAbsDiff(logits, golden.long_400.last_logits) <= 2e-4, `max abs diff ${maxAbsDiff(logits, golden.long_400.last_logits)}`);
  });

  it('every tokenizer case encodes identically and decodes back', () => {
    for (const c of golden.tokenizer_cases) {
      assert.deepEqual(model.tokenizer.encode(c.text), c.ids, JSON.stringify(c.text));
      assert.equal(model.tokenizer.decode(c.ids, { skipSpecialTokens: true }), c.text, JSON.stringify(c.text));
    }
  });
});
