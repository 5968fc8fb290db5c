// Quantized linear layers (MatMulNBits) end to end: random checkpoints loaded with --weights int8/int4 against the
// float64 reference forward run on the same weights, dequantized from the packed form (quant.ts's dequantRow64,
// itself checked element by element below against the definition of round-to-nearest).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../engine/index';
import { dequantRow64, quantizeRtn, type QuantBits } from '../../engine/model/quant';
import { packedBlockSize } from '../../engine/model/safetensors-source';
import { makeCheckpoint, type Checkpoint, type CheckpointOptions } from '../fixtures/make-checkpoint';
import { referenceForward, type RefTensor } from '../reference/llama-f64';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-quant-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The checkpoint's tensors as the packed model holds them: each matrix quantized, then dequantized in float64. */
function packedTensors(ckpt: Checkpoint, bits: QuantBits): Map<string, RefTensor> {
  const out = new Map<string, RefTensor>();
  for (const [name, t] of ckpt.tensors) {
    if (t.shape.length !== 2 || t.shape[1] % 32 !== 0) { out.set(name, t); continue; }
    const [N, K] = t.shape;
    const isHead = name === 'model.embed_tokens.weight' || name === 'lm_head.weight';
    const b = isHead ? 8 : bits;
    const m = quantizeRtn(Float32Array.from(t.values), N, K, b, packedBlockSize(b, K));
    const values = new Float64Array(N * K);
    for (let n = 0; n < N; n++) values.set(dequantRow64(m, n), n * K);
    out.set(name, { shape: t.shape, values });
  }
  return out;
}

describe('quantizeRtn', () => {
  for (const bits of [4, 8] as const) {
    it(`${bits}-bit: every element within half a step of its value, scale = max|w| / (2^(bits-1) - 1)`, () => {
      const N = 5, K = 64;
      const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 13)) * 0.01);
      w[3] = 0; w.fill(0, 32, 64); // a zero block
      const m = quantizeRtn(w, N, K, bits, 32);
      const qmax = 2 ** (bits - 1) - 1;
      for (let n = 0; n < N; n++) {
        const row = dequantRow64(m, n);
        for (let b = 0; b < 2; b++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(w[n * K + b * 32 + i]));
          const step = amax / qmax;
          assert.ok(Math.abs(m.scales[n * 2 + b] - step) <= 1e-7 * Math.max(1, step));
          for (let i = 0; i < 32; i++) {
            const k = b * 32 + i;
            assert.ok(Math.abs(row[k] - w[n * K + k]) <= step / 2 + 1e-7, `row ${n} col ${k}: ${row[k]} vs ${w[n * K + k]}`);
          }
        }
      }
    });
  }
});

const shapes: [string, CheckpointOptions][] = [
  ['llama, tied, GQA', { hidden: 64, intermediate: 96, heads: 4, kvHeads: 2, layers: 2, vocab: 96, seed: 11 }],
  ['qwen2, untied, q/k/v biases', { modelType: 'qwen2', tie: false, hidden: 64, intermediate: 128, heads: 4, kvHeads: 2, layers: 2, vocab: 96, seed: 12 }],
];
const ids = Array.from({ length: 12 }, (_, i) => 3 + ((i * 7 + 5) % 90));

describe('packed models vs the float64 reference on the same (dequantized) weights', () => {
  for (const [name, options] of shapes) {
    for (const weights of ['int8', 'int4'] as const) {
      it(`${name}, ${weights}`, async () => {
        const ckpt = makeCheckpoint(path.join(root, `${name.replace(/\W+/g, '_')}_${weights}`), { scale: 0.05, ...options });
        const ref = referenceForward(ckpt.config, packedTensors(ckpt, weights === 'int8' ? 8 : 4), ids);
        // accuracy level 0 computes in float32: the packed weights must then give the reference's logits (1e-4).
        // Level 4 (the default) also rounds activations to int8 per block of 32, which alone moves logits by up to
        // a few percent of their scale on these random weights.
        // The KV cache is pinned to float32 here (a packed model's default is bfloat16, checked below), so that the
        // comparison is about the weights.
        for (const [accuracyLevel, bound] of [[0, 1e-4], [4, 0.04]] as const) {
          const model = await loadModel(ckpt.dir, { provider: 'cpu', weights, cacheDir: null, prefillChunk: 5, accuracyLevel, attention: { kvDtype: 'float32' } });
          try {
            assert.equal(model.weights?.packed, true);
            for (const n of [1, 7, 12]) {
              const logits = await model.logits(ids.slice(0, n));
              let scale = 0, diff = 0;
              for (let v = 0; v < logits.length; v++) { scale = Math.max(scale, Math.abs(ref[n - 1][v])); diff = Math.max(diff, Math.abs(logits[v] - ref[n - 1][v])); }
              const limit = accuracyLevel === 0 ? bound : bound * Math.max(scale, 1);
              assert.ok(diff <= limit, `accuracy ${accuracyLevel}, prefix ${n}: max abs diff ${diff} (logit scale ${scale})`);
            }
          } finally {
            await model.dispose();
          }
        }
      });
    }
  }
});

it('a packed model keeps a bfloat16 KV cache by default (half the bytes), close to the float32 one', async () => {
  const [name, options] = shapes[1];
  const ckpt = makeCheckpoint(path.join(root, 'kv_default'), { scale: 0.05, ...options });
  const packed = await loadModel(ckpt.dir, { provider: 'cpu', weights: 'int8', cacheDir: null, prefillChunk: 5, accuracyLevel: 0 });
  const exact = await loadModel(ckpt.dir, { provider: 'cpu', weights: 'int8', cacheDir: null, prefillChunk: 5, accuracyLevel: 0, attention: { kvDtype: 'float32' } });
  const f32 = await loadModel(ckpt.dir, { provider: 'cpu', weights: 'f32', cacheDir: null });
  try {
    // K and V at 2 bytes instead of 4 (the decode workspace beside them stays float32).
    const ratio = packed.estimateBytes!(1000).kv / exact.estimateBytes!(1000).kv;
    assert.ok(ratio > 0.5 && ratio < 0.6, `${name}: ${ratio}`);
    assert.equal(f32.estimateBytes!(1000).kv, exact.estimateBytes!(1000).kv, 'a float32 model keeps a float32 cache');
    const a = await packed.logits(ids), b = await exact.logits(ids);
    let diff = 0, scale = 0;
    for (let v = 0; v < a.length; v++) { diff = Math.max(diff, Math.abs(a[v] - b[v])); scale = Math.max(scale, Math.abs(b[v])); }
    // bfloat16 keeps 8 bits of mantissa: K and V move by up to 2^-9 of themselves.
    assert.ok(diff > 0 && diff <= 0.01 * Math.max(scale, 1), `max abs diff ${diff} (logit scale ${scale})`);
  } finally {
    await Promise.all([packed.dispose(), exact.dispose(), f32.dispose()]);
  }
});

// Both forms of the cache: plain graphs (the default) and onnxruntime's saved prepacked form (SNOUT_PREPACKED=1,
// prepacked.ts), whose small-model graphs are the case onnxruntime's own save gets wrong.
for (const prepacked of [false, true]) describe(`the packed model cache (graph-cache.ts)${prepacked ? ', saved prepacked (SNOUT_PREPACKED=1)' : ''}`, () => {
  const opts = { hidden: 64, intermediate: 96, heads: 4, kvHeads: 2, layers: 2, vocab: 96, seed: 21, scale: 0.05 };
  const root = mkdtempSync(path.join(os.tmpdir(), `snout-quant-cache${prepacked ? '-pp' : ''}-`));
  after(() => rmSync(root, { recursive: true, force: true }));
  const saved = process.env.SNOUT_PREPACKED;
  before(() => { process.env.SNOUT_PREPACKED = prepacked ? '1' : '0'; });
  after(() => { if (saved === undefined) delete process.env.SNOUT_PREPACKED; else process.env.SNOUT_PREPACKED = saved; });
  const logitsOf = async (dir: string, cacheDir: string | null, log?: (l: string) => void) => {
    const model = await loadModel(dir, { provider: 'cpu', weights: 'int8', cacheDir, log });
    try {
      return { logits: await model.logits(ids), cache: model.weights?.cache };
    } finally {
      await model.dispose();
    }
  };

  it('the second load reads the cached graphs and gives the same logits bit for bit', async () => {
    const ckpt = makeCheckpoint(path.join(root, 'cache_roundtrip'), opts);
    const cacheDir = path.join(root, 'cache_roundtrip_cache');
    const first = await logitsOf(ckpt.dir, cacheDir);
    const second = await logitsOf(ckpt.dir, cacheDir);
    const uncached = await logitsOf(ckpt.dir, null);
    assert.equal(first.cache, 'written');
    assert.equal(second.cache, 'hit');
    assert.equal(uncached.cache, 'none');
    assert.deepEqual(second.logits, first.logits);
    assert.deepEqual(uncached.logits, first.logits);
    const [folder] = readdirSync(path.join(cacheDir, 'graphs'));
    const dataFiles = readdirSync(path.join(cacheDir, 'graphs', folder)).filter((n) => n.endsWith('.data'));
    assert.equal(dataFiles.length, prepacked ? 4 : 0, `head and 3 layer graphs saved prepacked: ${dataFiles}`);
  });

  for (const [what, damage] of [
    ['a truncated graph', (dir: string) => { const f = path.join(dir, 'layer-1.onnx'); truncateSync(f, Math.floor(statSync(f).size / 2)); }],
    ['a flipped byte in the embedding table', (dir: string) => {
      const f = path.join(dir, 'embed.snoutw'); const b = readFileSync(f); b[9] ^= 0xff; writeFileSync(f, b);
    }],
    ['a garbage graph file', (dir: string) => writeFileSync(path.join(dir, 'head.onnx'), 'not a model')],
    // The saved prepacked form (prepacked.ts): weights in a data file a session maps.
    ...(prepacked ? [['a truncated data file', (dir: string) => {
      const [f] = readdirSync(dir).filter((n) => n.startsWith('layer-1.') && n.endsWith('.data'));
      assert.ok(f, `a saved graph's data file in ${readdirSync(dir).join(', ')}`);
      truncateSync(path.join(dir, f), statSync(path.join(dir, f)).size - 100);
    }] as const] : []),
  ] as const) {
    it(`${what} is detected, logged, deleted and rebuilt`, async () => {
      const ckpt = makeCheckpoint(path.join(root, `cache_${what.replace(/\W+/g, '_')}`), opts);
      const cacheDir = path.join(root, `cache_${what.replace(/\W+/g, '_')}_cache`);
      const first = await logitsOf(ckpt.dir, cacheDir);
      const [folder] = readdirSync(path.join(cacheDir, 'graphs'));
      damage(path.join(cacheDir, 'graphs', folder));
      const lines: string[] = [];
      const again = await logitsOf(ckpt.dir, cacheDir, (l) => lines.push(l));
      assert.equal(again.cache, 'written');
      assert.ok(lines.some((l) => l.includes('unusable') && l.includes('rebuilding')), lines.join('\n'));
      assert.deepEqual(again.logits, first.logits);
      assert.equal((await logitsOf(ckpt.dir, cacheDir)).cache, 'hit');
    });
  }

  it('a cache folder that cannot be written leaves the model working, with one log line', async () => {
    const ckpt = makeCheckpoint(path.join(root, 'cache_readonly'), opts);
    const blocker = path.join(root, 'cache_readonly_file');
    writeFileSync(blocker, 'a file where the cache folder should be');
    const lines: string[] = [];
    const r = await logitsOf(ckpt.dir, blocker, (l) => lines.push(l));
    assert.equal(r.cache, 'none');
    assert.equal(lines.filter((l) => l.includes('cannot write the model cache')).length, 1, lines.join('\n'));
    assert.deepEqual(r.logits, (await logitsOf(ckpt.dir, null)).logits);
  });

  it('another weights setting or a changed checkpoint never reads the old files', async () => {
    const ckpt = makeCheckpoint(path.join(root, 'cache_identity'), opts);
    const cacheDir = path.join(root, 'cache_identity_cache');
    await logitsOf(ckpt.dir, cacheDir);
    const int4 = await loadModel(ckpt.dir, { provider: 'cpu', weights: 'int4', cacheDir });
    assert.equal(int4.weights?.cache, 'written');
    await int4.dispose();
    const f = path.join(ckpt.dir, 'model.safetensors');
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    assert.equal((await logitsOf(ckpt.dir, cacheDir)).cache, 'written');
  });
});
