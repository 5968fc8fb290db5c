// Attack table, row 4: hostile model folders. Each one must fail fast with one clear line (a UserError naming the
// file), never hang, read without bound or end in a stack trace; the extension's load gives up on a silent engine.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadModel, UserError } from '../../engine/index';
import { renderChat } from '../../engine/prompt';
import { EngineClient } from '../../extension/engine/client';
import { makeCheckpoint } from '../fixtures/make-checkpoint';
import { repoRoot } from '../server/engine-process';
import { loadTestTokenizer, modelDir } from '../prompt/tokenizer';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-hostile-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = () => makeCheckpoint(path.join(root, `m${++counter}`), { layers: 1, seed: counter }).dir;
const editConfig = (dir: string, change: Record<string, unknown>) => {
  const f = path.join(dir, 'config.json');
  writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), ...change }));
};
const replaceWith = (file: string, make: (f: string) => void) => { unlinkSync(file); make(file); };

/** loadModel(dir) must reject with a UserError matching `message` (the test's timeout catches a hang). */
async function refused(dir: string, message: RegExp) {
  await assert.rejects(loadModel(dir, { provider: 'cpu' }), (err: unknown) => {
    assert.ok(err instanceof UserError, `not a UserError: ${(err as Error)?.stack}`);
    assert.match((err as Error).message, message);
    assert.ok(!(err as Error).message.includes('\n'), 'one line');
    return true;
  });
}

describe('attack row 4: hostile model folders', { timeout: 60_000 }, () => {
  test('config.json as a FIFO (hung forever)', async () => {
    const dir = fresh();
    replaceWith(path.join(dir, 'config.json'), (f) => execFileSync('mkfifo', [f]));
    await refused(dir, /config\.json: is a FIFO, not a regular file/);
  });

  test('config.json linked to /dev/zero (read without bound)', async () => {
    const dir = fresh();
    replaceWith(path.join(dir, 'config.json'), (f) => symlinkSync('/dev/zero', f));
    await refused(dir, /config\.json: is a device, not a regular file/);
  });

  test('tokenizer.json linked to /dev/zero, or larger than any tokenizer (read without bound)', async () => {
    const dir = fresh();
    replaceWith(path.join(dir, 'tokenizer.json'), (f) => symlinkSync('/dev/zero', f));
    await refused(dir, /tokenizer\.json: is a device/);
    const dir2 = fresh();
    truncateSync(path.join(dir2, 'tokenizer.json'), 1 << 30); // sparse: 1 GiB of zeros, nothing read
    await refused(dir2, /tokenizer\.json: is 1073741824 bytes, more than the limit/);
  });

  test('a directory named model.safetensors (stack trace)', async () => {
    const dir = fresh();
    replaceWith(path.join(dir, 'model.safetensors'), (f) => mkdirSync(f));
    await refused(dir, /model\.safetensors: is a directory, not a regular file/);
  });

  test('num_hidden_layers 1e9 (stack trace, rc 70): one line, rc 1', () => {
    const dir = fresh();
    editConfig(dir, { num_hidden_layers: 1e9 });
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli.js'), 'logits', '--model', dir, '--ids', '1,2'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !/execution provider/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /config\.json: "num_hidden_layers" is 1000000000, more than the largest supported/);
  });

  test('absurd max_position_embeddings, rope_theta and eos ids (passed silently)', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ max_position_embeddings: 1e12 }, /"max_position_embeddings" is 1000000000000, more than the largest supported/],
      [{ rope_theta: 1e30 }, /"rope_theta" is 1e\+30, more than the largest supported/],
      [{ eos_token_id: 1_000_000 }, /"eos_token_id" 1000000 is outside the vocabulary/],
      [{ bos_token_id: 64 }, /"bos_token_id" 64 is outside the vocabulary \(vocab_size 64\)/],
    ];
    for (const [change, message] of cases) {
      const dir = fresh();
      editConfig(dir, change);
      await refused(dir, message);
    }
  });

  test('a chat template looping 10^8 times (> 4 GB, > 17 s): stopped by the render limits', async () => {
    const looping = { ...loadTestTokenizer(modelDir('tiny-coder-hf')), chatTemplate: '{% for i in range(100000000) %}{{ i }}{% endfor %}' };
    const rss0 = process.memoryUsage().rss;
    await assert.rejects(renderChat(looping, [{ role: 'user', content: 'hi' }], [], 100), /took longer than|more than the limit|needs more than/);
    assert.ok(process.memoryUsage().rss - rss0 < 512 * 2 ** 20, 'the render did not grow this process');
    // The engine keeps rendering good templates afterwards.
    const ok = loadTestTokenizer(modelDir('tiny-coder-hf'), '{% for m in messages %}{{ m.content }}{% endfor %}');
    assert.deepEqual((await renderChat(ok, [{ role: 'user', content: 'hi' }], [], 100)).ids, ok.encode('hi'));
  });

  test("the extension's model load (no timeout): a silent engine is given up with a message", async () => {
    const silent = path.join(root, 'silent-engine.js');
    writeFileSync(silent, "process.stdin.resume();\n"); // reads requests, never answers
    const lines: string[] = [];
    const c = new EngineClient({ enginePath: silent, runtime: process.execPath, loadParams: () => ({ modelDir: '/models/x' }), log: (l) => lines.push(l), loadStallMs: 500 });
    try {
      await assert.rejects(c.start(), /did not finish loading: no progress for \d+ s \(\/models\/x\)/);
      assert.equal(c.state, 'error');
    } finally {
      await c.dispose();
    }
  });
});
