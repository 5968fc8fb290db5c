// Markdown tables for evaluation results (CLI output and eval-results/README.md).
import type { MethodScores } from './repobench';
import type { FidelitySummary } from './fidelity';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '–');

/** | method | n | EM | ES | code_sim | sampled | */
export function markdownScores(methods: Record<string, MethodScores>): string {
  const lines = ['| method | n | EM | ES | code_sim | sampled fraction |', '|---|---:|---:|---:|---:|---:|'];
  for (const [m, s] of Object.entries(methods)) lines.push(`| ${m} | ${s.n} | ${f2(s.em)} | ${f2(s.es)} | ${f2(s.code_sim)} | ${pct(s.sampled_fraction)} |`);
  return lines.join('\n');
}

/** Overall error per method, then error by flatness quartile and by layer. */
export function markdownFidelity(s: FidelitySummary, sampled: Record<string, number>, headLabels?: string[]): string {
  const out: string[] = [];
  out.push('| method (K×L) | keys attended (of indexed) | mean rel. L2 error | median |', '|---|---:|---:|---:|');
  for (const l of s.labels) out.push(`| ${l} | ${pct(sampled[l])} | ${s.overall[l].mean.toFixed(4)} | ${s.overall[l].median.toFixed(4)} |`);
  out.push('', `| flatness quartile (entropy / ln n) | head-steps | top-20% mass | ${s.labels.join(' | ')} |`, `|---|---:|---:|${s.labels.map(() => '---:').join('|')}|`);
  for (const q of s.byFlatness) {
    out.push(`| ${q.range[0].toFixed(3)}–${q.range[1].toFixed(3)} | ${q.rows} | ${q.top20Mass.toFixed(3)} | ${s.labels.map((l) => q.error[l].toFixed(4)).join(' | ')} |`);
  }
  out.push('', `| layer | ${s.labels.join(' | ')} |`, `|---:|${s.labels.map(() => '---:').join('|')}|`);
  for (const r of s.byLayer) out.push(`| ${r.layer} | ${s.labels.map((l) => r.error[l].toFixed(4)).join(' | ')} |`);
  // Per head, for the configurations named in headLabels (every label would make the table too wide).
  const hl = headLabels ?? s.labels.slice(0, 3);
  out.push('', `| layer.head | flatness | top-20% mass | ${hl.join(' | ')} |`, `|---|---:|---:|${hl.map(() => '---:').join('|')}|`);
  for (const h of s.byHead) out.push(`| ${h.layer}.${h.head} | ${h.flatness.toFixed(3)} | ${h.top20Mass.toFixed(3)} | ${hl.map((l) => h.error[l].toFixed(4)).join(' | ')} |`);
  return out.join('\n');
}

import { lineChart } from '../../bench/svg';
import type { HeadRow } from './fidelity';

export interface SweepPoint {
  method: string;
  K: number;
  L: number;
  scores: MethodScores;
}

/** Score vs mean attended fraction, one line per method over the (K, L) sweep; dense as a flat reference line. */
export function scoreVsBudgetSvg(points: SweepPoint[], dense: MethodScores, metric: 'es' | 'em' | 'code_sim', title: string): string {
  const methods = [...new Set(points.map((p) => p.method))];
  const series = methods.map((m) => ({
    name: m,
    points: points.filter((p) => p.method === m).map((p) => [100 * p.scores.sampled_fraction, p.scores[metric]] as [number, number]).sort((a, b) => a[0] - b[0]),
  }));
  const xs = points.map((p) => 100 * p.scores.sampled_fraction);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  series.unshift({ name: 'dense (100%)', points: [[lo, dense[metric]], [hi, dense[metric]]] });
  const label = { es: 'Edit Similarity', em: 'Exact Match', code_sim: 'code_sim' }[metric];
  // At least ±3 points around dense on the y axis, so item noise is not drawn as a cliff.
  const ys = [dense[metric], ...points.map((p) => p.scores[metric])];
  const yRange: [number, number] = [Math.max(0, Math.min(...ys, dense[metric] - 3)), Math.min(100, Math.max(...ys, dense[metric] + 3))];
  return lineChart(series, { title, xLabel: 'keys attended, % of indexed (mean over sampled heads/steps)', yLabel: `${label} (0-100)`, logX: hi / lo > 3, yRange });
}

/** Mean relative error per flatness bin (entropy / ln n), one line per method label. */
export function errorVsEntropySvg(rows: HeadRow[], labels: string[], title: string, bins = 10): string {
  const series = labels.map((l) => {
    const pts: Array<[number, number]> = [];
    for (let b = 0; b < bins; b++) {
      const lo = b / bins, hi = (b + 1) / bins;
      const sel = rows.filter((r) => r.flatness >= lo && (r.flatness < hi || (b === bins - 1 && r.flatness <= 1 + 1e-9)));
      if (sel.length >= 3) pts.push([(lo + hi) / 2, sel.reduce((s, r) => s + r.error[l], 0) / sel.length]);
    }
    return { name: l, points: pts };
  });
  return lineChart(series, { title, xLabel: 'head flatness: entropy of exact attention / ln n (binned)', yLabel: 'mean relative L2 error of attention output', logY: true });
}

/** Every head-step as a point (flatness, error) for a few labels. */
export function errorScatterSvg(rows: HeadRow[], labels: string[], title: string): string {
  const series = labels.map((l) => ({ name: l, markersOnly: true, points: rows.map((r) => [r.flatness, Math.max(1e-5, r.error[l])] as [number, number]) }));
  return lineChart(series, { title, xLabel: 'head flatness: entropy / ln n', yLabel: 'relative L2 error (log)', logY: true, width: 720, height: 440 });
}

/** Per-item scores as written to repobench-*.json. */
export interface ItemScore {
  i: number;
  method: string;
  es: number;
  em: number;
  code_sim: number;
}

/**
 * Paired difference of each method against dense on the same items (mean, and a 95% percentile bootstrap interval
 * over items, 2000 resamples, fixed seed), so that a gap can be told from item noise.
 */
export function pairedDeltas(items: ItemScore[], metric: 'es' | 'em' | 'code_sim', seed = 1): Array<{ method: string; mean: number; lo: number; hi: number }> {
  const dense = new Map(items.filter((r) => r.method === 'dense').map((r) => [r.i, r[metric]]));
  const methods = [...new Set(items.map((r) => r.method))].filter((m) => m !== 'dense');
  let a = seed >>> 0;
  const rand = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  return methods.map((method) => {
    const d = items.filter((r) => r.method === method && dense.has(r.i)).map((r) => r[metric] - dense.get(r.i)!);
    const mean = d.reduce((s, x) => s + x, 0) / Math.max(1, d.length);
    const boots: number[] = [];
    for (let b = 0; b < 2000; b++) {
      let s = 0;
      for (let k = 0; k < d.length; k++) s += d[Math.floor(rand() * d.length)];
      boots.push(s / Math.max(1, d.length));
    }
    boots.sort((x, y) => x - y);
    return { method, mean, lo: boots[Math.floor(0.025 * boots.length)], hi: boots[Math.floor(0.975 * boots.length)] };
  });
}

export function markdownDeltas(items: ItemScore[]): string {
  const es = pairedDeltas(items, 'es'), cs = pairedDeltas(items, 'code_sim');
  const lines = ['| method | ΔES vs dense [95% CI] | Δcode_sim vs dense [95% CI] |', '|---|---:|---:|'];
  const fmt = (x: { mean: number; lo: number; hi: number }) => `${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(2)} [${x.lo.toFixed(2)}, ${x.hi.toFixed(2)}]`;
  es.forEach((e, k) => lines.push(`| ${e.method} | ${fmt(e)} | ${fmt(cs[k])} |`));
  return lines.join('\n');
}
