// `snout logits` and `snout generate` through the built CLI (dist/cli.js, built by npm test) on stories260K.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hasModel, maxAbsDiff, modelDir, readGolden, repoRoot } from './paths';
import { packedBlockSize } from '../../engine/model/safetensors-source';
import { intraOpThreads } from '../../engine/runtime/session';

const name = 'stories260K-hf';
const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli.js'), ...args], { encoding: 'utf8' });

describe('CLI on stories260K', { skip: !hasModel(name) && `${name} not found` }, () => {
  const golden = hasModel(name) ? readGolden(name) : undefined;

  it('logits --prompt prints {"ids", "logits"} for the last position', () => {
    const r = cli('logits', '--model', modelDir(name), '--prompt', golden.prompt.text, '--provider', 'cpu');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out), ['ids', 'logits']);
    assert.deepEqual(out.ids, golden.prompt.input_ids);
    assert.ok(maxAbsDiff(out.logits, golden.prompt.last_logits) <= 1e-4);
  });

  it('logits --ids with --attention passes through', () => {
    const r = cli('logits', '--model', modelDir(name), '--ids', golden.prompt.input_ids.join(','), '--attention', 'dense', '--provider', 'cpu');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(maxAbsDiff(JSON.parse(r.stdout).logits, golden.prompt.last_logits) <= 1e-4);
  });

  it('generate --greedy --json streams the text, then one JSON line with ids, text and stats', () => {
    const r = cli('generate', '--model', modelDir(name), '--prompt', golden.prompt.text, '--max-tokens', '20', '--greedy', '--json', '--provider', 'cpu');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const result = JSON.parse(lines.at(-1)!);
    assert.deepEqual(result.ids, golden.prompt.greedy_64_ids.slice(0, 20));
    assert.ok(r.stdout.startsWith(result.text), 'streamed text precedes the JSON');
    assert.equal(result.stats.prefill_tokens, golden.prompt.input_ids.length);
    assert.equal(result.stats.decode_tokens, 20);
    for (const k of ['prefill_ms', 'decode_ms']) assert.ok(result.stats[k] > 0, k);
  });

  it('generate with sampling flags is reproducible per seed', () => {
    const run = () => cli('generate', '--model', modelDir(name), '--prompt', 'Once', '--max-tokens', '12', '--temperature', '0.8', '--top-p', '0.9', '--seed', '5', '--json', '--provider', 'cpu');
    const [a, b] = [run(), run()];
    assert.equal(a.status, 0, a.stderr);
    const last = (out: string) => JSON.parse(out.trimEnd().split('\n').at(-1)!);
    assert.deepEqual(last(a.stdout).ids, last(b.stdout).ids);
    assert.equal(last(a.stdout).ids.length, 12);
  });
});

describe('CLI attention knobs', { skip: !hasModel('tiny-coder-hf') && 'tiny-coder-hf not found' }, () => {
  // A prompt long enough that, with a small window and no dense layers, most context keys are only reachable through
  // the LSH index: the sampled fraction must then drop below 1, and must stay 1 under dense attention.
  const prompt = Array.from({ length: 40 }, (_, i) => `def f${i}(x):\n    return x + ${i}\n`).join('\n');
  const run = (...extra: string[]) => {
    const r = cli('generate', '--model', modelDir('tiny-coder-hf'), '--prompt', prompt, '--max-tokens', '4', '--greedy', '--json', '--provider', 'cpu', ...extra);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!).stats;
  };

  it('--k/--l/--sinks/--window/--dense-layers reach the attention (magicpig samples; dense does not)', () => {
    const sparse = run('--attention', 'magicpig', '--k', '10', '--l', '20', '--sinks', '4', '--window', '16', '--dense-layers', 'none', '--min-indexed', '0');
    assert.equal(sparse.attention, 'magicpig');
    assert.ok(sparse.sampled_fraction > 0 && sparse.sampled_fraction < 0.5, `sampled ${sparse.sampled_fraction}`);
    const wide = run('--attention', 'magicpig', '--k', '1', '--l', '200', '--window', '16', '--dense-layers', 'none', '--min-indexed', '0');
    assert.ok(wide.sampled_fraction > 0.9, `K=1, L=200 samples nearly every key (got ${wide.sampled_fraction})`);
    assert.equal(run('--attention', 'dense').sampled_fraction, 1);
    // Without --min-indexed 0 a prompt this short is attended exactly (engine default SHORT_CONTEXT_MIN_INDEXED).
    assert.equal(run('--attention', 'magicpig', '--k', '10', '--l', '20', '--sinks', '4', '--window', '16', '--dense-layers', 'none').sampled_fraction, 1);
  });

  it('bad knob values are one clear line and exit 1', () => {
    for (const [flag, value, expect] of [['--k', '0', /--k must be a whole number/], ['--budget', '2', /--budget must be/],
      ['--dense-layers', 'x', /--dense-layers must be/], ['--kv-dtype', 'int8', /--kv-dtype must be/],
      ['--min-indexed', '-1', /--min-indexed must be a whole number/]] as const) {
      const r = cli('generate', '--model', modelDir('tiny-coder-hf'), '--prompt', 'x', flag, value);
      assert.equal(r.status, 1);
      assert.match(r.stderr, expect);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});

describe('CLI info and --weights', { skip: !hasModel('tiny-coder-hf') && 'tiny-coder-hf not found' }, () => {
  const dir = modelDir('tiny-coder-hf');
  it('info --json reports the packed weights, their resident size and the cache, which the second run hits', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const cacheDir = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'snout-info-'));
    try {
      const run = (weights: string) => {
        const r = cli('info', '--model', dir, '--weights', weights, '--cache-dir', cacheDir, '--provider', 'cpu', '--json');
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      };
      const f32 = run('f32');
      const int8 = run('int8');
      const again = run('int8');
      const int4 = run('int4');
      assert.equal(f32.packed, false);
      assert.equal(int8.packed, true);
      assert.equal(int8.cache, 'written');
      assert.equal(again.cache, 'hit');
      // A cache hit leaves the 8-bit embedding table in the cache's file (embedding-rows.ts): it holds one row of it.
      const row = again.hidden * (1 + 4 / packedBlockSize(8, again.hidden));
      assert.equal(int8.residentWeightBytes - again.residentWeightBytes, (again.vocab - 1) * row);
      // int8 holds about a quarter of float32's bytes, int4 less again (its embedding/head stay 8-bit).
      assert.ok(int8.residentWeightBytes < 0.35 * f32.residentWeightBytes, `${int8.residentWeightBytes} vs ${f32.residentWeightBytes}`);
      assert.ok(int4.residentWeightBytes < int8.residentWeightBytes);
      assert.equal(int8.parameters, f32.parameters);
      // Threads per operator: one per physical core by default (runtime/cores.ts), SNOUT_THREADS when set.
      assert.equal(f32.threads, intraOpThreads());
      assert.ok(process.platform !== 'linux' || f32.threads >= 1);
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli.js'), 'info', '--model', dir, '--weights', 'int8',
        '--cache-dir', cacheDir, '--provider', 'cpu', '--json'], { encoding: 'utf8', env: { ...process.env, SNOUT_THREADS: '3' } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout.trim().split('\n').at(-1)!).threads, 3);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it('a bad --weights value is one clear line', () => {
    const r = cli('info', '--model', dir, '--weights', 'int3');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^snout: info: --weights must be one of auto, f32, int8, int4, got "int3"\n$/);
  });
});
