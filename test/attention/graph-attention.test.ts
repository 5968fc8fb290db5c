// Exact decode steps attending inside the layer graphs (graphs.ts GraphOptions.decodeAttention, Sequence.graphAttention)
// against golden.json's independent float64 forward of stories260K (a real GQA Llama: 8 query heads on 4 KV heads):
// logits after 399 tokens fed one decode step at a time, and 200 greedy tokens from BOS. Each run also counts the
// steps the graphs really computed (a spy on graphAttention), so a path that silently fell back to the WebAssembly
// kernels fails. Then the float32 copy's bookkeeping: a sequence reused through the prefix cache (truncated, then
// re-prefilled with other tokens) decodes what a fresh sequence decodes; a cache past the length limit drops its
// copy and goes back to forwardAsync; MagicPIG's sampled layers never hand their steps over, its dense layers do at
// any length.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sequence } from '../../engine/attention/sequence';
import type { GraphAttentionRows } from '../../engine/attention/types';
import type { ModelRunner } from '../../engine/generate/forward';
import { loadModel, type LoadedModel } from '../../engine/index';
import { hasModel, maxAbsDiff, modelDir, readGolden } from '../engine/paths';

const name = 'stories260K-hf';
const greedy = { temperature: 0, topP: 1, seed: 0 };

/** The sequence's attention, with a count of the steps handed to the graphs and of those it kept. */
function spy(seq: unknown): { attention: Sequence; handed: number[]; kept: number[] } {
  const attention = (seq as { attention: Sequence }).attention;
  const handed: number[] = [], kept: number[] = [];
  const graphAttention = attention.graphAttention.bind(attention);
  attention.graphAttention = (layer, k, v, n): ReturnType<Sequence['graphAttention']> => {
    const rows: GraphAttentionRows | null = graphAttention(layer, k, v, n);
    if (n === 1) (rows ? handed : kept).push(layer); // prompt chunks are never handed over: not counted
    return rows as ReturnType<Sequence['graphAttention']>;
  };
  return { attention, handed, kept };
}

describe('decode attention inside the layer graphs', { skip: !hasModel(name) && `${name} not found` }, () => {
  let model: LoadedModel;
  const golden = hasModel(name) ? readGolden(name) : undefined;

  before(async () => { model = await loadModel(modelDir(name), { provider: 'cpu', decodeAttention: true }); });
  after(async () => { await model?.dispose(); });

  it('logits after 399 single-token decode steps match the float64 golden', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const runner = (model as unknown as { runner: ModelRunner }).runner;
    const seq = model.newSequence();
    const { attention, handed, kept } = spy(seq);
    await runner.forward(attention, ids.slice(0, 1), false);
    kept.length = 0; // that one-token prompt
    attention.endPrefill(); // from here every one-token call is a decode step
    let logits: Float32Array | undefined;
    for (let i = 1; i < ids.length; i++) logits = await runner.forward(attention, [ids[i]], true);
    assert.equal(handed.length, (ids.length - 1) * model.spec.numLayers, 'every decode step attended in the graphs');
    assert.equal(kept.length, 0);
    const diff = maxAbsDiff(logits!, golden.long_400.last_logits);
    assert.ok(diff <= 2e-4, `max |Δlogit| ${diff}`);
    seq.dispose();
  });

  it('200 greedy tokens from BOS are the golden ones', async () => {
    const seq = model.newSequence();
    const { handed } = spy(seq);
    const r = await model.generate(seq, { ids: golden.greedy_from_bos.input_ids, maxTokens: 200, sampling: greedy });
    assert.deepEqual(r.ids, golden.greedy_from_bos.generated_ids);
    assert.equal(handed.length, 199 * model.spec.numLayers);
    seq.dispose();
  });

  it('a truncated and re-prefilled sequence decodes like a fresh one', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const reused = model.newSequence();
    // 120 tokens of prompt + 40 decoded; then a prompt sharing the first 60 tokens, shorter than what is cached.
    await model.generate(reused, { ids: ids.slice(0, 120), maxTokens: 40, sampling: greedy });
    const other = [...ids.slice(0, 60), ...ids.slice(200, 250)];
    const { handed } = spy(reused);
    const a = await model.generate(reused, { ids: other, maxTokens: 30, sampling: greedy });
    assert.ok(a.stats.cachedTokens >= 60, `reused ${a.stats.cachedTokens} tokens`);
    assert.ok(handed.length > 0);
    const fresh = model.newSequence();
    const b = await model.generate(fresh, { ids: other, maxTokens: 30, sampling: greedy });
    assert.deepEqual(a.ids, b.ids);
    reused.dispose();
    fresh.dispose();
  });

  it('the prompt keeps the float32 copy up to date (the first decode step copies nothing)', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const seq = model.newSequence();
    const { attention } = spy(seq);
    await model.generate(seq, { ids: ids.slice(0, 150), maxTokens: 1, sampling: greedy }); // the prompt only
    for (let l = 0; l < model.spec.numLayers; l++) {
      const kv = attention.cache(l), copy = (kv as unknown as { mirror: { length: number } | null }).mirror;
      assert.equal(copy?.length, kv.length, `layer ${l}`);
    }
    seq.dispose();
  });

  it('a request that would pass the length limit attends on the engine and frees the copy, with the same tokens', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const seq = model.newSequence();
    const { attention, handed, kept } = spy(seq);
    attention.graphAttentionMaxTokens = 110;
    // 100 + 5: within the limit, so its 4 decode steps are handed over and the copy is kept.
    const short = await model.generate(seq, { ids: ids.slice(0, 100), maxTokens: 5, sampling: greedy });
    assert.deepEqual(short.ids, ids.slice(100, 105));
    assert.equal(handed.length, 4 * model.spec.numLayers);
    assert.ok(attention.cache(0).mirrorBytes() > 0);
    // The same prompt, 40 tokens: it would reach 140, so no step is handed over (not even those under 110) and the
    // copy is freed at once, not built.
    handed.length = 0;
    const long = await model.generate(seq, { ids: ids.slice(0, 100), maxTokens: 40, sampling: greedy });
    assert.deepEqual(long.ids, ids.slice(100, 140));
    assert.equal(handed.length, 0);
    assert.ok(kept.length >= 39 * model.spec.numLayers);
    for (let l = 0; l < model.spec.numLayers; l++) assert.equal(attention.cache(l).mirrorBytes(), 0, `layer ${l}`);
    seq.dispose();
  });

  it('MagicPIG: sampled layers keep their steps, dense layers hand theirs over', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const seq = model.newSequence();
    const { attention, handed, kept } = spy(seq);
    const r = await model.generate(seq, {
      ids: ids.slice(0, 300), maxTokens: 20, sampling: greedy,
      attention: { method: 'magicpig', K: 1, L: 300, sinks: 4, window: 16, tailThreshold: 0, minIndexed: 0, denseLayers: [0] },
    });
    assert.ok(r.stats.sampledFraction > 0.99, `sampled fraction ${r.stats.sampledFraction}`);
    assert.deepEqual(r.ids, ids.slice(300, 320));
    assert.deepEqual([...new Set(handed)], [0]);
    assert.equal(handed.length, 19);
    assert.deepEqual([...new Set(kept)].sort(), Array.from({ length: model.spec.numLayers - 1 }, (_, i) => i + 1));
    // Only the layer that hands its steps over holds a float32 copy of the cache.
    assert.ok(attention.cache(0).mirrorBytes() > 0);
    for (let l = 1; l < model.spec.numLayers; l++) assert.equal(attention.cache(l).mirrorBytes(), 0, `layer ${l}`);
    seq.dispose();
  });

  it('MagicPIG past the length limit: its dense layers still hand their steps over (and only they keep a copy)', async () => {
    const ids: number[] = golden.long_400.input_ids;
    const seq = model.newSequence();
    const { attention, handed, kept } = spy(seq);
    attention.graphAttentionMaxTokens = 50; // far below this request's 320 tokens
    const r = await model.generate(seq, {
      ids: ids.slice(0, 300), maxTokens: 20, sampling: greedy,
      attention: { method: 'magicpig', K: 1, L: 300, sinks: 4, window: 16, tailThreshold: 0, minIndexed: 0, denseLayers: [0, 3] },
    });
    assert.ok(r.stats.sampledFraction > 0.99, `sampled fraction ${r.stats.sampledFraction}`);
    assert.deepEqual(r.ids, ids.slice(300, 320));
    assert.deepEqual([...new Set(handed)].sort(), [0, 3]);
    assert.equal(handed.length, 2 * 19);
    assert.deepEqual([...new Set(kept)].sort(), [1, 2, 4].filter((l) => l < model.spec.numLayers));
    for (let l = 0; l < model.spec.numLayers; l++) {
      const copy = attention.cache(l).currentMirror();
      if (l === 0 || l === 3) assert.equal(copy?.length, attention.cache(l).length, `layer ${l} keeps its copy in step`);
      else assert.equal(attention.cache(l).mirrorBytes(), 0, `layer ${l}`);
    }
    seq.dispose();
  });
});
