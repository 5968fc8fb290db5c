// Fidelity capture on the real tiny model: the recorded q/k/v reproduce the recorded exact output (float64 reference
// computed here), dense replay reproduces it, and every (step, layer, head) gets a row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../engine/index';
import { captureDecode, fidelityRows, replay } from '../../engine/eval/fidelity';
import { packedPrompts } from '../../engine/eval/packed';
import { defaultAttentionConfig } from '../../engine/attention/types';

const repoRoot = path.resolve(__dirname, '../..');
const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
const modelDir = path.join(sharedDir, 'models/tiny-coder-hf');

test('fidelity: capture matches a float64 attention reference; dense replay is exact; rows cover steps × layers × heads',
  { skip: existsSync(modelDir) ? false : 'tiny-coder-hf not found', timeout: 120_000 }, async () => {
    const model = await loadModel(modelDir, { provider: 'cpu', log: () => {} });
    try {
      const [p] = packedPrompts(model.tokenizer, [path.join(repoRoot, 'test/fixtures/eval-repo')], 1, 600);
      assert.equal(p.ids.length, 600);
      const steps = 3;
      const cap = await captureDecode(model, p.ids, steps);
      const { numLayers, numHeads: H, numKvHeads: G, headDim: d } = cap.shape;
      const decode = cap.calls.filter((c) => c.decode);
      assert.equal(decode.length, numLayers * (steps - 1)); // the first generated token comes from prefill logits

      // Independent reference: softmax(q·K/√d)·V over every recorded key of that layer, in float64.
      const last = decode[decode.length - 1];
      const layerCalls = cap.calls.filter((c) => c.layer === last.layer);
      const K = layerCalls.flatMap((c) => Array.from(c.k)), V = layerCalls.flatMap((c) => Array.from(c.v));
      const n = K.length / (G * d);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / G));
        const s = Array.from({ length: n }, (_, j) => { let t = 0; for (let i = 0; i < d; i++) t += last.q[h * d + i] * K[(j * G + g) * d + i]; return t / Math.sqrt(d); });
        const mx = Math.max(...s);
        const w = s.map((x) => Math.exp(x - mx));
        const z = w.reduce((a, b) => a + b, 0);
        for (let i = 0; i < d; i++) {
          let o = 0;
          for (let j = 0; j < n; j++) o += (w[j] / z) * V[(j * G + g) * d + i];
          assert.ok(Math.abs(o - last.out[h * d + i]) < 1e-4 * (1 + Math.abs(o)), `head ${h} dim ${i}: ${o} vs ${last.out[h * d + i]}`);
        }
      }

      const dense = await replay(cap, { ...defaultAttentionConfig(numLayers), method: 'dense' });
      dense.outs.forEach((o, i) => o.forEach((x, j) => assert.ok(Math.abs(x - decode[i].out[j]) < 1e-5)));

      const { rows, sampled } = await fidelityRows(cap, p.name, [{ label: 'magicpig', method: 'magicpig', K: 8, L: 75 }, { label: 'topk', method: 'topk', K: 8, L: 75 }]);
      assert.equal(rows.length, (steps - 1) * numLayers * H);
      for (const r of rows) {
        assert.ok(r.flatness >= 0 && r.flatness <= 1 + 1e-9 && r.top20Mass >= 0.2 - 1e-9 && r.top20Mass <= 1 + 1e-9);
        assert.ok(Number.isFinite(r.error.magicpig) && Number.isFinite(r.error.topk));
      }
      assert.ok(sampled.magicpig > 0 && sampled.magicpig < 1, JSON.stringify(sampled));

      // Overrides reach the replayed attention: with tailThreshold 1 every key past the window is indexed (532 of the
      // 600-token prompt's keys instead of 512, two blocks of 256), so MagicPIG samples from a different set.
      const tail1 = await fidelityRows(cap, p.name, [{ label: 'magicpig', method: 'magicpig', K: 8, L: 75 }], { tailThreshold: 1 });
      const differs = tail1.rows.some((r, i) => r.error.magicpig !== rows[i].error.magicpig);
      assert.ok(differs, 'tailThreshold 1 changed no head-step');
    } finally {
      await model.dispose();
    }
  });
