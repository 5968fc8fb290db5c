// Which model folder the extension loads: the setting, else the one inside the extension, else ../shared.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isModelDir, resolveModelDir } from '../../extension/engine/model-path';

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
