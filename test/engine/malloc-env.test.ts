// The engine's start environment: glibc's mmap threshold fixed (engine/runtime/malloc-env.ts), other tunables kept.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { engineEnv } from '../../engine/runtime/malloc-env';

describe('engineEnv', () => {
  it('adds the mmap threshold, keeps other tunables and an explicit threshold', () => {
    assert.equal(engineEnv({}).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4096' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=4096:glibc.malloc.hugetlb=1');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=4096' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=4096');
    const set = engineEnv({});
    assert.equal(engineEnv(set), set, 'a second pass adds nothing');
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

describe('huge pages for large blocks (glibc.malloc.hugetlb=1)', () => {
  const thp = (() => { try { return require('node:fs').readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8') as string; } catch { return ''; } })();
  it('a process started with engineEnv backs a 64 MB buffer with transparent huge pages', { skip: !/\[(madvise|always)\]/.test(thp) && 'transparent huge pages are off here' }, () => {
    const script = `
      const a = new Uint8Array(new SharedArrayBuffer(64 << 20)); for (let i = 0; i < a.length; i += 4096) a[i] = 1;
      process.stdout.write(/AnonHugePages:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]);`;
    const huge = (env: NodeJS.ProcessEnv) => Number(spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).stdout) * 1024;
    assert.ok(huge(engineEnv({ ...process.env, GLIBC_TUNABLES: '' })) >= 32 << 20, 'most of the buffer on huge pages');
    if (thp.includes('[madvise]')) assert.ok(huge({ ...process.env, GLIBC_TUNABLES: '' }) < 8 << 20, 'without the tunable (madvise mode): 4 KB pages');
  });
});
