// Dense, oracle TopK and Quest for one query head, written plainly in float64 (spec "Baselines"; read magicpig.ts
// first). The oracles of test/attention: methods/dense.ts, topk.ts and quest.ts give the same outputs within float32
// rounding.

/** Exact attention: softmax(q·k_i/√d − bias_i) over the given rows, applied to their values. */
export function dense(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], logBias?: number[]): number[] {
  const d = q.length;
  const s = keys.map((k, i) => {
    let x = 0;
    for (let c = 0; c < d; c++) x += q[c] * k[c];
    return x / Math.sqrt(d) - (logBias ? logBias[i] : 0);
  });
  const m = Math.max(...s);
  const p = s.map((x) => Math.exp(x - m));
  const z = p.reduce((a, b) => a + b, 0);
  const o = new Array<number>(d).fill(0);
  values.forEach((v, i) => { for (let c = 0; c < d; c++) o[c] += (p[i] / z) * v[c]; });
  return o;
}

/** The `budget` largest of scores (ties: the earlier index), as indices in ascending order. */
function top(scores: number[], budget: number): number[] {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, Math.max(0, budget)).sort((a, b) => a - b);
}

/** The exact set T of MagicPIG §1 plus `chosen` (ids of I), attended exactly. */
function attendSet(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], sinks: number,
  indexedEnd: number, chosen: number[]): number[] {
  const ids: number[] = [];
  for (let i = 0; i < keys.length; i++) if (i < sinks || i >= indexedEnd) ids.push(i);
  ids.push(...chosen);
  return dense(q, ids.map((i) => keys[i]), ids.map((i) => values[i]));
}

/** Oracle TopK: T plus the `budget` keys of I = [sinks, indexedEnd) with the highest scores. */
export function topk(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], sinks: number,
  indexedEnd: number, budget: number): number[] {
  const scores: number[] = [];
  for (let i = sinks; i < indexedEnd; i++) scores.push(Array.from(q).reduce((a, x, c) => a + x * keys[i][c], 0));
  return attendSet(q, keys, values, sinks, indexedEnd, top(scores, budget).map((j) => sinks + j));
}

/**
 * Quest: I in pages of `page` keys, each summarised by its channel-wise min and max; a page scores
 * Σ_c max(q_c·min_c, q_c·max_c) (an upper bound of q·k on the page); T plus every key of the `pages` best pages.
 */
export function quest(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], sinks: number,
  indexedEnd: number, pages: number, page = 16): number[] {
  const scores: number[] = [];
  for (let p0 = sinks; p0 < indexedEnd; p0 += page) {
    let s = 0;
    for (let c = 0; c < q.length; c++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = p0; i < Math.min(indexedEnd, p0 + page); i++) { lo = Math.min(lo, keys[i][c]); hi = Math.max(hi, keys[i][c]); }
      s += Math.max(q[c] * lo, q[c] * hi);
    }
    scores.push(s);
  }
  const chosen = top(scores, pages).flatMap((p) => {
    const ids: number[] = [];
    for (let i = sinks + p * page; i < Math.min(indexedEnd, sinks + (p + 1) * page); i++) ids.push(i);
    return ids;
  });
  return attendSet(q, keys, values, sinks, indexedEnd, chosen);
}
