// Builds engine/attention/kernels/kernels.wasm from kernels.c with clang + wasm-ld (Debian: apt-get install clang lld;
// installed here when missing and running as root). `--check`: rebuild into a temporary file and fail unless it equals
// the committed kernels.wasm byte for byte (CI: the .wasm never drifts from its source).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'engine', 'attention', 'kernels');
const source = path.join(dir, 'kernels.c'), target = path.join(dir, 'kernels.wasm');
const check = process.argv.includes('--check');

const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`build-kernels: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}
if (!has('clang') || !has('wasm-ld')) {
  if (process.getuid?.() !== 0) throw new Error('build-kernels: needs clang and wasm-ld (Debian: apt-get install -y clang lld)');
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', 'clang', 'lld']);
}

const tmp = mkdtempSync(path.join(tmpdir(), 'snout-kernels-'));
try {
  const obj = path.join(tmp, 'kernels.o'), wasm = path.join(tmp, 'kernels.wasm');
  // No -ffast-math: the float operations happen in source order (the kernels' bits are part of the contract).
  // -disable-lsr: see kernels.c. Features: SIMD; saturating float→int; atomics + bulk memory for a shared memory.
  run('clang', ['--target=wasm32', '-O2', '-mllvm', '-disable-lsr', '-msimd128', '-mnontrapping-fptoint', '-matomics',
    '-mbulk-memory', '-nostdlib', '-Wall', '-Wextra', '-Werror', '-Wno-pass-failed', '-c', source, '-o', obj]);
  // The module owns no memory: it imports the caller's shared memory (env.memory, up to 4 GiB), uses no stack and
  // no data, so it never writes outside the addresses it is given.
  run('wasm-ld', ['--no-entry', '--import-memory', '--shared-memory', '--max-memory=4294967296',
    '--initial-memory=65536', '-z', 'stack-size=0', obj, '-o', wasm]);
  const built = readFileSync(wasm);
  if (check) {
    const committed = readFileSync(target);
    if (!built.equals(committed)) {
      throw new Error(`build-kernels --check: ${path.relative(process.cwd(), target)} differs from a fresh build of kernels.c `
        + '(run `node scripts/build-kernels.mjs` and commit the result)');
    }
    console.log('kernels.wasm matches kernels.c');
  } else {
    writeFileSync(target, built);
    console.log(`wrote ${path.relative(process.cwd(), target)} (${built.length} bytes)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
