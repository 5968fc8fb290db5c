// Bench-only instruments for decode steps, outside the engine: a StepObserver that sums where a step's time goes and
// collects the rows it sampled, and the gather floor (those rows read with no arithmetic).
import type { Sequence } from '../engine/attention/sequence';
import type { StepObserver } from '../engine/attention/methods/index';

/** Timings and traffic of the observed decode steps. */
export class StepProfile implements StepObserver {
  hashMs = 0;
  retrieveMs = 0;
  attendMs = 0;
  walkedIds = 0;
  sampledKeys = 0;
  exactKeys = 0;
  heads = 0;
  /** When set (collectRows), the distinct key ids sampled per KV head. */
  rows: Set<number>[] | null = null;

  time(part: 'hash' | 'retrieve' | 'attend', ms: number): void {
    if (part === 'hash') this.hashMs += ms;
    else if (part === 'retrieve') this.retrieveMs += ms;
    else this.attendMs += ms;
  }

  head(g: number, exact: number, walked: number, ids: Int32Array, from: number, to: number): void {
    this.walkedIds += walked;
    this.sampledKeys += to - from;
    this.exactKeys += exact;
    this.heads++;
    if (this.rows) {
      const seen = (this.rows[g] ??= new Set<number>());
      for (let j = from; j < to; j++) seen.add(ids[j]);
    }
  }

  reset(): void {
    this.hashMs = this.retrieveMs = this.attendMs = this.walkedIds = this.sampledKeys = this.exactKeys = this.heads = 0;
  }
}

/**
 * The distinct key ids sampled per KV head by the steps `run` makes with `seq` observed by a fresh profile (one
 * thread: worker threads are not observed; collecting costs time inside the step, so use an untimed step), ascending.
 */
export async function collectRows(seq: Sequence, numKvHeads: number, run: () => Promise<void>): Promise<Int32Array[]> {
  const probe = new StepProfile();
  probe.rows = [];
  seq.observe(probe);
  try {
    await run();
  } finally {
    seq.observe(null);
  }
  return Array.from({ length: numKvHeads }, (_, g) => Int32Array.from(probe.rows![g] ?? []).sort());
}

/**
 * Read every cache line of the K and V rows `rows[g]` of each KV head of `layer`, and nothing else — a step's gathers
 * without their arithmetic (head-cache.ts touchRows). Returns the sum of the words read.
 */
export function touchRows(seq: Sequence, layer: number, rows: Int32Array[]): number {
  let sum = 0;
  for (const [g, ids] of rows.entries()) sum = (sum + seq.cache(layer).heads[g].touchRows(ids)) | 0;
  return sum;
}
