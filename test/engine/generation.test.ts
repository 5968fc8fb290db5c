// Generation behaviour on the real models: stop strings, streaming, cancellation, prefix reuse, seeded sampling,
// prefill progress.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, type LoadedModel } from '../../engine/index';
import { StreamDecoder } from '../../engine/generate/text-stream';
import { hasModel, modelDir, readGolden } from './paths';

const greedy = { temperature: 0, topP: 1, seed: 0 };
const coder = 'tiny-coder-hf';
const stories = 'stories260K-hf';

describe('generation on tiny-coder', { skip: !hasModel(coder) && `${coder} not found` }, () => {
  let model: LoadedModel;
  const golden = hasModel(coder) ? readGolden(coder) : undefined;
  before(async () => { model = await loadModel(modelDir(coder), { provider: 'cpu', prefillChunk: 64 }); });
  after(async () => { await model?.dispose(); });

  it('stops at a stop string, never streaming any part of it', async () => {
    const c = golden.cases.find((x: any) => x.name === 'python_plain');
    const stop = '__init__';
    const expected = c.greedy_text.slice(0, c.greedy_text.indexOf(stop));
    assert.ok(expected.length > 0);
    const pieces: string[] = [];
    const r = await model.generate(model.newSequence(), {
      ids: c.input_ids, maxTokens: 48, sampling: greedy, stop: ['never-there', stop], onText: (t) => pieces.push(t),
    });
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.text, expected);
    assert.equal(pieces.join(''), expected);
  });

  it('streams text that joins to the full decode', async () => {
    const c = golden.cases.find((x: any) => x.name === 'typescript_repo');
    const pieces: string[] = [];
    const r = await model.generate(model.newSequence(), { ids: c.input_ids, maxTokens: 24, sampling: greedy, onText: (t) => pieces.push(t) });
    assert.equal(pieces.join(''), r.text);
    // The prompt ends mid-line, so the continuation decodes the same alone or after the prompt.
    assert.equal(model.tokenizer.decode([...c.input_ids, ...r.ids]), model.tokenizer.decode(c.input_ids) + r.text);
  });

  it('stream decoding never splits a UTF-8 character (byte-fallback tokens)', () => {
    const c = golden.tokenizer_cases.find((x: any) => x.text.includes('😀'));
    const decoder = new StreamDecoder(model.tokenizer);
    const pieces = c.ids.map((id: number) => decoder.push(id));
    pieces.push(decoder.flush());
    assert.ok(pieces.every((p: string) => !p.includes('\uFFFD')), JSON.stringify(pieces));
    assert.ok(pieces.some((p: string) => p === ''), 'some byte tokens must have been held back');
    assert.equal(pieces.join(''), c.text);
  });

  it('cancellation stops within one decode step', async () => {
    const c = golden.cases[0];
    const abort = new AbortController();
    let steps = 0;
    const r = await model.generate(model.newSequence(), {
      ids: c.input_ids.slice(0, 40), maxTokens: 40, sampling: { temperature: 1, topP: 1, seed: 3 }, signal: abort.signal,
      onText: () => { if (++steps === 3) abort.abort(); },
    });
    assert.equal(r.finishReason, 'cancelled');
    assert.ok(r.ids.length <= 4, `generated ${r.ids.length} tokens after abort`);
    const pre = new AbortController();
    pre.abort();
    const r2 = await model.generate(model.newSequence(), { ids: c.input_ids, maxTokens: 5, sampling: greedy, signal: pre.signal });
    assert.equal(r2.finishReason, 'cancelled');
    assert.deepEqual(r2.ids, []);
  });

  it('seeded sampling is reproducible and the seed matters', async () => {
    const ids = golden.cases[2].input_ids;
    const run = (seed: number) => model.generate(model.newSequence(), { ids, maxTokens: 16, sampling: { temperature: 1, topP: 0.95, seed } });
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    assert.deepEqual(a.ids, b.ids);
    assert.notDeepEqual(a.ids, c.ids);
  });

  it('reserves the request\'s cache up front: no layer grows during decode, even for a prompt that fills it', async () => {
    // A fresh cache holds 64 tokens; a 64-token prompt filled it exactly, and the first decode step used to grow it
    // (a new buffer and a copy per layer, in the middle of decoding).
    const corpus = golden.cases.flatMap((x: any) => x.input_ids as number[]);
    const ids = corpus.slice(0, 64);
    assert.equal(ids.length, 64);
    const seq = model.newSequence({ method: 'dense' });
    const attention = (seq as any).attention;
    const heads = () => attention.layers.map((st: any) => st.kv.heads[0]);
    let atPrefillEnd: unknown[] = [];
    const endPrefill = attention.endPrefill.bind(attention);
    attention.endPrefill = () => { endPrefill(); atPrefillEnd = heads(); };
    const r = await model.generate(seq, { ids, maxTokens: 8, sampling: greedy });
    assert.equal(r.ids.length, 8);
    assert.equal(attention.length, 64 + 7);
    assert.equal(atPrefillEnd.length, model.spec.numLayers);
    assert.ok(heads().every((h: unknown, l: number) => h === atPrefillEnd[l]), 'a layer\'s cache was re-allocated during decode');
    seq.dispose();
  });

  it('reports prefill progress up to the prompt length', async () => {
    const ids = golden.cases[1].input_ids;
    const seen: [number, number][] = [];
    await model.generate(model.newSequence(), { ids, maxTokens: 1, sampling: greedy, onPrefillProgress: (d, t) => seen.push([d, t]) });
    assert.ok(seen.length >= Math.ceil(ids.length / 64));
    assert.deepEqual(seen.at(-1), [ids.length, ids.length]);
    assert.ok(seen.every(([d], i) => i === 0 || d > seen[i - 1][0]));
  });
});

describe('prefix reuse on stories260K', { skip: !hasModel(stories) && `${stories} not found` }, () => {
  let model: LoadedModel;
  before(async () => { model = await loadModel(modelDir(stories), { provider: 'cpu', prefillChunk: 16 }); });
  after(async () => { await model?.dispose(); });

  it('a follow-up request reuses the cached prefix and generates what a fresh sequence does', async () => {
    const golden = readGolden(stories);
    const prompt = golden.prompt.input_ids;
    const seq = model.newSequence();
    const first = await model.generate(seq, { ids: prompt, maxTokens: 10, sampling: greedy });
    assert.deepEqual(seq.tokens, [...prompt, ...first.ids]);
    // Continue the same text: everything but the last sampled token is already in the cache.
    const follow = [...prompt, ...first.ids];
    const reused = await model.generate(seq, { ids: follow, maxTokens: 12, sampling: greedy });
    assert.equal(reused.stats.cachedTokens, follow.length - 1);
    const fresh = await model.generate(model.newSequence(), { ids: follow, maxTokens: 12, sampling: greedy });
    assert.equal(fresh.stats.cachedTokens, 0);
    assert.deepEqual(reused.ids, fresh.ids);
    assert.deepEqual(reused.ids, golden.prompt.greedy_64_ids.slice(10, 22));
    // A request that diverges early truncates the cache to the common prefix.
    const other = [...prompt.slice(0, 4), 400, 401];
    const diverged = await model.generate(seq, { ids: other, maxTokens: 5, sampling: greedy });
    assert.equal(diverged.stats.cachedTokens, 4);
    const freshOther = await model.generate(model.newSequence(), { ids: other, maxTokens: 5, sampling: greedy });
    assert.deepEqual(diverged.ids, freshOther.ids);
  });
});

describe('context limit on stories260K (max_position_embeddings 512)', { skip: !hasModel(stories) && `${stories} not found` }, () => {
  let model: LoadedModel;
  before(async () => { model = await loadModel(modelDir(stories), { provider: 'cpu' }); });
  after(async () => { await model?.dispose(); });

  it('a prompt longer than the context is a user error; generation stops at the last position', async () => {
    const ids = [1, ...Array.from({ length: 512 }, (_, i) => 300 + (i % 100))];
    await assert.rejects(model.logits(ids), /513 tokens; the model's context is 512/);
    const r = await model.generate(model.newSequence(), { ids: ids.slice(0, 510), maxTokens: 10, sampling: greedy });
    // Positions 510 and 511 are left: two more tokens go through the model, plus the one sampled after the last.
    assert.equal(r.ids.length + r.stats.promptTokens <= 513, true);
    if (r.finishReason === 'length') assert.equal(r.ids.length, 3);
  });
});
