// `snout eval report`: the whole evaluation in one run — RepoBench-style quality over a (K, L) sweep and attention
// fidelity on real activations — written as eval-results/ data (JSON) and SVG plots. README.md there is written by
// hand around these tables (the generated tables go to tables.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AttentionConfig, AttentionMethod } from '../attention/types';
import type { LoadedModel } from '../generate/types';
import { fidelityOverPrompts, summariseFidelity, type MethodRun } from './fidelity';
import { packedPrompts } from './packed';
import { aggregate, methodSpec, runRepoBench, summarise, type ItemResult, type PromptStyle, type RepoBenchItem } from './repobench';
import { errorScatterSvg, errorVsEntropySvg, markdownDeltas, markdownFidelity, markdownScores, scoreVsBudgetSvg, type SweepPoint } from './report';

export interface ReportOptions {
  outDir: string;
  items: RepoBenchItem[];
  kls: Array<{ K: number; L: number }>;
  methods: AttentionMethod[];
  style: PromptStyle;
  maxTokens: number;
  fidelityRepos: string[];
  fidelityPrompts: number;
  fidelitySteps: number;
  /** Attention overrides for the fidelity replays (e.g. tailThreshold). */
  fidelityBase?: Partial<AttentionConfig>;
  log: (line: string) => void;
  /** Skip a part (e.g. rerun only fidelity). */
  skipRepobench?: boolean;
  skipFidelity?: boolean;
}

const label = (m: string, K: number, L: number) => `${m} ${K}x${L}`;

export async function runReport(model: LoadedModel, o: ReportOptions): Promise<void> {
  mkdirSync(o.outDir, { recursive: true });
  const tables: string[] = [];
  if (!o.skipRepobench) {
    const sparse = o.methods.filter((m) => m !== 'dense');
    const specs = [methodSpec('dense', 10, 150, 'auto'), ...o.kls.flatMap(({ K, L }) => sparse.map((m) => methodSpec(m, K, L, 'auto', label(m, K, L))))];
    const t0 = Date.now();
    let done = 0;
    const results: ItemResult[] = await runRepoBench(model, o.items, specs, {
      maxTokens: o.maxTokens, style: o.style, contextLength: model.spec.maxPositionEmbeddings,
      onItem: () => { if (++done % specs.length === 0) o.log(`repobench ${done / specs.length}/${o.items.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)`); },
    });
    const names = specs.map((s) => s.name);
    const s = summarise(results, names);
    const dense = s.methods.dense;
    const points: SweepPoint[] = o.kls.flatMap(({ K, L }) => sparse.map((m) => ({ method: m, K, L, scores: s.methods[label(m, K, L)] })));
    const perItem = results.map((r) => ({ i: r.index, method: r.method, setting: r.setting, level: r.level, pred: r.prediction, gt: r.nextLine, em: r.em, es: r.es, code_sim: r.codeSim, sampled: r.sampledFraction, prompt_tokens: r.promptTokens }));
    writeFileSync(path.join(o.outDir, `repobench-${o.style}.json`), JSON.stringify({ n: o.items.length, style: o.style, maxTokens: o.maxTokens, kls: o.kls, summary: s, items: perItem }) + '\n');
    for (const metric of ['es', 'em', 'code_sim'] as const) {
      writeFileSync(path.join(o.outDir, `repobench-${o.style}-${metric}-vs-budget.svg`),
        scoreVsBudgetSvg(points, dense, metric, `RepoBench-style next line (${o.items.length} items, ${o.style} prompt): ${metric.toUpperCase()} vs budget`));
    }
    tables.push(`## RepoBench-style next line — ${o.items.length} items, ${o.style} prompt, greedy, ≤ ${o.maxTokens} tokens\n`, markdownScores(s.methods));
    const settings = [...new Set(results.map((r) => r.setting).filter((x): x is string => !!x))].sort();
    for (const st of settings) {
      const per = Object.fromEntries(names.map((n) => [n, aggregate(results.filter((r) => r.method === n && r.setting === st))]));
      tables.push(`\n### setting ${st}\n`, markdownScores(per));
    }
    const prompts = results.filter((r) => r.method === 'dense').map((r) => r.promptTokens);
    tables.push(`\nPrompt tokens: mean ${(prompts.reduce((a, b) => a + b, 0) / Math.max(1, prompts.length)).toFixed(0)}, max ${Math.max(...prompts)}.`);
    // Agreement with dense: how often a sparse method produces exactly dense's line (isolates the attention change).
    const agree = names.filter((n) => n !== 'dense').map((n) => {
      const mine = results.filter((r) => r.method === n);
      const same = mine.filter((r) => results.find((d) => d.method === 'dense' && d.index === r.index)?.prediction === r.prediction).length;
      return `| ${n} | ${(100 * same / Math.max(1, mine.length)).toFixed(1)}% |`;
    });
    tables.push('\n### Paired difference to dense (same items)\n', markdownDeltas(perItem));
    tables.push('\n### Same first line as dense\n', '| method | identical to dense |', '|---|---:|', ...agree);
  }
  if (!o.skipFidelity) {
    const steps = o.fidelitySteps;
    const ctx = model.spec.maxPositionEmbeddings;
    const prompts = packedPrompts(model.tokenizer, o.fidelityRepos, o.fidelityPrompts, ctx - steps - 1);
    const sparse = o.methods.filter((m) => m !== 'dense');
    const runs: MethodRun[] = o.kls.flatMap(({ K, L }) => sparse.map((method) => ({ label: label(method, K, L), method, K, L })));
    const { rows, sampledMean } = await fidelityOverPrompts(model, prompts, steps, runs, o.log, o.fidelityBase);
    const labels = runs.map((r) => r.label);
    const summary = summariseFidelity(rows, labels);
    writeFileSync(path.join(o.outDir, 'fidelity.json'), JSON.stringify({ prompts: prompts.map((p) => p.name), promptTokens: ctx - steps - 1, steps, runs, sampledFraction: sampledMean, summary }) + '\n');
    for (const { K, L } of o.kls) {
      const ls = sparse.map((m) => label(m, K, L));
      writeFileSync(path.join(o.outDir, `fidelity-error-vs-entropy-${K}x${L}.svg`), errorVsEntropySvg(rows, ls, `Attention output error vs head flatness (K=${K}, L=${L}, same budget)`));
    }
    const [first] = o.kls;
    writeFileSync(path.join(o.outDir, `fidelity-scatter-${first.K}x${first.L}.svg`),
      errorScatterSvg(rows, sparse.map((m) => label(m, first.K, first.L)), `Every head and decode step (K=${first.K}, L=${first.L})`));
    // Fidelity vs budget: mean error per method across the sweep.
    const { lineChart } = await import('../../bench/svg');
    writeFileSync(path.join(o.outDir, 'fidelity-error-vs-budget.svg'), lineChart(sparse.map((m) => ({
      name: m,
      points: o.kls.map(({ K, L }) => [100 * sampledMean[label(m, K, L)], summary.overall[label(m, K, L)].mean] as [number, number]).sort((a, b) => a[0] - b[0]),
    })), { title: 'Mean attention output error vs budget', xLabel: 'keys attended, % of indexed', yLabel: 'mean relative L2 error', logX: true, logY: true }));
    tables.push(`\n## Attention fidelity — ${prompts.length} packed held-out prompts × ${steps - 1} decode steps, ${ctx - steps - 1}-token context, all ${model.spec.numLayers} layers sampled\n`, markdownFidelity(summary, sampledMean, labels.filter((l) => l.endsWith(` ${(o.kls.find((k) => k.K === 8) ?? o.kls[0]).K}x${(o.kls.find((k) => k.K === 8) ?? o.kls[0]).L}`))));
  }
  writeFileSync(path.join(o.outDir, o.skipRepobench ? 'tables-fidelity.md' : o.skipFidelity ? `tables-${o.style}.md` : 'tables.md'), tables.join('\n') + '\n');
}
