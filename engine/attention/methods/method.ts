// What every decode method shares: the per-step arguments (one named object), the interface a method implements,
// the observer a bench may pass in, and the two list steps all sampled methods begin with (the exact set T, then the
// LSH retrieval of spec §5). A step is split by KV head: `group(step, g)` computes the query heads of KV head g, on
// whichever thread owns g (threads.ts), so a method keeps per-thread scratch only.
import type { AttentionMethod } from '../types';
import type { HeadCache } from '../head-cache';
import type { HeadIndex } from '../head-index';
import type { KvStore } from '../kv-store';
import type { SimHash } from '../simhash';

/** Where the exact set T and the indexed set I lie for one layer at this step. */
export interface Ranges {
  sinks: number;
  /** I = [sinks, indexedEnd). */
  indexedEnd: number;
  /** T = [0, sinks) ∪ [indexedEnd, length). */
  length: number;
}

/** One decode step of one layer (n = 1): everything a method reads and writes. Reused from step to step. */
export interface DecodeStep {
  /** Query rows [numHeads, headDim] and the output rows it fills. */
  q: Float32Array;
  out: Float32Array;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Per KV head: its cache and index (a worker thread fills only the heads it owns). */
  caches: HeadCache[];
  indexes: HeadIndex[];
  ranges: Ranges;
  /** Indexed keys |I| (= ranges.indexedEnd − ranges.sinks). */
  count: number;
  K: number;
  L: number;
  budget: number | 'auto';
  /** Query codes [numHeads, L]: given (`hash` null: the ONNX graph hashed them), or filled by the method with `hash`. */
  codes: Int32Array;
  hash: SimHash | null;
  /** Per query head, filled by the method: indexed keys attended (|S|, TopK's kept keys, Quest's page keys). */
  used: Int32Array;
  /** Benches: told what each head did; null (nothing called, nothing timed) otherwise. Main thread only. */
  observer: StepObserver | null;
}

/** Hears about each step (bench/attention-probe.ts). Never called when no observer is set. */
export interface StepObserver {
  /** Milliseconds spent on one part of the step. */
  time(part: 'hash' | 'retrieve' | 'attend', ms: number): void;
  /**
   * One query head of KV head g: |T| = exact, `walked` ids read from the tables, and its indexed keys attended are
   * ids[from, to) (the KV head's workspace list; valid until the group attends).
   */
  head(g: number, exact: number, walked: number, ids: Int32Array, from: number, to: number): void;
}

export interface DecodeMethod {
  readonly name: AttentionMethod;
  /** True when worker threads may run its groups (its state lives in shared memory; see threads.ts). */
  readonly threaded: boolean;
  /** Before the groups, on the main thread (Quest: bring the page summaries up to date). */
  beforeStep?(step: DecodeStep, kv: KvStore, row: Float32Array): void;
  /** The query heads of KV head g: out rows and used[h]. */
  group(step: DecodeStep, g: number): void;
}

/** Copy query head h's row into workspace slot `slot` and list T's ids from ids[at]; returns |T| (spec §1). */
export function listExact(step: DecodeStep, cache: HeadCache, h: number, slot: number, at: number): number {
  const d = step.headDim, r = step.ranges, ids = cache.ids, cq = cache.qs[slot], q = step.q, qo = h * d;
  for (let j = 0; j < d; j++) cq[j] = q[qo + j];
  let n = at;
  for (let i = 0, e = Math.min(r.sinks, r.length); i < e; i++) ids[n++] = i;
  for (let i = Math.max(r.indexedEnd, r.sinks); i < r.length; i++) ids[n++] = i;
  return n - at;
}

/** Spec §3 for query head h: its L codes into step.codes (unless the ONNX graph gave them: hash null). */
export function hashHead(step: DecodeStep, h: number): void {
  if (step.hash) step.hash.hashInto(step.q, h * step.headDim, step.codes, h * step.L);
}

/** Spec §5 for query head h: append the ids of I colliding with it in ≥ 2 tables after `at`, ascending; how many. */
export function retrieveHead(step: DecodeStep, cache: HeadCache, index: HeadIndex, h: number, at: number): number {
  const t = index.tables;
  if (!t || t.count === 0) return 0;
  return t.retrieve(step.codes, h * step.L, cache.ids, at);
}

/**
 * Exact softmax attention over the first m ids of the workspace list (slot 0's query) into out[oo..oo+d): TopK and
 * Quest once they have chosen their keys.
 */
export function attendListed(c: HeadCache, m: number, scale: number, out: Float32Array, oo: number): void {
  c.dotsIds(m);
  const logits = c.logits, d = c.d;
  for (let j = 0; j < m; j++) logits[j] *= scale;
  let mx = -Infinity;
  for (let j = 0; j < m; j++) if (logits[j] > mx) mx = logits[j];
  let z = 0;
  for (let j = 0; j < m; j++) {
    const w = Math.exp(logits[j] - mx);
    logits[j] = w;
    z += w;
  }
  c.o.fill(0);
  if (m > 0) c.axpyIds(m);
  const inv = z > 0 ? 1 / z : 0;
  for (let j = 0; j < d; j++) out[oo + j] = c.o[j] * inv;
}
