// Prefix-cache determinism with sampled attention: a sequence reused through any history of truncates, prefills,
// endPrefill/prepare and decode steps must give bit-identical decode outputs to a cold sequence fed the same tokens
// (the index is a function of the current context only). Synthetic q/k/v are a function of (token, position, layer),
// so both runs hold the same cache contents and any difference comes from the index state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequenceAttention, defaultAttentionConfig, type AttentionConfig, type AttentionShape, type SequenceAttention } from '../../engine/attention';
import { KBAR_SPAN } from '../../engine/attention/sequence';
import { rng, tokenStream } from './data';

const shape: AttentionShape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16 };
const { feed } = tokenStream(shape);

const common = (a: readonly number[], b: readonly number[]) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/** Prefill `prompt` from `cached` in chunks, endPrefill, prepare, then decode `gen`; returns the decode outputs. */
async function request(attn: SequenceAttention, prompt: number[], cached: number, chunks: () => number, gen: number[]) {
  attn.truncate(cached);
  for (let at = cached; at < prompt.length;) {
    const n = Math.min(chunks(), prompt.length - at);
    feed(attn, prompt.slice(at, at + n), at);
    at += n;
  }
  attn.endPrefill();
  await attn.prepare({ provider: 'cpu' });
  attn.resetStats();
  const outs: Float32Array[] = [];
  gen.forEach((id, j) => outs.push(...feed(attn, [id], prompt.length + j)));
  return { outs, frac: attn.stats().sampledFraction };
}

async function history(cfg: Partial<AttentionConfig>, seed: number, lengths: [number, number], requests: number) {
  const config: AttentionConfig = { ...defaultAttentionConfig(2), denseLayers: [0], K: 6, L: 20, sinks: 4, window: 8, tailThreshold: 16, ...cfg };
  const rand = rng(seed);
  const int = (a: number, b: number) => a + Math.floor(rand() * (b - a + 1));
  const cachedSeq = createSequenceAttention(shape, config);
  let tokens: number[] = [];
  let sampled = 0;
  for (let r = 0; r < requests; r++) {
    // Next prompt: a random prefix of the sequence's tokens (prompt + generated so far) plus new tokens.
    const keep = r === 0 ? 0 : int(0, tokens.length);
    const len = Math.max(keep + 1, int(lengths[0], lengths[1]));
    const prompt = [...tokens.slice(0, keep), ...Array.from({ length: len - keep }, () => int(0, 999))];
    const gen = Array.from({ length: 3 }, () => int(0, 999));
    const cached = Math.min(common(tokens, prompt), cachedSeq.length, prompt.length - 1);
    const warm = await request(cachedSeq, prompt, cached, () => (rand() < 0.3 ? 1 : int(2, 90)), gen);
    const coldSeq = createSequenceAttention(shape, config);
    const cold = await request(coldSeq, prompt, 0, () => 64, gen);
    coldSeq.dispose();
    assert.equal(warm.outs.length, cold.outs.length);
    warm.outs.forEach((o, i) => assert.deepEqual(o, cold.outs[i], `${cfg.method} request ${r} (prompt ${prompt.length}, cached ${cached}): output ${i}`));
    assert.equal(warm.frac, cold.frac, `${cfg.method} request ${r}: sampled fraction`);
    if (warm.frac < 1) sampled++;
    tokens = [...prompt, ...gen];
  }
  cachedSeq.dispose();
  assert.ok(sampled > 0, 'the index was really used');
}

for (const method of ['magicpig', 'topk', 'quest'] as const) {
  test(`${method}: cached == cold, bit for bit, through random truncate/prefill/decode histories`, async () => {
    await history({ method }, 11, [40, 400], 8);
  });
}

test(`magicpig past KBAR_SPAN (k̄ fixed, blocks added and cut incrementally) and bfloat16: cached == cold`, async () => {
  const lengths: [number, number] = [KBAR_SPAN + 40, KBAR_SPAN + 300];
  await history({ method: 'magicpig', tailThreshold: 32 }, 12, lengths, 5);
  await history({ method: 'magicpig', kvDtype: 'bfloat16' }, 13, [40, 300], 4);
});

test('a one-token prefill chunk before endPrefill is exact (prompt), after it a sampled decode step', () => {
  const config: AttentionConfig = { ...defaultAttentionConfig(2), denseLayers: [0], K: 6, L: 20, sinks: 4, window: 8, tailThreshold: 0 };
  const prompt = Array.from({ length: 300 }, (_, i) => (i * 37) % 1000);
  const sampled = createSequenceAttention(shape, { ...config, method: 'magicpig' });
  const dense = createSequenceAttention(shape, { ...config, method: 'dense' });
  for (const a of [sampled, dense]) {
    feed(a, prompt.slice(0, 200), 0);
    a.endPrefill(); // as after an earlier request: the sequence is in decode mode ...
    a.truncate(299); // ... until a new prompt starts
    feed(a, prompt.slice(200, 299), 200);
  }
  // The prompt's one-token remainder (position 299): exact, identical to dense.
  const last = feed(sampled, [prompt[299]], 299), lastDense = feed(dense, [prompt[299]], 299);
  assert.deepEqual(last[1], lastDense[1]);
  sampled.endPrefill();
  dense.endPrefill();
  const step = feed(sampled, [5], 300), stepDense = feed(dense, [5], 300);
  assert.ok(sampled.stats().sampledFraction < 1, 'after endPrefill the step samples');
  assert.notDeepEqual(step[1], stepDense[1]);
});

test('exactLength stops at the first token decoded with sampled attention, and recovers after a truncate before it', () => {
  const config: AttentionConfig = { ...defaultAttentionConfig(2), denseLayers: [0], K: 6, L: 20, sinks: 4, window: 8, tailThreshold: 0 };
  const ids = Array.from({ length: 320 }, (_, i) => (i * 53) % 1000);
  for (const method of ['magicpig', 'dense'] as const) {
    const a = createSequenceAttention(shape, { ...config, method }) as SequenceAttention & { exactLength: number };
    feed(a, ids.slice(0, 300), 0);
    a.endPrefill();
    for (let p = 300; p < 303; p++) feed(a, [ids[p]], p);
    const approx = method === 'dense' ? 303 : 300;
    assert.equal(a.exactLength, approx, method);
    a.truncate(302);
    assert.equal(a.exactLength, Math.min(approx, 302), method);
    a.truncate(299);
    feed(a, ids.slice(299, 310), 299); // a prompt again: exact
    assert.equal(a.exactLength, 310, method);
  }
});
