// Quest (a baseline, spec "Baselines"): pages of PAGE consecutive indexed keys keep per-channel min and max; a
// page scores Σ_j max(q_j·min_j, q_j·max_j); T plus every key of the best pages is attended exactly. Budget 'auto' =
// ⌈|S| / PAGE⌉ pages, |S| from MagicPIG's retrieval for this head and step; a number is a fraction of the pages.
import type { KvStore } from '../kv-store';
import { PAGE } from '../head-index';
import { attendListed, listExact, type DecodeStep } from './method';
import { Selection, sampledCount } from './topk';

export class Quest extends Selection {
  readonly name = 'quest';

  beforeStep(step: DecodeStep, kv: KvStore, row: Float32Array): void {
    if (step.count === 0) return;
    for (const index of step.indexes) index.updatePages(kv, step.ranges.sinks, step.ranges.indexedEnd, row);
  }

  group(step: DecodeStep, g: number): void {
    const group = step.numHeads / step.numKvHeads, c = step.caches[g], index = step.indexes[g], r = step.ranges;
    const d = this.d, q = step.q, obs = step.observer, total = Math.ceil(step.count / PAGE), top = this.top;
    top.reserve(step.count);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const nT = listExact(step, c, h, 0, 0), qo = h * d;
      const pages = step.budget === 'auto' ? Math.ceil(sampledCount(step, g, h, nT) / PAGE) : Math.ceil(step.budget * total);
      const t0 = obs ? performance.now() : 0;
      const b = Math.min(total, Math.max(0, pages));
      let m = nT;
      if (b > 0) {
        const sc = top.scores;
        for (let p = 0; p < total; p++) {
          const o = p * d;
          let s = 0;
          for (let j = 0; j < d; j++) {
            const lo = q[qo + j] * index.pageMin[o + j], hi = q[qo + j] * index.pageMax[o + j];
            s += lo > hi ? lo : hi;
          }
          sc[p] = s;
        }
        top.select(total, b);
        for (let p = 0; p < total; p++) {
          if (!top.keeps(sc[p])) continue;
          for (let i = r.sinks + p * PAGE, e = Math.min(r.indexedEnd, i + PAGE); i < e; i++) c.ids[m++] = i;
        }
      }
      attendListed(c, m, this.scale, step.out, qo);
      step.used[h] = m - nT;
      if (obs) {
        obs.time('attend', performance.now() - t0);
        obs.head(g, nT, 0, c.ids, nT, m);
      }
    }
  }
}
