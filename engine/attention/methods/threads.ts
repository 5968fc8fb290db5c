// Threading for every decode method, in one place: a step is split by KV head (a KV head's query heads share its
// workspace and its rows stay in one core's cache). KV head g runs on thread g mod threads: 0 is the calling thread,
// the others are worker threads (worker-pool.ts, worker.ts) that call the same method's group() on the same shared
// memories. Synchronous: forward() returns once every group is done.
import { availableParallelism } from 'node:os';
import { attentionPool, JobField } from '../worker-pool';
import { METHOD_NAMES, type DecodeMethod, type DecodeStep } from './index';

/**
 * Work (numHeads · headDim · indexed keys) from which a sampled decode step uses 2 threads when config.threads is
 * unset: below it, the hand-off to a worker costs more than it saves (measured: bench-results/attention-decisions.md, Threads).
 */
export const THREADS_MIN_WORK = 6_000_000;
/** The same for an exact decode step (every key is read, so far fewer keys pay off). */
export const DENSE_THREADS_MIN_WORK = 3_000_000;

/**
 * Threads for a step of `work` = numHeads · headDim · keys: env SNOUT_ATTENTION_THREADS, else `configured`, else 2 on
 * a machine with ≥ 2 cores once work reaches minWork, 1 below.
 */
export function threadsFor(work: number, configured: number | undefined, minWork: number): number {
  const env = Number(process.env.SNOUT_ATTENTION_THREADS);
  if (Number.isFinite(env) && env > 0) return Math.floor(env);
  if (configured !== undefined) return Math.max(1, Math.floor(configured));
  return work >= minWork && availableParallelism() >= 2 ? 2 : 1;
}

/** The calling thread's view of a threaded step: the pool's shared codes and used counts instead of the caller's. */
const mainStep = {} as DecodeStep;

/**
 * Run `method` for every KV head of `step` on `threads` threads (1: all on the calling thread). Threads need the
 * method's consent (`threaded`) and every head on the SIMD path (`simd`: shared WebAssembly memories); otherwise one
 * thread. With step.hash null, step.codes already hold the query codes (the workers get a copy).
 */
export function runStep(method: DecodeMethod, step: DecodeStep, layer: number, threads: number, simd: boolean): void {
  const G = step.numKvHeads;
  if (threads < 2 || !method.threaded || !simd) {
    for (let g = 0; g < G; g++) method.group(step, g);
    return;
  }
  const { numHeads: H, headDim: d, L, ranges } = step;
  const pool = attentionPool(threads - 1);
  pool.ensure(H, d, L);
  const job = pool.job, pq = pool.q, pc = pool.codes, q = step.q, out = step.out;
  for (let i = 0; i < H * d; i++) pq[i] = q[i];
  if (!step.hash) for (let i = 0; i < H * L; i++) pc[i] = step.codes[i];
  job[JobField.Method] = METHOD_NAMES.indexOf(method.name);
  job[JobField.Layer] = layer; job[JobField.Heads] = H; job[JobField.KvHeads] = G; job[JobField.HeadDim] = d;
  job[JobField.Sinks] = ranges.sinks; job[JobField.IndexedEnd] = ranges.indexedEnd; job[JobField.Length] = ranges.length;
  job[JobField.K] = step.K; job[JobField.L] = L; job[JobField.Seed] = step.hash?.seed ?? 0;
  job[JobField.CodesReady] = step.hash ? 0 : 1; job[JobField.Threads] = threads;
  for (let g = 0; g < G; g++) if (g % threads !== 0) pool.share((g % threads) - 1, layer, g, step.caches[g], step.indexes[g]);
  pool.start();
  const own = Object.assign(mainStep, step);
  own.codes = pool.codes as Int32Array;
  own.used = pool.used as Int32Array;
  own.observer = null;
  try {
    for (let g = 0; g < G; g += threads) method.group(own, g);
  } finally {
    pool.wait();
  }
  const group = H / G, po = pool.out, pu = pool.used;
  for (let g = 0; g < G; g++) {
    if (g % threads === 0) continue;
    for (let i = g * group * d, e = (g + 1) * group * d; i < e; i++) out[i] = po[i];
  }
  for (let h = 0; h < H; h++) step.used[h] = pu[h];
}
