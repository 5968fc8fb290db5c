// GGUF files through loadModel end to end. F32 files: the safetensors golden's logits and greedy tokens, same
// tolerances. Every block format (tiny-coder, whose rows hold whole K-quant super-blocks): at accuracy level 0 (float32
// compute) the logits equal the float64 reference forward run on the file's own dequantized weights. Q8_0 at the
// default accuracy level: within a measured bound of the golden, keeping the greedy tokens wherever the golden's top-2
// gap is wider than twice that bound.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, type LoadedModel } from '../../engine/index';
import { openGguf } from '../../engine/model/gguf';
import { dequantRow64, isQuant } from '../../engine/model/quant';
import { expectedShapes } from '../../engine/model/weights';
import { writeHfAsGguf, type GgufType, type HfToGgufOptions } from '../fixtures/gguf-writer';
import { referenceForward, type RefTensor } from '../reference/llama-f64';
import { hasModel, maxAbsDiff, modelDir, readGolden } from '../engine/paths';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-gguf-logits-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const greedy = { temperature: 0, topP: 1, seed: 0 };

async function withGguf(name: string, type: GgufType, run: (m: LoadedModel, file: string) => Promise<void>, o: HfToGgufOptions & { accuracyLevel?: number } = {}): Promise<void> {
  const file = path.join(tmp, `${name}-${type}-${o.accuracyLevel ?? 'default'}.gguf`);
  writeHfAsGguf(modelDir(name), file, type, o);
  // Level 0 is compared with a float64 reference: the KV cache is then pinned to float32 (else the packed default,
  // bfloat16), so that the comparison is about the weights.
  const attention = o.accuracyLevel === 0 ? { kvDtype: 'float32' as const } : undefined;
  const model = await loadModel(file, { provider: 'cpu', accuracyLevel: o.accuracyLevel, attention });
  try {
    assert.equal(model.weights?.format, 'gguf');
    await run(model, file);
  } finally {
    await model.dispose();
  }
}

/** Greedy ids equal the golden's until a step whose golden top-2 gap is under `gap` (where a flip is allowed). */
async function greedyMatches(model: LoadedModel, ids: number[], want: number[], gaps: number[] | undefined, gap: number): Promise<void> {
  const r = await model.generate(model.newSequence(), { ids, maxTokens: want.length, sampling: greedy });
  for (let i = 0; i < r.ids.length; i++) {
    if (r.ids[i] === want[i]) continue;
    assert.ok(gaps && gaps[i] < gap, `token ${i}: ${r.ids[i]} vs ${want[i]} (golden top-2 gap ${gaps?.[i]})`);
    return;
  }
  if (r.finishReason === 'eos') assert.ok(model.tokenizer.eosIds.includes(want[r.ids.length]));
  else assert.equal(r.ids.length, want.length);
}

function top2Gap(logits: ArrayLike<number>): number {
  let a = -Infinity, b = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > a) { b = a; a = logits[i]; } else if (logits[i] > b) b = logits[i];
  }
  return a - b;
}

describe('stories260K-hf as GGUF through loadModel', { skip: !hasModel('stories260K-hf') && 'stories260K-hf not found' }, () => {
  const golden = hasModel('stories260K-hf') ? readGolden('stories260K-hf') : undefined;

  it('F32: the golden logits (1e-4, 2e-4 over 400 tokens) and 64 greedy tokens', () => withGguf('stories260K-hf', 'F32', async (m) => {
    assert.equal(m.weights?.packed, false);
    assert.deepEqual(m.tokenizer.encode(golden.prompt.text), golden.prompt.input_ids);
    assert.ok(maxAbsDiff(await m.logits(golden.prompt.input_ids), golden.prompt.last_logits) <= 1e-4);
    assert.ok(maxAbsDiff(await m.logits(golden.long_400.input_ids), golden.long_400.last_logits) <= 2e-4);
    await greedyMatches(m, golden.prompt.input_ids, golden.prompt.greedy_64_ids, undefined, 0);
  }));

  // Measured: 0.266 (prompt) and 0.263 (long_400) on logits of scale 13-16; all 64 greedy tokens kept here.
  it('Q8_0: logits within 0.35 of the golden, greedy tokens until a top-2 gap under 0.7', async () => {
    // The golden has no per-step gaps for stories260K: take them from the float32 safetensors model.
    const ref = await loadModel(modelDir('stories260K-hf'), { provider: 'cpu' });
    const gaps: number[] = [];
    try {
      const want = golden.prompt.greedy_64_ids as number[];
      for (let i = 0; i < want.length; i++) gaps.push(top2Gap(await ref.logits([...golden.prompt.input_ids, ...want.slice(0, i)])));
    } finally {
      await ref.dispose();
    }
    await withGguf('stories260K-hf', 'Q8_0', async (m) => {
      assert.equal(m.weights?.packed, true);
      for (const c of [golden.prompt, golden.long_400]) {
        const d = maxAbsDiff(await m.logits(c.input_ids), c.last_logits);
        assert.ok(d <= 0.35, `max abs diff ${d}`);
      }
      await greedyMatches(m, golden.prompt.input_ids, golden.prompt.greedy_64_ids, gaps, 0.7);
    });
  });
});

describe('tiny-coder-hf as GGUF through loadModel', { skip: !hasModel('tiny-coder-hf') && 'tiny-coder-hf not found' }, () => {
  const golden = hasModel('tiny-coder-hf') ? readGolden('tiny-coder-hf') : { cases: [] };

  it('F32: every case within 2e-4 of the golden, greedy tokens', () => withGguf('tiny-coder-hf', 'F32', async (m) => {
    for (const c of golden.cases) {
      assert.deepEqual(m.tokenizer.encode(c.text), c.input_ids);
      const d = maxAbsDiff(await m.logits(c.input_ids), c.last_logits);
      assert.ok(d <= 2e-4, `${c.name}: max abs diff ${d}`);
      await greedyMatches(m, c.input_ids, c.greedy_ids, c.top2_logit_gaps, 1e-3);
    }
  }));

  // Measured: 0.069, 0.080, 0.061 on logits of scale 11-14; the first greedy flip comes where the golden's top-2 gap
  // is 0.006 or 0.016.
  it('Q8_0: every case within 0.12 of the golden, greedy tokens until a top-2 gap under 0.24', () => withGguf('tiny-coder-hf', 'Q8_0', async (m) => {
    for (const c of golden.cases) {
      const d = maxAbsDiff(await m.logits(c.input_ids), c.last_logits);
      assert.ok(d <= 0.12, `${c.name}: max abs diff ${d}`);
      await greedyMatches(m, c.input_ids, c.greedy_ids, c.top2_logit_gaps, 0.24);
    }
  }));

  const config = hasModel('tiny-coder-hf') ? JSON.parse(readFileSync(path.join(modelDir('tiny-coder-hf'), 'config.json'), 'utf8')) : {};
  const formats: Array<[string, GgufType, HfToGgufOptions]> = [
    ['Q8_0', 'Q8_0', {}], ['Q4_0', 'Q4_0', {}], ['Q4_1', 'Q4_1', {}], ['Q4_K', 'Q4_K', {}], ['Q5_K', 'Q5_K', {}], ['Q6_K', 'Q6_K', {}],
    // A Q4_K_M-like mix: Q6_K embedding and v/down, F16 and BF16 matrices beside packed ones.
    ['mixed', 'Q4_K', { typeFor: (hf) => (/embed|v_proj|down/.test(hf) ? 'Q6_K' : /o_proj/.test(hf) ? 'F16' : /gate/.test(hf) ? 'BF16' : 'Q4_K') }],
  ];
  for (const [label, type, o] of formats) {
    it(`${label}: accuracy level 0 gives the float64 reference forward on the file's dequantized weights (1e-4)`, () =>
      withGguf('tiny-coder-hf', type, async (m, file) => {
        assert.equal(m.weights?.packed, true);
        const source = openGguf(file);
        const tensors = new Map<string, RefTensor>();
        for (const [hf, shape] of expectedShapes(source.spec)) {
          const w = source.weight(hf);
          let values: Float64Array;
          if (isQuant(w)) {
            values = new Float64Array(w.N * w.K);
            for (let n = 0; n < w.N; n++) values.set(dequantRow64(w, n), n * w.K);
          } else values = Float64Array.from(w);
          tensors.set(hf, { shape, values });
        }
        source.close();
        const ids = golden.cases[2].input_ids.slice(0, 12);
        const ref = referenceForward(config, tensors, ids);
        for (const n of [1, 12]) {
          const d = maxAbsDiff(await m.logits(ids.slice(0, n)), ref[n - 1]);
          assert.ok(d <= 1e-4, `${label}, ${n} tokens: max abs diff ${d}`);
        }
      }, { ...o, accuracyLevel: 0 }));
  }
});
