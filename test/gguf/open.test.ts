// openGguf on files test/fixtures/gguf-writer wrote from Hugging Face folders: the F32 files give back exactly the
// safetensors weights (llama's q/k permutation undone, qwen2's left alone) and the ModelSpec config.json gives; the
// block formats come back packed and dequantize exactly like the float64 reference of the file's own bytes.
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, mkdtempSync, openSync, readSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readConfig } from '../../engine/model/config';
import { openGguf } from '../../engine/model/gguf';
import { dequantRow64, isQuant, quantBytes, type WeightTensor } from '../../engine/model/quant';
import { SafetensorsStore } from '../../engine/model/safetensors';
import { expectedShapes } from '../../engine/model/weights';
import { makeCheckpoint } from '../fixtures/make-checkpoint';
import { fallbackType, ggmlTypes, ggufName, permuteQk, writeHfAsGguf, type GgufType } from '../fixtures/gguf-writer';
import { hasModel, modelDir } from '../engine/paths';
import { dequantize64 } from './reference';

const tmp = mkdtempSync(path.join(tmpdir(), 'snout-gguf-open-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function assertExactWeights(dir: string, file: string): void {
  const store = SafetensorsStore.open(dir);
  const s = openGguf(file);
  try {
    assert.deepEqual(s.spec, readConfig(dir));
    assert.equal(s.format, 'gguf');
    for (const name of store.names()) {
      const w = s.weight(name);
      assert.ok(w instanceof Float32Array, name);
      assert.deepEqual(w, store.read(name), name);
    }
  } finally {
    s.close();
  }
}

for (const name of ['stories260K-hf', 'tiny-coder-hf']) {
  describe(`${name} as GGUF`, { skip: !hasModel(name) && `${name} not found` }, () => {
    it('F32: exactly the safetensors weights and the config.json spec', () => {
      const file = path.join(tmp, `${name}-F32.gguf`);
      writeHfAsGguf(modelDir(name), file, 'F32');
      assertExactWeights(modelDir(name), file);
    });
  });
}

/** A random checkpoint with stories260K's SentencePiece tokenizer (GGUF needs a BPE or SentencePiece vocabulary). */
function checkpoint(dir: string, o: Parameters<typeof makeCheckpoint>[1]): void {
  makeCheckpoint(dir, { ...o, vocab: 512 });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(modelDir('stories260K-hf'), f), path.join(dir, f));
}

describe('synthetic checkpoints', { skip: !hasModel('stories260K-hf') && 'stories260K-hf not found (its tokenizer is used)' }, () => {
  it('llama with q/k/v/o biases: permuted rows and biases come back in Hugging Face order', () => {
    const dir = path.join(tmp, 'llama-bias');
    checkpoint(dir, { modelType: 'llama', attentionBias: true, mlpBias: true, hidden: 64, heads: 4, kvHeads: 2, layers: 2, tie: false, dtype: 'BF16' });
    const file = path.join(tmp, 'llama-bias.gguf');
    writeHfAsGguf(dir, file, 'F32');
    assertExactWeights(dir, file);
  });

  it('the permutation is really there in the file (reading q without undoing it differs)', () => {
    // Guards the test above: the writer permutes, so a reader that skipped the inverse would fail it.
    const v = Float32Array.from({ length: 16 * 3 }, (_, i) => i);
    assert.notDeepEqual(permuteQk(v, 16, 3, 2), v);
  });

  it('qwen2 (q/k/v biases, not permuted, untied head, linear RoPE scaling)', () => {
    const dir = path.join(tmp, 'qwen2');
    checkpoint(dir, { modelType: 'qwen2', hidden: 64, heads: 4, kvHeads: 2, layers: 2, tie: false, ropeScaling: { type: 'linear', factor: 2 }, ropeTheta: 1e6 });
    const file = path.join(tmp, 'qwen2.gguf');
    writeHfAsGguf(dir, file, 'F16');
    const s = openGguf(file);
    assert.deepEqual(s.spec, readConfig(dir));
    assert.equal(s.spec.attentionBias, true);
    // F16 storage rounds; compare against the same rounding of the safetensors values (the writer's F16 encoder).
    const store = SafetensorsStore.open(dir);
    const q = s.weight('model.layers.1.self_attn.q_proj.weight') as Float32Array;
    const ref = store.read('model.layers.1.self_attn.q_proj.weight');
    let maxRel = 0;
    for (let i = 0; i < q.length; i++) maxRel = Math.max(maxRel, Math.abs(q[i] - ref[i]) / Math.max(1e-3, Math.abs(ref[i])));
    assert.ok(maxRel < 1e-3, `F16 q_proj relative error ${maxRel} (unpermuted rows would differ wholesale)`);
    s.close();
  });
});

/** The reference for one tensor: float64 dequantization of its bytes in the file, rows back in Hugging Face order. */
function referenceOf(file: string, offset: number, type: GgufType, N: number, K: number, heads: number): Float64Array {
  const { block, bytes } = ggmlTypes[type];
  const raw = new Uint8Array((N * K / block) * bytes);
  const fd = openSync(file, 'r');
  readSync(fd, raw, 0, raw.length, offset);
  closeSync(fd);
  const fileOrder = dequantize64(type, raw);
  if (!heads) return fileOrder;
  // permuteQk maps Hugging Face order → file order; apply it to row indices to find each Hugging Face row in the file.
  const idx = permuteQk(Float32Array.from({ length: N }, (_, i) => i), N, 1, heads);
  const out = new Float64Array(N * K);
  for (let fr = 0; fr < N; fr++) out.set(fileOrder.subarray(fr * K, (fr + 1) * K), idx[fr] * K);
  return out;
}

describe('tiny-coder-hf block formats through openGguf', { skip: !hasModel('tiny-coder-hf') && 'tiny-coder-hf not found' }, () => {
  const dir = modelDir('tiny-coder-hf');
  for (const type of ['Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_K', 'Q6_K'] as GgufType[]) {
    it(`${type}: every matrix packed, dequantizing exactly to the reference of its bytes`, () => {
      const file = path.join(tmp, `tiny-${type}.gguf`);
      const { offsets } = writeHfAsGguf(dir, file, type);
      const s = openGguf(file);
      const store = SafetensorsStore.open(dir);
      const spec = readConfig(dir);
      let packed = 0, floatBytes = 0;
      for (const [hf, shape] of expectedShapes(spec)) {
        const w: WeightTensor = s.weight(hf);
        if (shape.length === 1) { assert.ok(w instanceof Float32Array, hf); continue; }
        const [N, K] = shape;
        const stored = fallbackType(type, K);
        assert.ok(isQuant(w), `${hf} should be packed`);
        packed += quantBytes(w);
        floatBytes += N * K * 4;
        const heads = /q_proj/.test(hf) ? spec.numHeads : /k_proj/.test(hf) ? spec.numKvHeads : 0;
        const ref = referenceOf(file, offsets.get(ggufName(hf))!, stored, N, K, heads);
        for (let n = 0; n < N; n++) {
          const row = dequantRow64(w, n);
          for (let k = 0; k < K; k++) if (row[k] !== ref[n * K + k]) assert.fail(`${hf}[${n}, ${k}]: ${row[k]} vs ${ref[n * K + k]}`);
        }
        // And it is the checkpoint's weight, quantized (the writer's round-to-nearest error, loosely bounded).
        const orig = store.read(hf);
        let err = 0, amax = 0;
        for (let i = 0; i < orig.length; i++) { err = Math.max(err, Math.abs(ref[i] - orig[i])); amax = Math.max(amax, Math.abs(orig[i])); }
        assert.ok(err < amax * (type === 'Q8_0' ? 0.02 : 0.2), `${hf}: max error ${err} of max |w| ${amax}`);
      }
      assert.ok(packed < floatBytes / 2.5, `${type}: ${packed} bytes packed vs ${floatBytes} as float32`);
      s.close();
    });
  }

  it('fingerprint follows the file (mtime) and weight() after close throws', () => {
    const file = path.join(tmp, 'tiny-fp.gguf');
    writeHfAsGguf(dir, file, 'Q8_0');
    const a = openGguf(file);
    const fp = a.fingerprint;
    a.close();
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const b = openGguf(file);
    assert.notEqual(b.fingerprint, fp);
    assert.ok(b.fingerprint.includes(file));
    b.close();
    assert.throws(() => b.weight('model.norm.weight'), /after close/);
  });
});
