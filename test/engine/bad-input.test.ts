// Bad model folders fail with one clear UserError naming the file and the problem — in the library and in the CLI
// (exit code 1, a single "snout: ..." line on stderr, no stack trace).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, UserError } from '../../engine/index';
import { makeCheckpoint, rawSafetensors } from '../fixtures/make-checkpoint';
import { repoRoot } from './paths';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-bad-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = () => makeCheckpoint(path.join(root, `m${++counter}`), { layers: 1, seed: counter });

/** A one-tensor-pair file: a [4] and b [4] F32 at the given offsets, with `dataBytes` bytes of data. */
function writeTwoTensors(file: string, a: [number, number], b: [number, number], dataBytes: number): void {
  const header = {
    'model.norm.weight': { dtype: 'F32', shape: [4], data_offsets: a },
    'other.weight': { dtype: 'F32', shape: [4], data_offsets: b },
  };
  writeFileSync(file, rawSafetensors(header, new Uint8Array(dataBytes)));
}

const cases: [string, (dir: string) => void, RegExp][] = [
  ['truncated safetensors file', (dir) => {
    const f = path.join(dir, 'model.safetensors');
    truncateSync(f, Math.floor(statSync(f).size / 2));
  }, /model\.safetensors: .*(past the end|truncated)/],
  ['file shorter than its header length', (dir) => {
    const f = path.join(dir, 'model.safetensors');
    truncateSync(f, 100);
  }, /model\.safetensors: header length \d+ does not fit/],
  ['header offsets past the end', (dir) => {
    writeTwoTensors(path.join(dir, 'model.safetensors'), [0, 16], [16, 32], 24);
  }, /model\.safetensors: tensor "other\.weight": data_offsets \[16, 32\] run past the end/],
  ['overlapping tensors', (dir) => {
    writeTwoTensors(path.join(dir, 'model.safetensors'), [0, 16], [8, 24], 32);
  }, /model\.safetensors: tensors "model\.norm\.weight" and "other\.weight" overlap/],
  ['header that is not JSON', (dir) => {
    const f = path.join(dir, 'model.safetensors');
    const buf = readFileSync(f);
    buf.write('!', 8);
    writeFileSync(f, buf);
  }, /model\.safetensors: header is not valid JSON/],
  ['unknown dtype', (dir) => {
    writeFileSync(path.join(dir, 'model.safetensors'), rawSafetensors({ x: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)));
  }, /tensor "x": unsupported dtype "I8"/],
  ['wrong shape vs config', (dir) => {
    const f = path.join(dir, 'config.json');
    const c = JSON.parse(readFileSync(f, 'utf8'));
    writeFileSync(f, JSON.stringify({ ...c, intermediate_size: c.intermediate_size + 2 }));
  }, /model\.safetensors: tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[48,32\] but config\.json implies \[50,32\]/],
  ['missing tensor', (dir) => {
    const f = path.join(dir, 'config.json');
    const c = JSON.parse(readFileSync(f, 'utf8'));
    writeFileSync(f, JSON.stringify({ ...c, tie_word_embeddings: false }));
  }, /checkpoint has no tensor "lm_head\.weight"/],
  ['unknown model_type', (dir) => {
    const f = path.join(dir, 'config.json');
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), model_type: 'gpt2' }));
  }, /config\.json: unsupported model_type "gpt2"/],
  ['unsupported rope scaling', (dir) => {
    const f = path.join(dir, 'config.json');
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), rope_scaling: { rope_type: 'yarn', factor: 4 } }));
  }, /config\.json: unsupported rope_scaling type "yarn"/],
  ['missing tokenizer', (dir) => unlinkSync(path.join(dir, 'tokenizer.json')), /tokenizer\.json: not found/],
  ['missing config', (dir) => unlinkSync(path.join(dir, 'config.json')), /config\.json: not found/],
];

describe('bad model folders', () => {
  for (const [name, corrupt, message] of cases) {
    it(`${name} → UserError`, async () => {
      const { dir } = fresh();
      corrupt(dir);
      await assert.rejects(loadModel(dir, { provider: 'cpu' }), (err: unknown) => {
        assert.ok(err instanceof UserError, `not a UserError: ${err}`);
        assert.match((err as Error).message, message);
        return true;
      });
    });
  }

  it('CLI: exit code 1 and one line on stderr, no stack', () => {
    const { dir } = fresh();
    truncateSync(path.join(dir, 'model.safetensors'), 200);
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli.js'), 'logits', '--model', dir, '--ids', '1,2,3'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !/execution provider/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^snout: .*model\.safetensors: /);
  });

  it('CLI: bad flag values are one-line user errors', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli.js'), 'generate', '--model', root, '--prompt', 'x', '--max-tokens', 'many'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), 'snout: generate: --max-tokens must be a whole number >= 0, got "many"');
  });

  it('out-of-vocabulary ids and empty prompts are user errors', async () => {
    const { dir } = fresh();
    const model = await loadModel(dir, { provider: 'cpu' });
    try {
      await assert.rejects(model.logits([1, 64]), /token id 64 is outside the vocabulary/);
      await assert.rejects(model.generate(model.newSequence(), { ids: [], maxTokens: 1, sampling: { temperature: 0, topP: 1, seed: 0 } }), /prompt is empty/);
    } finally {
      await model.dispose();
    }
  });

  it('a NaN in the weights is a clear user error (dense and magicpig), and the model keeps serving', async () => {
    const { dir } = fresh();
    // One NaN in layer 0's k_proj (a corrupt checkpoint that still parses): every logit becomes NaN.
    const file = path.join(dir, 'model.safetensors'), buf = readFileSync(file);
    const hl = Number(buf.readBigUInt64LE(0)), header = JSON.parse(buf.subarray(8, 8 + hl).toString());
    const name = Object.keys(header).find((k) => k.includes('layers.0.self_attn.k_proj'))!;
    buf.writeFloatLE(NaN, 8 + hl + header[name].data_offsets[0]);
    writeFileSync(file, buf);
    for (const method of ['dense', 'magicpig'] as const) {
      const model = await loadModel(dir, { provider: 'cpu', attention: { method, sinks: 4, window: 8, tailThreshold: 8 } });
      try {
        const ids = Array.from({ length: 120 }, (_, i) => 3 + ((i * 7) % 60));
        const request = () => model.generate(model.newSequence(), { ids, maxTokens: 3, sampling: { temperature: 0, topP: 1, seed: 0 } });
        await assert.rejects(request(), (e: Error) => e instanceof UserError && /non-finite logit \(NaN/.test(e.message), method);
        await assert.rejects(model.logits([1, 5, 9]), /non-finite logit/);
        await assert.rejects(request(), /non-finite logit/); // the same clear error again, not a broken state
      } finally {
        await model.dispose();
      }
    }
  });
});
