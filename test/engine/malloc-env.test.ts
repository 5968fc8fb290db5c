// The engine's start environment: glibc's mmap and trim thresholds fixed, huge pages for mmap'd blocks
// (engine/runtime/malloc-env.ts), other tunables kept.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { engineEnv } from '../../engine/runtime/malloc-env';

describe('engineEnv', () => {
  it('adds the thresholds and huge pages, keeps other tunables and explicit values', () => {
    const ours = 'glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=67108864:glibc.malloc.hugetlb=1';
    assert.equal(engineEnv({}).GLIBC_TUNABLES, ours);
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${ours}`);
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4096' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=4096:glibc.malloc.trim_threshold=67108864:glibc.malloc.hugetlb=1');
    assert.equal(engineEnv({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=4096:glibc.malloc.trim_threshold=0' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=4096:glibc.malloc.trim_threshold=0');
    const set = engineEnv({});
    assert.equal(engineEnv(set), set, 'a second pass adds nothing');
  });

  it('a process started with it returns freed large blocks to the system and reuses smaller ones without new page faults (glibc only)', { skip: process.platform !== 'linux' && 'glibc only' }, () => {
    // Free one large block first: without a fixed threshold glibc then raises its own, and every block below the new
    // one comes from the heap and stays resident after being freed.
    const script = `
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
      const faults = () => process.resourceUsage().minorPageFault;
      // V8 frees array buffers' memory off the main thread after a collection: give it a moment.
      const collect = async () => { for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)); } };
      const chunk = () => Array.from({ length: 6 }, () => Buffer.alloc(8 << 20, 1)); // a prompt chunk's activations (under the trim threshold)
      (async () => {
        let big = Buffer.alloc(64 << 20, 1); big = null; await collect();
        let large = Array.from({ length: 6 }, () => Buffer.alloc(24 << 20, 1)); const peakLarge = rss(); large = null; await collect();
        const afterLarge = rss();
        let f0 = faults(), a = chunk(); const first = faults() - f0; a = null; await collect();
        f0 = faults(); let b = chunk(); const second = faults() - f0; b = null; await collect();
        process.stdout.write(JSON.stringify({ peakLarge, afterLarge, first, second }));
      })();`;
    const run = (env: NodeJS.ProcessEnv) => JSON.parse(spawnSync(process.execPath, ['--expose-gc', '-e', script], { env, encoding: 'utf8' }).stdout);
    // Huge pages off for the count: with them a round is a few dozen faults, too few to tell from the runtime's own.
    const tuned = run(engineEnv({ ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }));
    // 144 MB of 24 MB blocks (over the 16 MB threshold): returned when freed.
    assert.ok(tuned.peakLarge - tuned.afterLarge > 120, `freed large blocks left resident: ${JSON.stringify(tuned)}`);
    // 48 MB of 8 MB blocks, freed and allocated again (the next chunk): the heap hands back the same, already
    // faulted-in memory (48 MB is ~12300 faults of 4 KB).
    assert.ok(tuned.first > 6000 && tuned.second < tuned.first / 8, `the second round faulted its memory in again: ${JSON.stringify(tuned)}`);
    // What the 128 KB threshold did: every round mapped and faulted in fresh memory.
    const small = run({ ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=131072' });
    assert.ok(small.second > small.first / 2, `with a 128 KB threshold: ${JSON.stringify(small)}`);
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
