// How many threads one onnxruntime operator should use when the user did not say: one per physical core this process
// may run on. onnxruntime's own default (intra_op_num_threads 0) takes its core count from the CPU's topology report,
// which under a hypervisor can disagree with the vCPUs the guest was given: on a 2-vCPU KVM guest (whose /proc/cpuinfo
// shows the `ht` flag; why onnxruntime counts one core there is inferred, not traced) it ran every graph on one thread
// (bench-results/threads-default.md has what that cost). Linux says what a core is in sysfs (the topology lscpu
// prints), so we count there; other systems keep onnxruntime's default.
import { availableParallelism } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Distinct (package, core) pairs among the online CPUs under `root` (Linux sysfs layout: cpuN/topology/core_id and
 * physical_package_id), or undefined where that cannot be read. The online list is not parsed: a CPU that is offline has
 * no topology directory.
 */
export function physicalCoresFromSysfs(root = '/sys/devices/system/cpu'): number | undefined {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => /^cpu\d+$/.test(n));
  } catch {
    return undefined;
  }
  const cores = new Set<string>();
  for (const n of names) {
    try {
      const topo = path.join(root, n, 'topology');
      const core = readFileSync(path.join(topo, 'core_id'), 'utf8').trim();
      const pkg = readFileSync(path.join(topo, 'physical_package_id'), 'utf8').trim();
      cores.add(`${pkg}/${core}`);
    } catch { /* offline or no topology: not a CPU we can run on */ }
  }
  return cores.size > 0 ? cores.size : undefined;
}

let cached: number | undefined;

/**
 * Intra-op threads for a session whose caller gave none: physical cores on Linux, capped by the CPUs this process may
 * use (availableParallelism follows the affinity mask); 0 (onnxruntime's default) elsewhere.
 */
export function defaultIntraOpThreads(): number {
  if (cached !== undefined) return cached;
  const physical = process.platform === 'linux' ? physicalCoresFromSysfs() : undefined;
  cached = physical === undefined ? 0 : Math.max(1, Math.min(physical, availableParallelism()));
  return cached;
}
