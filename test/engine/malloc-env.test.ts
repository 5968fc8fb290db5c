// The engine's start environment: glibc's mmap threshold fixed (engine/runtime/malloc-env.ts), other tunables kept.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { engineEnv } from '../../engine/runtime/malloc-env';

describe('engineEnv', () => {
  it('adds the mmap threshold, keeps other tunables and an explicit threshold', () => {
    assert.equal(engineEnv({}).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=131072');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4096' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=4096');
  });

  it('a process started with it returns a freed 64 MB block to the system (glibc only)', { skip: process.platform !== 'linux' && 'glibc only' }, () => {
    // Free one large block (glibc raises its threshold), then allocate and free many 8 MB blocks: without the
    // fixed threshold they come from the heap and stay resident after being freed.
    const script = `
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
      let big = Buffer.alloc(64 << 20, 1); big = null; global.gc();
      let blocks = Array.from({ length: 16 }, () => Buffer.alloc(8 << 20, 1)); const peak = rss(); blocks = null; global.gc();
      process.stdout.write(JSON.stringify({ peak, after: rss() }));`;
    const run = (env: NodeJS.ProcessEnv) => JSON.parse(spawnSync(process.execPath, ['--expose-gc', '-e', script], { env, encoding: 'utf8' }).stdout);
    const tuned = run(engineEnv({ ...process.env, GLIBC_TUNABLES: '' }));
    assert.ok(tuned.peak - tuned.after > 100, `freed blocks left resident: ${JSON.stringify(tuned)}`);
  });
});
