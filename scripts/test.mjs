// `npm test`: build, then run every test file with node's built-in runner (TypeScript through tsx).
// Unit/integration tests: test/**/*.test.ts. End-to-end (real VS Code): test/e2e/*.e2e.ts, skipped with --unit.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const unitOnly = process.argv.includes('--unit');
const filter = process.argv.slice(2).filter((a) => !a.startsWith('--'));

function walk(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status ?? 1;
};

if (run(process.execPath, ['esbuild.mjs']) !== 0) process.exit(1);

let files = walk('test').filter((f) => f.endsWith('.test.ts') || (!unitOnly && f.endsWith('.e2e.ts')));
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
// e2e files last: they are the slowest and need the built VSIX.
files.sort((a, b) => Number(a.endsWith('.e2e.ts')) - Number(b.endsWith('.e2e.ts')) || a.localeCompare(b));
const status = run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files]);
process.exit(status);
