// The extension's MagicPIG settings accept exactly the (K, L) the engine accepts: a value VS Code's settings editor
// allows must not fail every request later (engine/attention/types.ts LSH_LIMITS is the one source).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LSH_LIMITS } from '../../engine/attention/types';
import { settingProblems } from '../../extension/settings-check';

test('snout.attention.K / L ranges in package.json equal the engine\'s LSH_LIMITS', () => {
  const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties ?? pkg.contributes.configuration[0].properties;
  for (const key of ['K', 'L'] as const) {
    const p = props[`snout.attention.${key}`];
    assert.equal(p.minimum, LSH_LIMITS[key].min, `snout.attention.${key} minimum`);
    assert.equal(p.maximum, LSH_LIMITS[key].max, `snout.attention.${key} maximum`);
    assert.ok(p.default >= p.minimum && p.default <= p.maximum);
  }
});

test('settings: every one has an order and a scope; paths and devices are per machine; no duplicate of VS Code\'s Alt+\\', () => {
  const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
  const props: Record<string, { order?: number; scope?: string; description?: string; markdownDescription?: string }> = pkg.contributes.configuration.properties;
  const orders = Object.values(props).map((p) => p.order);
  assert.ok(orders.every((o) => Number.isInteger(o)), 'every setting has an order');
  assert.equal(new Set(orders).size, orders.length, 'orders are distinct');
  assert.ok(Object.values(props).every((p) => p.scope && (p.description ?? p.markdownDescription)), 'scope and description');
  assert.equal(props['snout.modelPath'].scope, 'machine');
  assert.equal(props['snout.device'].scope, 'machine');
  assert.ok(props['snout.enabled'].order! < props['snout.modelPath'].order! && props['snout.modelPath'].order! < props['snout.attention.K'].order!);
  assert.ok(!(pkg.contributes.keybindings ?? []).some((k: { key: string }) => k.key.toLowerCase() === 'alt+\\'));
});

test('a bad model folder or an out-of-range K/L is found before the engine starts, naming the setting and the fix', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-settings-'));
  try {
    const model = path.join(tmp, 'model');
    mkdirSync(model);
    writeFileSync(path.join(model, 'config.json'), '{}');
    writeFileSync(path.join(model, 'tokenizer.json'), '{}');
    const ok = { modelPath: model, attention: { K: 10, L: 150 } };
    assert.deepEqual(settingProblems(ok, model), []);
    assert.deepEqual(settingProblems({ ...ok, modelPath: '' }, model), []); // the default model
    const missing = settingProblems({ ...ok, modelPath: path.join(tmp, 'nope') }, path.join(tmp, 'nope'));
    assert.deepEqual(missing.map((p) => [p.setting, p.fix]), [['snout.modelPath', 'selectModel']]);
    assert.match(missing[0].message, /does not exist/);
    assert.match(settingProblems({ ...ok, modelPath: tmp }, tmp)[0].message, /no config\.json/);
    assert.match(settingProblems({ ...ok, modelPath: path.join(model, 'config.json') }, path.join(model, 'config.json'))[0].message, /not a folder/);
    assert.equal(settingProblems({ ...ok, modelPath: '' }, undefined)[0].setting, 'snout.modelPath'); // no bundled model
    for (const [K, L, bad] of [[64, 150, 'K'], [0, 150, 'K'], [2.5, 150, 'K'], [10, 1, 'L'], [10, 4096, 'L']] as const) {
      const p = settingProblems({ ...ok, attention: { K, L } }, model);
      assert.deepEqual(p.map((x) => [x.setting, x.fix]), [[`snout.attention.${bad}`, 'reset']], `K ${K} L ${L}`);
    }
    assert.equal(settingProblems({ ...ok, attention: { K: LSH_LIMITS.K.max, L: LSH_LIMITS.L.min } }, model).length, 0);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
