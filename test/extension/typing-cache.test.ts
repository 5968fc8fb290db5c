// End to end without VS Code: the packer and the real engine while "typing" into a fixture file, one character per
// request, as the provider does. Measures the engine's prefix-cache hit rate (cachedTokens / promptTokens), which
// the stable per-epoch file order exists for.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { shapeCompletion, stopSequences } from '../../extension/completion/filters';
import { HitRate } from '../../extension/completion/stats';
import { WorkspaceFiles } from '../../extension/context/files';
import { ContextPacker, type PackBudget } from '../../extension/context/packer';
import { Recency } from '../../extension/context/recency';
import { scanWorkspace } from '../../extension/context/scan';
import { initialCharsPerToken, TokenEstimator } from '../../extension/context/tokens';
import { EngineClient } from '../../extension/engine/client';
import { resolveModelDir } from '../../extension/engine/model-path';

const root = path.resolve(__dirname, '../..');
const repo = path.join(root, 'test/fixtures/repo-mixed');
const enginePath = path.join(root, 'dist/engine.js');
const modelDir = resolveModelDir(undefined, root);
const skip = !existsSync(enginePath) ? 'dist/engine.js not built (npm run build)' : !modelDir ? 'no default model in ../shared/models' : false;

/** The real engine on the default model and a packer over the fixture repository, as the provider uses them. */
async function withEngine(fn: (engine: EngineClient, packer: ContextPacker, budget: PackBudget) => Promise<void>): Promise<void> {
  const engine = new EngineClient({ enginePath, runtime: process.execPath, loadParams: () => ({ modelDir: modelDir!, provider: 'cpu' }), log: () => {} });
  try {
    const model = await engine.start();
    const store = new WorkspaceFiles(repo);
    store.setFiles(await scanWorkspace(repo));
    const packer = new ContextPacker(store, new Recency(), new TokenEstimator(initialCharsPerToken(model.vocabSize)), 'repo-mixed');
    await fn(engine, packer, { contextTokens: 32768, maxTokens: 8, modelContextLength: model.contextLength });
  } finally {
    await engine.dispose();
  }
}

test('typing one character per request keeps the prefix cache hitting (≥ 90% of prompt tokens)', { skip, timeout: 120_000 }, async () => {
  await withEngine(async (engine, packer, budget) => {
    const file = 'py/pkg/core.py';
    let text = readFileSync(path.join(repo, file), 'utf8');
    let offset = text.length;
    const typed = '\ndef restart(engine):\n    return';
    const rate = new HitRate();
    let first = true;
    const epochs = new Set<number>();
    let truncations = 0;
    for (const ch of typed) {
      text = text.slice(0, offset) + ch + text.slice(offset);
      offset++;
      const p = await packer.pack({ path: file, text, offset }, budget);
      epochs.add(p.epoch);
      const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
      const lineEnd = text.indexOf('\n', offset) < 0 ? text.length : text.indexOf('\n', offset);
      const r = await engine.complete({ id: `t${offset}`, repoName: p.repoName, files: p.files, path: p.path, prefix: p.prefix, suffix: p.suffix, maxTokens: 8, stop: stopSequences(text.slice(offset, lineEnd)) });
      packer.estimator.observe(p.chars, r.stats.promptTokens + r.stats.truncatedTokens);
      // As the provider does: a prompt that overflowed the window means the estimate was off; re-rank once, calibrated.
      if ((r.stats.overflowTokens ?? 0) > 0) {
        truncations++;
        packer.invalidate();
      }
      // Ghost text never carries a special token, whatever the tiny model emits.
      const ghost = shapeCompletion(r.text, { linePrefix: text.slice(lineStart, offset), lineSuffix: text.slice(offset, lineEnd), suffixAfterLine: text.slice(lineEnd) });
      assert.ok(!/<\|/.test(ghost), ghost);
      if (first) console.log(`cold request: ${r.stats.promptTokens} prompt tokens, prefill ${Math.round(r.stats.prefillMs)} ms`);
      if (first) first = false; // the cold first request cannot hit
      else rate.add(r.stats);
    }
    // At most one re-rank (if the first, uncalibrated estimate overshot the window), then one epoch for the rest.
    assert.ok(truncations <= 1 && epochs.size <= 2, `${truncations} truncations, ${epochs.size} epochs`);
    console.log(`prefix cache hit rate while typing ${typed.length} characters: ${(100 * rate.rate).toFixed(1)}% over ${rate.count} requests`);
    assert.ok(rate.rate >= 0.9, `hit rate ${rate.rate}`);
  });
});

test('typing in the middle of a file, with saves: the suffix cap is no epoch change, one file list throughout', { skip, timeout: 180_000 }, async () => {
  await withEngine(async (engine, packer, budget) => {
    const file = 'py/pkg/core.py';
    const original = readFileSync(path.join(repo, file), 'utf8');
    // A file long enough that the text after the cursor is cut to the engine's suffix cap on every request.
    let text = original + Array.from({ length: 60 }, (_, i) => `\ndef helper_${i}(x):\n    return x + ${i}\n`).join('');
    let offset = text.indexOf('\ndef helper_20');
    const epochs = new Set<number>();
    let suffixCapped = 0;
    let overflows = 0;
    for (const [k, ch] of [...'\nvalue = 1'].entries()) {
      text = text.slice(0, offset) + ch + text.slice(offset);
      offset++;
      // Auto-save of the current file every few keys: as the workspace glue does on a save.
      if (k % 3 === 2) packer.fileChanged(file);
      const p = await packer.pack({ path: file, text, offset }, budget);
      epochs.add(p.epoch);
      const r = await engine.complete({ id: `m${k}`, repoName: p.repoName, files: p.files, path: p.path, prefix: p.prefix, suffix: p.suffix, maxTokens: 8, stop: ['\n'] });
      packer.estimator.observe(p.chars, r.stats.promptTokens + r.stats.truncatedTokens);
      if ((r.stats.overflowTokens ?? 0) > 0) { overflows++; packer.invalidate(); }
      if (r.stats.truncatedTokens > (r.stats.overflowTokens ?? 0)) suffixCapped++;
    }
    assert.ok(suffixCapped >= 8, `the suffix was capped on ${suffixCapped} requests`);
    // Only a real overflow (at most the first, uncalibrated estimate) may start a new epoch.
    assert.ok(epochs.size <= 1 + overflows && overflows <= 1, `${epochs.size} epochs, ${overflows} overflows`);
  });
});
