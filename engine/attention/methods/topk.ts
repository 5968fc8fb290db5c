// Oracle TopK (a baseline, spec "Baselines"): T plus the `budget` highest-scoring keys of I, every score computed,
// softmax over the kept keys. Budget 'auto' = |S| that MagicPIG's retrieval gives this head at this step.
import { kthLargest } from '../select';
import { attendListed, hashHead, listExact, retrieveHead, type DecodeMethod, type DecodeStep } from './method';

/**
 * Picks the b largest of n scores (per-thread scratch of the selection methods): after select(), keeps(s) says for
 * each score in index order whether it is kept — every score above the b-th largest, and as many equal to it as fit,
 * first come first kept.
 */
export class TopSelector {
  scores = new Float32Array(0);
  private work = new Float32Array(0);
  private tau = 0;
  private ties = 0;

  reserve(count: number): void {
    if (this.scores.length >= count) return;
    const cap = Math.max(count, this.scores.length * 2, 1024);
    this.scores = new Float32Array(cap);
    this.work = new Float32Array(cap);
  }

  /** Choose the b largest of scores[0, n) (b ≥ 1). */
  select(n: number, b: number): void {
    const sc = this.scores, wk = this.work;
    for (let j = 0; j < n; j++) wk[j] = sc[j];
    this.tau = kthLargest(wk, n, b);
    this.ties = b;
    for (let j = 0; j < n; j++) if (sc[j] > this.tau) this.ties--;
  }

  keeps(s: number): boolean {
    return s > this.tau || (s === this.tau && this.ties-- > 0);
  }
}

/** TopK and Quest: exact attention over T plus a selection of I, on one thread. */
export abstract class Selection implements DecodeMethod {
  abstract readonly name: 'topk' | 'quest';
  readonly threaded = false;
  protected readonly top = new TopSelector();
  protected readonly scale: number;

  constructor(readonly d: number) {
    this.scale = 1 / Math.sqrt(d);
  }

  abstract group(step: DecodeStep, g: number): void;
}

/**
 * |S| that MagicPIG's query hash and retrieval give query head h at this step (the 'auto' budget of TopK and Quest;
 * the retrieved ids land after T in the workspace and are then overwritten). 0 with no index.
 */
export function sampledCount(step: DecodeStep, g: number, h: number, nT: number): number {
  if (step.count === 0) return 0;
  const obs = step.observer;
  const t0 = obs ? performance.now() : 0;
  hashHead(step, h);
  const t1 = obs ? performance.now() : 0;
  const m = retrieveHead(step, step.caches[g], step.indexes[g], h, nT);
  if (obs) {
    obs.time('hash', t1 - t0);
    obs.time('retrieve', performance.now() - t1);
  }
  return m;
}

export class TopK extends Selection {
  readonly name = 'topk';

  group(step: DecodeStep, g: number): void {
    const group = step.numHeads / step.numKvHeads, c = step.caches[g], r = step.ranges, n = step.count;
    const obs = step.observer, top = this.top;
    top.reserve(n);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const nT = listExact(step, c, h, 0, 0);
      const budget = step.budget === 'auto' ? sampledCount(step, g, h, nT) : Math.round(step.budget * n);
      const t0 = obs ? performance.now() : 0;
      const b = Math.min(n, Math.max(0, budget));
      if (b > 0) {
        c.dotsRange(r.sinks, n);
        const lg = c.logits, sc = top.scores;
        for (let j = 0; j < n; j++) sc[j] = lg[j];
        top.select(n, b);
        let m = nT;
        for (let j = 0; j < n; j++) if (top.keeps(sc[j])) c.ids[m++] = r.sinks + j;
      }
      attendListed(c, nT + b, this.scale, step.out, h * this.d);
      step.used[h] = b;
      if (obs) {
        obs.time('attend', performance.now() - t0);
        obs.head(g, nT, 0, c.ids, nT, nT + b);
      }
    }
  }
}
