// Oracle TopK (a baseline, spec "Baselines"): T plus the `budget` highest-scoring keys of I, every score computed,
// softmax over the kept keys. Budget 'auto' = |S| that MagicPIG's retrieval gives this head at this step.
import { kthLargest } from '../select';
import { attendListed, hashHead, listExact, retrieveHead, type DecodeMethod, type DecodeStep } from './method';

/** Per-thread scratch of the selection methods: one float per indexed key (or page), twice. */
export class SelectScratch {
  scores = new Float32Array(0);
  work = new Float32Array(0);
  reserve(count: number): void {
    if (this.scores.length >= count) return;
    const cap = Math.max(count, this.scores.length * 2, 1024);
    this.scores = new Float32Array(cap);
    this.work = new Float32Array(cap);
  }
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

export class TopK implements DecodeMethod {
  readonly name = 'topk';
  readonly threaded = false;
  private readonly scratch = new SelectScratch();
  private readonly scale: number;

  constructor(readonly d: number) {
    this.scale = 1 / Math.sqrt(d);
  }

  group(step: DecodeStep, g: number): void {
    const group = step.numHeads / step.numKvHeads, c = step.caches[g], r = step.ranges, n = step.count;
    const obs = step.observer;
    this.scratch.reserve(n);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const nT = listExact(step, c, h, 0, 0);
      const budget = step.budget === 'auto' ? sampledCount(step, g, h, nT) : Math.round(step.budget * n);
      const t0 = obs ? performance.now() : 0;
      const b = Math.min(n, Math.max(0, budget));
      if (b > 0) {
        c.dotsRange(r.sinks, n);
        const lg = c.logits, sc = this.scratch.scores, wk = this.scratch.work;
        for (let j = 0; j < n; j++) { sc[j] = lg[j]; wk[j] = lg[j]; }
        const tau = kthLargest(wk, n, b);
        let ties = b;
        for (let j = 0; j < n; j++) if (sc[j] > tau) ties--;
        let m = nT;
        for (let j = 0; j < n; j++) {
          const s = sc[j];
          if (s > tau || (s === tau && ties-- > 0)) c.ids[m++] = r.sinks + j; // ties: first come, first kept
        }
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
