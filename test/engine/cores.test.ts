// Intra-op threads when the user gives none: one per physical core as sysfs describes them (onnxruntime's own count
// halves it on VMs that advertise hyper-threading), and every session gets that count.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { defaultIntraOpThreads, physicalCoresFromSysfs } from '../../engine/runtime/cores';
import { sessionOptions } from '../../engine/runtime/session';

/** A fake sysfs cpu folder: one entry per logical CPU as [package, core], or null for an offline CPU (no topology). */
function fakeSysfs(cpus: ([number, number] | null)[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'snout-cpus-'));
  cpus.forEach((c, i) => {
    const dir = path.join(root, `cpu${i}`);
    mkdirSync(dir);
    if (!c) return;
    mkdirSync(path.join(dir, 'topology'));
    writeFileSync(path.join(dir, 'topology', 'physical_package_id'), `${c[0]}\n`);
    writeFileSync(path.join(dir, 'topology', 'core_id'), `${c[1]}\n`);
  });
  mkdirSync(path.join(root, 'cpufreq')); // sysfs has non-CPU entries too
  writeFileSync(path.join(root, 'online'), `0-${cpus.length - 1}\n`);
  return root;
}

describe('physical cores', () => {
  it('counts distinct (package, core) pairs: SMT siblings once, equal core ids on two packages twice, offline CPUs not', () => {
    const cases: [([number, number] | null)[], number][] = [
      [[[0, 0], [0, 1]], 2], // a 2-vCPU VM: two cores (what onnxruntime counted as one)
      [[[0, 0], [0, 1], [0, 0], [0, 1]], 2], // 2 cores × 2 hyper-threads
      [[[0, 0], [0, 1], [1, 0], [1, 1]], 4], // two sockets reuse core ids
      [[[0, 0], null, [0, 2]], 2],
    ];
    for (const [cpus, want] of cases) {
      const root = fakeSysfs(cpus);
      try {
        assert.equal(physicalCoresFromSysfs(root), want, JSON.stringify(cpus));
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
  });

  it('is undefined where there is no topology to read', () => {
    assert.equal(physicalCoresFromSysfs(path.join(tmpdir(), 'snout-no-such-folder')), undefined);
    const root = fakeSysfs([null, null]);
    try {
      assert.equal(physicalCoresFromSysfs(root), undefined);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('this machine: the default is its physical cores as lscpu counts them, capped by the CPUs the process may use', { skip: process.platform !== 'linux' }, (t) => {
    let listing: string;
    try {
      listing = execFileSync('lscpu', ['-p=CORE,SOCKET'], { encoding: 'utf8' });
    } catch {
      t.skip('lscpu is not installed');
      return;
    }
    const cores = new Set(listing.split('\n').filter((l) => l && !l.startsWith('#')));
    assert.ok(cores.size >= 1);
    assert.equal(defaultIntraOpThreads(), Math.min(cores.size, availableParallelism()));
  });

  it('sessions get the default unless the caller or SNOUT_THREADS says otherwise', () => {
    const saved = process.env.SNOUT_THREADS;
    try {
      delete process.env.SNOUT_THREADS;
      assert.equal(sessionOptions('cpu').intraOpNumThreads, defaultIntraOpThreads());
      assert.equal(sessionOptions('cpu', { threads: 0 }).intraOpNumThreads, defaultIntraOpThreads());
      assert.equal(sessionOptions('cpu', { threads: 3 }).intraOpNumThreads, 3);
      process.env.SNOUT_THREADS = '5';
      assert.equal(sessionOptions('cpu', { threads: 3 }).intraOpNumThreads, 5);
    } finally {
      if (saved === undefined) delete process.env.SNOUT_THREADS; else process.env.SNOUT_THREADS = saved;
    }
  });
});
