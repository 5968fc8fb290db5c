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
export function markdownFidelity(s: FidelitySummary, sampled: Record<string, number>): string {
  const out: string[] = [];
  out.push('| method (K×L) | keys attended (of indexed) | mean rel. L2 error | median |', '|---|---:|---:|---:|');
  for (const l of s.labels) out.push(`| ${l} | ${pct(sampled[l])} | ${s.overall[l].mean.toFixed(4)} | ${s.overall[l].median.toFixed(4)} |`);
  out.push('', `| flatness quartile (entropy / ln n) | head-steps | top-20% mass | ${s.labels.join(' | ')} |`, `|---|---:|---:|${s.labels.map(() => '---:').join('|')}|`);
  for (const q of s.byFlatness) {
    out.push(`| ${q.range[0].toFixed(3)}–${q.range[1].toFixed(3)} | ${q.rows} | ${q.top20Mass.toFixed(3)} | ${s.labels.map((l) => q.error[l].toFixed(4)).join(' | ')} |`);
  }
  out.push('', `| layer | ${s.labels.join(' | ')} |`, `|---:|${s.labels.map(() => '---:').join('|')}|`);
  for (const r of s.byLayer) out.push(`| ${r.layer} | ${s.labels.map((l) => r.error[l].toFixed(4)).join(' | ')} |`);
  return out.join('\n');
}
