// stories260K (a real Llama) with --attention magicpig against golden.json (independent float64 forward).
// Below sinks + window + tail threshold MagicPIG attends exactly, so the golden greedy runs must be identical; and
// with every indexed key sampled at u ≈ 1 (K = 1, L = 300) over a real 296-token index, greedy decoding must still
// follow the golden 400-token sequence.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, type LoadedModel } from '../../engine/index';
import { hasModel, modelDir, readGolden } from '../engine/paths';

const name = 'stories260K-hf';
const greedy = { temperature: 0, topP: 1, seed: 0 };

describe('stories260K golden with magicpig', { skip: !hasModel(name) && `${name} not found` }, () => {
  let model: LoadedModel;
  const golden = hasModel(name) ? readGolden(name) : undefined;

  before(async () => { model = await loadModel(modelDir(name), { provider: 'cpu', attention: { method: 'magicpig' } }); });
  after(async () => { await model?.dispose(); });

  it('default knobs (exact region): 200 greedy tokens from BOS and the prompt continuation are identical', async () => {
    const r = await model.generate(model.newSequence(), { ids: golden.greedy_from_bos.input_ids, maxTokens: 200, sampling: greedy });
    assert.deepEqual(r.ids, golden.greedy_from_bos.generated_ids);
    assert.equal(r.stats.attention, 'magicpig');
    const p = await model.generate(model.newSequence(), { ids: golden.prompt.input_ids, maxTokens: 64, sampling: greedy });
    assert.deepEqual(p.ids, golden.prompt.greedy_64_ids);
  });

  it('sampled index (K = 1, L = 300, u ≈ 1): greedy tokens 300..399 of long_400 are identical', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const r = await model.generate(model.newSequence(), {
      ids: ids.slice(0, 300), maxTokens: 100, sampling: greedy,
      attention: { method: 'magicpig', K: 1, L: 300, sinks: 4, window: 16, tailThreshold: 0, minIndexed: 0 },
    });
    assert.ok(r.stats.sampledFraction > 0.99, `sampled fraction ${r.stats.sampledFraction}`);
    assert.deepEqual(r.ids, ids.slice(300, 400));
    // The same pipeline with sparse knobs really samples (so the fraction above is measured, not a default of 1).
    const sparse = await model.generate(model.newSequence(), {
      ids: ids.slice(0, 300), maxTokens: 4, sampling: greedy,
      attention: { method: 'magicpig', K: 6, L: 10, sinks: 4, window: 16, tailThreshold: 0, minIndexed: 0 },
    });
    assert.ok(sparse.stats.sampledFraction < 0.5, `sparse sampled fraction ${sparse.stats.sampledFraction}`);
  });
});
