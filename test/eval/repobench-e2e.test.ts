// End to end on the real tiny model: build items from the fixture repository, run `snout eval repobench --json` on 5
// of them with all four attention methods, and check the report against the per-item predictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildJsonl } from '../../engine/eval/build';
import { loadModel } from '../../engine/index';
import { methodSpec, runRepoBench, aggregate } from '../../engine/eval/repobench';
import { exactMatch, editSimilarity, firstLineNotComment } from '../../engine/eval/metrics';

const repoRoot = path.resolve(__dirname, '../..');
const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
const modelDir = path.join(sharedDir, 'models/tiny-coder-hf');
const cli = path.join(repoRoot, 'dist/cli.js');
const skip = !existsSync(modelDir) ? 'tiny-coder-hf not found' : !existsSync(cli) ? 'dist/cli.js not built (npm test builds it)' : false;

test('snout eval repobench --json: 5 items × 4 methods on tiny-coder-hf', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-eval-'));
  try {
    const { text, items } = await buildJsonl([path.join(repoRoot, 'test/fixtures/eval-repo')]);
    assert.ok(items.length >= 5);
    const data = path.join(dir, 'items.jsonl');
    writeFileSync(data, text);
    const r = spawnSync(process.execPath, [cli, 'eval', 'repobench', '--data', data, '--model', modelDir, '--attention', 'dense,magicpig,topk,quest',
      '--k', '8', '--l', '75', '--limit', '5', '--max-tokens', '24', '--json'], { encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim());
    assert.equal(out.n, 5);
    assert.deepEqual(Object.keys(out.methods), ['dense', 'magicpig', 'topk', 'quest']);
    for (const s of Object.values(out.methods) as Array<Record<string, number>>) {
      for (const k of ['em', 'es', 'code_sim']) assert.ok(s[k] >= 0 && s[k] <= 100, `${k}=${s[k]}`);
      assert.ok(s.sampled_fraction > 0 && s.sampled_fraction <= 1);
    }
    assert.equal(out.methods.dense.sampled_fraction, 1);
    // The fixture prompts are a few hundred tokens, more than sinks + window: sparse methods attend a strict subset.
    for (const m of ['magicpig', 'topk', 'quest']) assert.ok(out.methods[m].sampled_fraction < 1, m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runRepoBench: shared exact prefill gives the same completions as fresh sequences; scores recompute', { skip: existsSync(modelDir) ? false : 'tiny-coder-hf not found', timeout: 120_000 }, async () => {
  const { items } = await buildJsonl([path.join(repoRoot, 'test/fixtures/eval-repo')]);
  const model = await loadModel(modelDir, { provider: 'cpu', log: () => {} });
  try {
    const two = [items[1], items[items.length - 2]];
    const specs = (['dense', 'magicpig', 'quest'] as const).map((m) => methodSpec(m, 8, 75, 'auto'));
    const opts = { maxTokens: 24, style: 'repobench' as const, contextLength: model.spec.maxPositionEmbeddings };
    const shared = await runRepoBench(model, two, specs, opts);
    const fresh = await runRepoBench(model, two, specs, { ...opts, sharePrefill: false });
    assert.deepEqual(shared.map((r) => [r.method, r.raw, r.sampledFraction]), fresh.map((r) => [r.method, r.raw, r.sampledFraction]));
    for (const r of shared) {
      assert.equal(r.prediction, firstLineNotComment(r.raw));
      assert.equal(r.em, exactMatch(r.prediction, r.nextLine));
      assert.equal(r.es, editSimilarity(r.prediction, r.nextLine));
    }
    const dense = aggregate(shared.filter((r) => r.method === 'dense'));
    assert.equal(dense.n, 2);
    assert.equal(dense.es, (shared[0].es + shared[3].es) / 2);
  } finally {
    await model.dispose();
  }
});
