// `npm run demo` end to end: the real engine process, the extension's packer on the e2e fixture repository, two
// completion requests. Checks what the demo claims to show against the fixture itself: report.py imports geometry.py,
// so geometry.py must be packed first; the model streams something; typing reuses the engine's prefix cache.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(__dirname, '../..');
const shared = process.env.SNOUT_SHARED ?? path.resolve(root, '../shared');
const model = process.env.SNOUT_MODEL ?? path.join(shared, 'models', 'tiny-coder-hf');
const skip = existsSync(path.join(model, 'config.json')) ? false : `no model at ${model}`;

test('npm run demo: packs imports first, streams a completion, and the typed request hits the prefix cache', { skip, timeout: 60_000 }, () => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: root, encoding: 'utf8', timeout: 55_000 });
  const out = r.stdout;
  console.log(`demo ran in ${Date.now() - t0} ms`);
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${out}\n${r.stderr}`);

  // The fixture's own import statement says which file the packer must put first.
  const report = readFileSync(path.join(root, 'test/e2e/fixture-repo/shapes/report.py'), 'utf8');
  const imported = `shapes/${/^from \.(\w+) import/m.exec(report)![1]}.py`;
  const first = /^ {2}1\. (\S+) {2}\[(\w+)/m.exec(out);
  assert.ok(first, out);
  assert.deepEqual([first[1], first[2]], [imported, 'imported'], out);
  assert.match(out, /attention: magicpig /);

  const streamed = [...out.matchAll(/^streamed tokens: ([\s\S]*?)⏎ \[(\w+)\]$/gm)];
  assert.equal(streamed.length, 2, out);
  assert.ok(streamed[0][1].trim().length > 0, `request 1 streamed nothing:\n${out}`);

  const cache = /^request 2 \(typed\): .*cached (\d+)\/(\d+) prompt tokens/m.exec(out);
  assert.ok(cache, out);
  const [cached, prompt] = [Number(cache[1]), Number(cache[2])];
  assert.ok(prompt > 100 && cached > 0.9 * prompt, `request 2 reused ${cached}/${prompt} prompt tokens`);
  assert.match(out, /^request 1 \(cold\): .*cached 0\//m, 'the first request is cold');
});
