// Which model folder the extension loads: the setting, else the one inside the extension, else ../shared.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isGgufModel, isModelDir, isModelPath, resolveModelDir } from '../../extension/engine/model-path';

test('model folder: setting (absolute, ~, workspace-relative), bundled, then shared; folders without config are skipped', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-models-'));
  try {
    const ext = path.join(tmp, 'ext');
    const shared = path.join(tmp, 'shared');
    const model = (dir: string) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'config.json'), '{}');
      writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
      return dir;
    };
    mkdirSync(path.join(ext, 'models', 'tiny-coder-hf'), { recursive: true }); // empty: not a model
    const env = { HOME: '/home/u' };
    assert.equal(resolveModelDir(undefined, ext, undefined, env), undefined);
    const sharedModel = model(path.join(shared, 'models', 'tiny-coder-hf'));
    assert.equal(resolveModelDir('', ext, undefined, env), sharedModel); // ../shared beside the extension folder
    const bundled = model(path.join(ext, 'models', 'tiny-coder-hf'));
    assert.equal(resolveModelDir('  ', ext, undefined, env), bundled); // the VSIX's own copy wins
    assert.equal(resolveModelDir(undefined, path.join(tmp, 'elsewhere'), undefined, { SNOUT_SHARED: shared }), sharedModel);
    assert.equal(resolveModelDir('/models/qwen', ext, '/ws', env), '/models/qwen');
    assert.equal(resolveModelDir('~/models/qwen', ext, '/ws', env), '/home/u/models/qwen');
    assert.equal(resolveModelDir('models/qwen', ext, '/ws', env), '/ws/models/qwen');
    assert.ok(isModelDir(bundled) && !isModelDir(ext));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a model path is a Hugging Face folder, a .gguf file, or a folder holding one .gguf and no config.json', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-models-'));
  try {
    const gguf = path.join(tmp, 'qwen2.5-coder-1.5b-q8_0.gguf');
    writeFileSync(gguf, 'GGUF');
    assert.ok(isGgufModel(gguf) && isModelPath(gguf));
    const other = path.join(tmp, 'notes.txt');
    writeFileSync(other, 'x');
    assert.ok(!isModelPath(other));
    const one = path.join(tmp, 'one');
    mkdirSync(one);
    writeFileSync(path.join(one, 'm.GGUF'), 'GGUF');
    assert.ok(isModelPath(one));
    writeFileSync(path.join(one, 'n.gguf'), 'GGUF');
    assert.ok(!isModelPath(one), 'two .gguf files: which one?');
    const hf = path.join(tmp, 'hf');
    mkdirSync(hf);
    writeFileSync(path.join(hf, 'config.json'), '{}');
    writeFileSync(path.join(hf, 'tokenizer.json'), '{}');
    assert.ok(isModelPath(hf) && !isGgufModel(hf));
    assert.ok(!isModelPath(path.join(tmp, 'missing.gguf')));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
