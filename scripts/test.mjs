// `npm test`: build, then run every test file with node's built-in runner (TypeScript through tsx).
// Unit/integration tests: test/**/*.test.ts. End-to-end (real VS Code): test/e2e/*.e2e.ts, skipped with --unit.
//
// A run never hangs: CI gives 90 minutes and a hung run fails with nothing to read. So
// - --test-force-exit: a file whose tests are done exits even if something it started keeps a handle open (a test
//   process once waited forever after printing its last result);
// - --test-timeout: no single test runs past 15 minutes (suites set tighter limits themselves);
// - a watchdog: the whole run ends after SNOUT_TEST_MINUTES (default 60), printing which processes were still running,
//   then kills them all. The runner gets its own process group so that nothing it started (engines, code-server,
//   chromium) outlives it, on a timeout or a normal end.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const unitOnly = process.argv.includes('--unit');
const filter = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const limitMinutes = Number(process.env.SNOUT_TEST_MINUTES ?? 60);

function walk(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

if (spawnSync(process.execPath, ['esbuild.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);

let files = walk('test').filter((f) => f.endsWith('.test.ts') || (!unitOnly && f.endsWith('.e2e.ts')));
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
// e2e files last: they are the slowest and need the built VSIX.
files.sort((a, b) => Number(a.endsWith('.e2e.ts')) - Number(b.endsWith('.e2e.ts')) || a.localeCompare(b));

const runner = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec',
  '--test-force-exit', `--test-timeout=${15 * 60_000}`, ...files], { stdio: 'inherit', detached: true });

/** Every process in the runner's group, as `ps` shows them (what was still running when the watchdog fired). */
const group = () => spawnSync('ps', ['-o', 'pid,etime,args', '--no-headers', '-g', String(runner.pid)], { encoding: 'utf8' }).stdout ?? '';
const killGroup = () => { try { process.kill(-runner.pid, 'SIGKILL'); } catch { /* already gone */ } };

let timedOut = false;
const watchdog = setTimeout(() => {
  timedOut = true;
  process.stderr.write(`\nnpm test: stopped after ${limitMinutes} minutes (SNOUT_TEST_MINUTES). Still running:\n${group()}\n`);
  killGroup();
}, limitMinutes * 60_000);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killGroup(); process.exit(130); });

runner.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  // Anything a test left behind (an engine, a server) goes with the run.
  killGroup();
  process.exit(timedOut ? 1 : (code ?? (signal ? 1 : 0)));
});
