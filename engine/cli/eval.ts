// snout eval repobench|build|fidelity — completion quality and attention fidelity, dense vs MagicPIG vs TopK vs Quest.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import type { AttentionMethod } from '../attention/types';

const usage = `usage:
  snout eval repobench --data FILE.jsonl --model DIR [--attention dense,magicpig,topk,quest] [--k 10 --l 150]
                       [--budget auto|FRACTION] [--limit N] [--max-tokens 64] [--prompt repobench|native] [--json]
  snout eval build     --repo DIR [--repo DIR ...] --out FILE.jsonl [--seed 0] [--per-file 1] [--crop-lines 120]
                       [--snippet-chars 1200] [--all-code]
  snout eval order     --data FILE.jsonl --model DIR [--seeds 1,2,3] [--recent 0.25] [--prompt repobench|native]
                       [--limit N] [--max-tokens 48] [--json]   # stability vs importance order of the context, dense
  snout eval fidelity  --model DIR [--repo DIR ...] [--prompts 6] [--steps 8] [--kl 10x150,8x75]
                       [--methods magicpig,topk,quest] [--tail-threshold N] [--json] [--out FILE.json]
  snout eval report    --data FILE.jsonl --model DIR [--out eval-results] [--kl 10x150,8x75,6x50] [--limit N]
                       [--prompt repobench|native] [--max-tokens 48] [--repo DIR ...] [--prompts 6] [--steps 8]
                       [--skip repobench|fidelity] [--tail-threshold N (fidelity replays only)]`;

/** --name value pairs; repeated names collect into arrays; bare --flags are true. */
function parseArgs(argv: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UserError(`eval: unexpected argument "${a}"\n${usage}`);
    const name = a.slice(2);
    const next = argv[i + 1];
    const value = next !== undefined && !next.startsWith('--') ? (i++, next) : 'true';
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

const one = (args: Map<string, string[]>, name: string, fallback?: string): string | undefined => args.get(name)?.at(-1) ?? fallback;
function num(args: Map<string, string[]>, name: string, fallback: number): number {
  const v = one(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`eval: --${name} must be a number, got "${v}"`);
  return n;
}
function required(args: Map<string, string[]>, name: string): string {
  const v = one(args, name);
  if (!v || v === 'true') throw new UserError(`eval: --${name} is required\n${usage}`);
  return v;
}

const allMethods: AttentionMethod[] = ['dense', 'magicpig', 'topk', 'quest'];
function methodsOf(list: string): AttentionMethod[] {
  const ms = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of ms) if (!allMethods.includes(m as AttentionMethod)) throw new UserError(`eval: unknown attention method "${m}" (expected ${allMethods.join(', ')})`);
  return ms as AttentionMethod[];
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest);
  if (sub === 'build') return build(args);
  if (sub === 'repobench') return repobench(args);
  if (sub === 'fidelity') return fidelity(args);
  if (sub === 'order') return order(args);
  if (sub === 'report') return report(args);
  process.stderr.write(usage + '\n');
  return sub === undefined || sub === '--help' ? 0 : 2;
}

async function build(args: Map<string, string[]>): Promise<number> {
  const repos = args.get('repo');
  if (!repos?.length) throw new UserError(`eval build: --repo is required\n${usage}`);
  const out = required(args, 'out');
  const { buildJsonl } = await import('../eval/build');
  const { items, text } = await buildJsonl(repos, {
    seed: num(args, 'seed', 0), perFile: num(args, 'per-file', 1), cropLines: num(args, 'crop-lines', 120),
    snippetChars: num(args, 'snippet-chars', 1200), includeAllCode: one(args, 'all-code') === 'true',
  });
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, text);
  const counts: Record<string, number> = {};
  for (const it of items) counts[it.setting!] = (counts[it.setting!] ?? 0) + 1;
  process.stderr.write(`wrote ${items.length} items to ${out} (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})\n`);
  return 0;
}

/** An evenly spread, deterministic subset of n items (so --limit samples every repository and setting). */
export function spread<T>(xs: T[], n: number): T[] {
  if (n >= xs.length) return xs;
  return Array.from({ length: n }, (_, i) => xs[Math.floor((i * xs.length) / n)]);
}

/**
 * The context files' order: the builder's (importance) against the packer's stability order under simulated edit
 * histories (engine/eval/context-order.ts), dense attention, paired per item.
 */
async function order(args: Map<string, string[]>): Promise<number> {
  const data = required(args, 'data');
  const modelDir = required(args, 'model');
  const seeds = (one(args, 'seeds', '1,2,3') ?? '').split(',').map(Number);
  if (!seeds.length || seeds.some((x) => !Number.isInteger(x) || x < 0)) throw new UserError('eval: --seeds must be non-negative integers, e.g. 1,2,3');
  const recent = num(args, 'recent', 0.25);
  if (!(recent >= 0 && recent <= 1)) throw new UserError('eval: --recent must be a fraction in [0, 1]');
  const style = one(args, 'prompt', 'repobench');
  if (style !== 'repobench' && style !== 'native') throw new UserError('eval: --prompt must be repobench or native');
  const { readRepoBenchJsonl, runRepoBench, summarise, methodSpec } = await import('../eval/repobench');
  const { stabilityOrdered } = await import('../eval/context-order');
  const { pairedDeltas } = await import('../eval/report');
  let items;
  try { items = readRepoBenchJsonl(data); } catch (e) { throw new UserError(`eval: ${(e as Error).message}`); }
  items = spread(items, args.has('limit') ? num(args, 'limit', items.length) : items.length);
  const { loadModel } = await import('../index');
  const model = await loadModel(modelDir, { log: (l) => process.stderr.write(l + '\n') });
  try {
    const dense = methodSpec('dense', 10, 150, 'auto');
    const opts = { maxTokens: num(args, 'max-tokens', 48), style: style as 'repobench' | 'native', contextLength: model.spec.maxPositionEmbeddings };
    const runs: Array<{ name: string; items: typeof items }> = [{ name: 'importance', items }];
    for (const seed of seeds) runs.push({ name: `stability seed ${seed}`, items: items.map((it) => stabilityOrdered(it, seed, recent)) });
    const scores: Array<{ i: number; method: string; es: number; em: number; code_sim: number }> = [];
    const table: Record<string, ReturnType<typeof summarise>['methods'][string]> = {};
    const reordered: Record<string, number> = {};
    for (const r of runs) {
      const t0 = Date.now();
      const res = await runRepoBench(model, r.items, [dense], opts);
      table[r.name] = summarise(res, ['dense']).methods.dense;
      // pairedDeltas compares every method with the one named 'dense': the importance order is that baseline.
      for (const x of res) scores.push({ i: x.index, method: r.name === 'importance' ? 'dense' : r.name, es: x.es, em: x.em, code_sim: x.codeSim });
      reordered[r.name] = r.items.filter((it, k) => it.context.some((c, j) => c !== items[k].context[j])).length;
      process.stderr.write(`${r.name}: ${items.length} items in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    const es = pairedDeltas(scores, 'es'), cs = pairedDeltas(scores, 'code_sim');
    const same = (name: string) => {
      const base = new Map(scores.filter((x) => x.method === 'dense').map((x) => [x.i, x.es]));
      const xs = scores.filter((x) => x.method === name);
      return xs.filter((x) => base.get(x.i) === x.es).length / Math.max(1, xs.length);
    };
    const out = { n: items.length, prompt: style, recent, seeds, model: model.modelDir, orders: table, reordered,
      deltas: es.map((e, k) => ({ order: e.method, es: e, code_sim: cs[k], sameEs: same(e.method) })) };
    if (args.has('json')) process.stdout.write(JSON.stringify(out) + '\n');
    else {
      const f = (x: { mean: number; lo: number; hi: number }) => `${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(2)} [${x.lo.toFixed(2)}, ${x.hi.toFixed(2)}]`;
      process.stdout.write(`Context order, ${items.length} items, ${model.modelDir}, dense, prompt ${style}, recent ${recent}\n\n| order | ES | code_sim | items reordered | ΔES vs importance [95% CI] | Δcode_sim [95% CI] | same ES |\n|---|---:|---:|---:|---:|---:|---:|\n`);
      for (const r of runs) {
        const d = out.deltas.find((x) => x.order === r.name);
        process.stdout.write(`| ${r.name} | ${table[r.name].es.toFixed(2)} | ${table[r.name].code_sim.toFixed(2)} | ${reordered[r.name]} | ${d ? f(d.es) : ''} | ${d ? f(d.code_sim) : ''} | ${d ? (100 * d.sameEs).toFixed(1) + '%' : ''} |\n`);
      }
    }
    return 0;
  } finally {
    await model.dispose();
  }
}

async function repobench(args: Map<string, string[]>): Promise<number> {
  const data = required(args, 'data');
  const modelDir = required(args, 'model');
  const methods = methodsOf(one(args, 'attention', 'dense,magicpig,topk,quest')!);
  const K = num(args, 'k', 10), L = num(args, 'l', 150);
  const budgetArg = one(args, 'budget', 'auto')!;
  const budget = budgetArg === 'auto' ? 'auto' : Number(budgetArg);
  if (budget !== 'auto' && !(budget > 0 && budget <= 1)) throw new UserError('eval: --budget must be auto or a fraction in (0, 1]');
  const style = one(args, 'prompt', 'repobench');
  if (style !== 'repobench' && style !== 'native') throw new UserError('eval: --prompt must be repobench or native');
  const json = args.has('json');
  const { readRepoBenchJsonl, runRepoBench, summarise, methodSpec } = await import('../eval/repobench');
  let items;
  try {
    items = readRepoBenchJsonl(data);
  } catch (e) {
    throw new UserError(`eval: ${(e as Error).message}`);
  }
  const limit = args.has('limit') ? num(args, 'limit', items.length) : items.length;
  items = spread(items, limit);
  const { loadModel } = await import('../index');
  const model = await loadModel(modelDir, { log: (l) => process.stderr.write(l + '\n') });
  try {
    const specs = methods.map((m) => methodSpec(m, K, L, budget));
    const t0 = Date.now();
    let done = 0;
    const results = await runRepoBench(model, items, specs, {
      maxTokens: num(args, 'max-tokens', 64), style, contextLength: model.spec.maxPositionEmbeddings,
      onItem: () => {
        done++;
        if (!json && done % specs.length === 0) process.stderr.write(`\r${done / specs.length}/${items.length} items (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      },
    });
    if (!json) process.stderr.write('\n');
    const s = summarise(results, specs.map((m) => m.name));
    const methodsOut = Object.fromEntries(Object.entries(s.methods).map(([k, v]) => [k, { em: v.em, es: v.es, code_sim: v.code_sim, sampled_fraction: v.sampled_fraction }]));
    if (json) {
      process.stdout.write(JSON.stringify({ n: items.length, methods: methodsOut, by_setting: s.bySetting, by_level: s.byLevel, K, L, budget, prompt: style }) + '\n');
    } else {
      const { markdownScores } = await import('../eval/report');
      process.stdout.write(`RepoBench-style next line, ${items.length} items, ${model.modelDir}, K=${K} L=${L}, budget ${budget}, prompt ${style}\n\n`);
      process.stdout.write(markdownScores(s.methods) + '\n');
      for (const [title, table] of [['setting', s.bySetting], ['level', s.byLevel]] as const) {
        const groups = [...new Set(Object.values(table).flatMap((g) => Object.keys(g)))];
        for (const g of groups) {
          process.stdout.write(`\n${title} ${g}:\n` + markdownScores(Object.fromEntries(Object.entries(table).map(([m, v]) => [m, v[g]]).filter(([, v]) => v))) + '\n');
        }
      }
    }
  } finally {
    await model.dispose();
  }
  return 0;
}

async function fidelity(args: Map<string, string[]>): Promise<number> {
  const modelDir = required(args, 'model');
  const { heldOutStdlib, packedPrompts } = await import('../eval/packed');
  const repos = args.get('repo') ?? heldOutStdlib();
  if (!repos.length) throw new UserError('eval fidelity: no --repo given and no held-out Python packages (json, email, asyncio) found under /usr/lib/python3.*');
  const steps = num(args, 'steps', 8);
  const count = num(args, 'prompts', 6);
  const kls = parseKl(one(args, 'kl', '10x150,8x75')!);
  const methods = methodsOf(one(args, 'methods', 'magicpig,topk,quest')!).filter((m) => m !== 'dense');
  const { loadModel } = await import('../index');
  const { fidelityOverPrompts, summariseFidelity } = await import('../eval/fidelity');
  const model = await loadModel(modelDir, { log: (l) => process.stderr.write(l + '\n') });
  try {
    const ctx = model.spec.maxPositionEmbeddings;
    const prompts = packedPrompts(model.tokenizer, repos, count, ctx - steps - 1);
    const runs = kls.flatMap(({ K, L }) => methods.map((method) => ({ label: `${method} ${K}x${L}`, method, K, L })));
    const { rows, sampledMean } = await fidelityOverPrompts(model, prompts, steps, runs,
      (line) => { if (!args.has('json')) process.stderr.write(line + '\n'); }, tailArg(args));
    const summary = summariseFidelity(rows, runs.map((r) => r.label));
    const result = { model: model.modelDir, prompts: prompts.map((p) => p.name), promptTokens: ctx - steps - 1, steps, runs, sampledFraction: sampledMean, summary, rows };
    const outFile = one(args, 'out');
    if (outFile) { mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true }); writeFileSync(outFile, JSON.stringify(result) + '\n'); }
    if (args.has('json')) process.stdout.write(JSON.stringify({ ...result, rows: undefined }) + '\n');
    else {
      const { markdownFidelity } = await import('../eval/report');
      process.stdout.write(markdownFidelity(summary, sampledMean) + '\n');
    }
  } finally {
    await model.dispose();
  }
  return 0;
}

/**
 * --tail-threshold N: the exact tail's length before new tokens are folded into the index (default 256). The index
 * covers whole blocks of N tokens, so up to N recent tokens past the window stay exact; 1 indexes everything past the
 * window (the fidelity study's setting before the block grid existed).
 */
function tailArg(args: Map<string, string[]>): { tailThreshold?: number } {
  if (!args.has('tail-threshold')) return {};
  const n = num(args, 'tail-threshold', 256);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`eval: --tail-threshold must be a whole number >= 0, got ${n}`);
  return { tailThreshold: n };
}

function parseKl(list: string): Array<{ K: number; L: number }> {
  return list.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new UserError(`eval: --kl entries look like 10x150, got "${s}"`);
    return { K: Number(m[1]), L: Number(m[2]) };
  });
}

async function report(args: Map<string, string[]>): Promise<number> {
  const skip = args.get('skip') ?? [];
  const modelDir = required(args, 'model');
  const { readRepoBenchJsonl } = await import('../eval/repobench');
  const { heldOutStdlib } = await import('../eval/packed');
  let items: import('../eval/repobench').RepoBenchItem[] = [];
  if (!skip.includes('repobench')) {
    items = readRepoBenchJsonl(required(args, 'data'));
    if (args.has('limit')) items = spread(items, num(args, 'limit', items.length));
  }
  const repos = args.get('repo') ?? heldOutStdlib();
  if (!skip.includes('fidelity') && !repos.length) throw new UserError('eval report: no --repo and no held-out stdlib packages found');
  const style = one(args, 'prompt', 'repobench');
  if (style !== 'repobench' && style !== 'native') throw new UserError('eval: --prompt must be repobench or native');
  const { loadModel } = await import('../index');
  const { runReport } = await import('../eval/run-report');
  const model = await loadModel(modelDir, { log: (l) => process.stderr.write(l + '\n') });
  try {
    await runReport(model, {
      outDir: one(args, 'out', 'eval-results')!, items, kls: parseKl(one(args, 'kl', '10x150,8x75,6x50')!),
      methods: methodsOf(one(args, 'attention', 'dense,magicpig,topk,quest')!), style, maxTokens: num(args, 'max-tokens', 48),
      fidelityRepos: repos, fidelityPrompts: num(args, 'prompts', 6), fidelitySteps: num(args, 'steps', 8), fidelityBase: tailArg(args),
      log: (l) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`),
      skipRepobench: skip.includes('repobench'), skipFidelity: skip.includes('fidelity'),
    });
  } finally {
    await model.dispose();
  }
  return 0;
}
