// snout bench peer [--shape 1.5b|7b] [--formats q8_0,q4_0] [--contexts 512,4096,16384,32768] [--decode N]
//                  [--engines llama.cpp,snout] [--fa both|on|off] [--fa-both-max N] [--snout-source gguf|safetensors]
//                  [--llama-threads N] [--tag NAME (results file suffix)] [--json]
// Snout against llama.cpp on the same GGUF file: a random-weight checkpoint with the exact shapes of
// Qwen2.5-Coder-1.5B or -7B (bench/peer-checkpoint.ts, cached under .cache/peer/). For each format and context: prefill
// tokens/s, decode ms/token (Snout dense and magicpig on the same prefilled prompt), load time and peak RSS.
//
// Each engine runs in its own child process (so its peak RSS, VmHWM, is its own), one at a time (two big models never
// share the machine's memory), taking turns at each context: llama.cpp with flash attention, Snout, llama.cpp without
// it, each a fresh process that loads, prefills that context's prompt and decodes (so the rows compared are measured
// minutes apart, whatever the run's length). Both engines get
// the same ids (this repository's engine sources tokenized), 2 threads, prefill batches of 512 (llama.cpp) and Snout's
// default chunk. llama.cpp's row at each context is the faster of its two flash-attention settings (both recorded).
// Before the measured processes, each engine loads once in a throwaway process (warms the page cache and any
// on-disk cache); load_s is the measured process's load, load_first_s the throwaway's.
//
// Decode ms/token is the mean of the steps after the first (steady state); the first step after a prefill is
// reported on its own (first_step_ms). llama.cpp is node-llama-cpp 3.21.1's prebuilt CPU binary, installed on first
// use into .tools/peer (never shipped in the VSIX); see PEER_INSTALL.
import { spawn } from 'node:child_process';
import { engineEnv } from '../engine/runtime/malloc-env';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../engine/errors';
import { numberArg, parseArgs, stringArg } from '../engine/cli/model-args';
import { FORMATS, SHAPES, peerCheckpoint, type PeerFormat } from './peer-checkpoint';
import { lineChart } from './svg';

const repoRoot = path.resolve(__dirname, '..');
const PEER_PREFIX = path.join(repoRoot, '.tools', 'peer');
const PEER_MODULE = path.join(PEER_PREFIX, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
export const PEER_INSTALL = 'NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm i -E --prefix .tools/peer --omit=optional ' +
  'node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1';
const THREADS = 2, BATCH = 512;
/** Lines a child writes for the parent start with this (everything else is the engines' own logging). */
const TAG = '@peer ';

export interface PeerRow {
  engine: 'llama.cpp' | 'snout-dense' | 'snout-magicpig';
  format: PeerFormat;
  context: number;
  decode_ms_per_token: number;
  prefill_tokens_per_s: number;
  load_s: number;
  peak_rss_mb: number;
  first_step_ms: number;
  load_first_s?: number;
  /** llama.cpp: the flash-attention setting of this row, and both settings' decode ms/token. */
  flash_attention?: boolean;
  fa_on_ms_per_token?: number;
  fa_off_ms_per_token?: number;
  /** Snout magicpig: the index build after the prefill (prepare()), and the fraction of keys sampled. */
  prepare_ms?: number;
  sampled_fraction?: number;
}

/** What a child reports per context (and once after load). */
interface ChildContext {
  context: number;
  prefill_tokens: number;
  prefill_s: number;
  steps_ms: number[];
  peak_rss_mb: number;
  rss_mb: number;
  method?: 'dense' | 'magicpig';
  prepare_ms?: number;
  sampled_fraction?: number;
  /** Snout: per decode step, attention (all layers) and everything else, to find where a slow step goes. */
  attention_ms?: number[];
}

function procStatusMb(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

const emit = (o: unknown) => process.stdout.write(TAG + JSON.stringify(o) + '\n');

// ---------------------------------------------------------------- children

interface ChildArgs {
  engine: 'llama.cpp' | 'snout'; file: string; idsFile: string; contexts: number[]; decode: number; fa: boolean; loadOnly: boolean;
  /** Snout on the safetensors folder: quantized on load (int8 for Q8_0, int4 for Q4_0) instead of the GGUF file. */
  weights?: 'int8' | 'int4';
  /** llama.cpp threads (Snout's are THREADS: its onnxruntime sessions' and its attention's). */
  threads: number;
}

async function llamaChild(a: ChildArgs): Promise<void> {
  const { getLlama, LlamaLogLevel } = await import(pathToFileURL(PEER_MODULE).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: a.threads });
  // Load time counts from here (the runtime is loaded, as onnxruntime is when Snout's clock starts): model + context.
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: a.file, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: Math.max(...a.contexts) + a.decode + 16, batchSize: BATCH, threads: a.threads, flashAttention: a.fa, sequences: 1,
  });
  const seq = ctx.getSequence();
  emit({ load_s: (performance.now() - t0) / 1000, peak_rss_mb: procStatusMb('VmHWM'), rss_mb: procStatusMb('VmRSS') });
  if (a.loadOnly) { await model.dispose(); await llama.dispose(); return; }
  const ids: number[] = JSON.parse(readFileSync(a.idsFile, 'utf8'));
  let have = 0; // prompt tokens in the context
  for (const n of a.contexts) {
    const t = performance.now();
    // The last prompt token is evaluated by the first decode step (its logits give the first token).
    if (n - 1 > have) await seq.evaluateWithoutGeneratingNewTokens(ids.slice(have, n - 1));
    const prefillS = (performance.now() - t) / 1000, prefillTokens = n - 1 - have;
    const gen = seq.evaluate([ids[n - 1]], { temperature: 0 });
    const steps: number[] = [];
    for (let i = 0; i < a.decode; i++) {
      const s = performance.now();
      const r = await gen.next();
      if (r.done) break;
      steps.push(performance.now() - s);
    }
    await gen.return(undefined);
    await seq.eraseContextTokenRanges([{ start: n, end: seq.nextTokenIndex }]);
    have = n;
    emit({ context: n, prefill_tokens: prefillTokens, prefill_s: prefillS, steps_ms: steps, peak_rss_mb: procStatusMb('VmHWM'), rss_mb: procStatusMb('VmRSS') } satisfies ChildContext);
  }
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
}

async function snoutChild(a: ChildArgs): Promise<void> {
  const { loadModel } = await import('../engine/generate/load');
  const t0 = performance.now();
  const model = await loadModel(a.file, { provider: 'cpu', threads: THREADS, contextLimit: Math.max(...a.contexts) + a.decode + 16, weights: a.weights });
  emit({ load_s: (performance.now() - t0) / 1000, peak_rss_mb: procStatusMb('VmHWM'), rss_mb: procStatusMb('VmRSS') });
  if (a.loadOnly) { await model.dispose(); return; }
  const ids: number[] = JSON.parse(readFileSync(a.idsFile, 'utf8'));
  const seq = model.newSequence();
  // Time the decode steps from inside: each step calls attention.forwardAsync once per layer; a step starts at its
  // layer-0 call. The attention calls' own time is kept per step too, and prepare() (the magicpig index build).
  const attention = (seq as unknown as { attention: Record<string, (...x: unknown[]) => Promise<void>> }).attention;
  const forward = attention.forwardAsync.bind(attention), prepare = attention.prepare.bind(attention);
  let starts: number[] = [], attn: number[] = [], prepareMs = 0, decoding = false;
  attention.forwardAsync = async (layer: unknown, ...rest: unknown[]) => {
    const s = performance.now();
    if (decoding && layer === 0) { starts.push(s); attn.push(0); }
    await forward(layer, ...rest);
    if (decoding) attn[attn.length - 1] += performance.now() - s;
  };
  // A layer whose exact step runs inside the next layer graph (Sequence.graphAttention) makes no forwardAsync call:
  // its step starts here, and only the hand-over (append, copy) counts as attention time (the rest is in the graph).
  const sync = attention as unknown as Record<string, (...x: unknown[]) => unknown>;
  const graphAttention = sync.graphAttention.bind(attention);
  sync.graphAttention = (layer: unknown, ...rest: unknown[]) => {
    const s = performance.now();
    const rows = graphAttention(layer, ...rest);
    if (!rows || !decoding) return rows;
    if (layer === 0) { starts.push(s); attn.push(0); }
    attn[attn.length - 1] += performance.now() - s;
    return rows;
  };
  attention.prepare = async (...x: unknown[]) => {
    const s = performance.now();
    await prepare(...x);
    prepareMs = performance.now() - s;
    decoding = true;
  };
  for (const n of a.contexts) {
    for (const method of ['dense', 'magicpig'] as const) {
      starts = []; attn = []; prepareMs = 0; decoding = false;
      // decode + 1 tokens: the first comes from the prefill's logits, each of the others from one decode step.
      const r = await model.generate(seq, { ids: ids.slice(0, n), maxTokens: a.decode + 1, sampling: { temperature: 0, topP: 1, seed: 0 }, attention: { method } });
      const end = performance.now();
      const steps = starts.map((s, i) => (i + 1 < starts.length ? starts[i + 1] : end) - s);
      emit({
        context: n, method, prefill_tokens: n - r.stats.cachedTokens, prefill_s: (r.stats.prefillMs - prepareMs) / 1000,
        steps_ms: steps, attention_ms: attn, prepare_ms: prepareMs, sampled_fraction: r.stats.sampledFraction,
        peak_rss_mb: procStatusMb('VmHWM'), rss_mb: procStatusMb('VmRSS'),
      } satisfies ChildContext);
    }
  }
  seq.dispose();
  await model.dispose();
}

// ---------------------------------------------------------------- parent

/** Runs one child to completion; returns its tagged lines (stderr passes through). */
function runChild(a: ChildArgs, log: (s: string) => void): Promise<Record<string, unknown>[]> {
  const args = [...process.execArgv, process.argv[1], 'bench', 'peer', '--child', a.engine, '--file', a.file, '--ids', a.idsFile,
    '--contexts', a.contexts.join(','), '--decode', String(a.decode), '--fa', a.fa ? 'on' : 'off', ...(a.loadOnly ? ['--load-only'] : []),
    ...(a.weights ? ['--weights', a.weights] : []), '--llama-threads', String(a.threads)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: engineEnv(process.env) }); // as the extension starts its engine (huge pages, mmap threshold)
    const out: Record<string, unknown>[] = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line.startsWith(TAG)) {
          const o = JSON.parse(line.slice(TAG.length));
          out.push(o);
          log(`  ${a.engine}${a.engine === 'llama.cpp' ? (a.fa ? ' fa' : ' no-fa') : ''}: ${summary(o)}`);
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${a.engine} child exited with ${code}`))));
  });
}

function summary(o: Record<string, unknown>): string {
  if (o.context === undefined) return `loaded in ${(o.load_s as number).toFixed(2)} s, RSS ${o.rss_mb} MB`;
  const steps = o.steps_ms as number[];
  return `${o.context}${o.method ? ' ' + o.method : ''}: prefill ${(o.prefill_tokens as number)} tokens in ${(o.prefill_s as number).toFixed(1)} s, ` +
    `first step ${steps[0]?.toFixed(0)} ms, then ${steadyMs(steps).toFixed(1)} ms/token` +
    (o.prepare_ms ? `, prepare ${(o.prepare_ms as number).toFixed(0)} ms` : '') + `, peak RSS ${o.peak_rss_mb} MB`;
}

const steadyMs = (steps: number[]) => (steps.length > 1 ? steps.slice(1).reduce((s, x) => s + x, 0) / (steps.length - 1) : steps[0] ?? NaN);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Real code as prompt text: this repository's engine sources (the same as bench engine's). */
async function promptIds(n: number): Promise<number[]> {
  const { promptText } = await import('./engine');
  const { loadTokenizer } = await import('../engine/model/tokenizer');
  const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
  const tok = loadTokenizer(path.join(shared, 'models', 'tiny-coder-hf'));
  const corpus = tok.encode(promptText(repoRoot), { addSpecialTokens: false });
  return Array.from({ length: n }, (_, i) => corpus[i % corpus.length]);
}

export async function run(argv: string[]): Promise<number> {
  const cmd = 'bench peer';
  const args = parseArgs(cmd, argv, {
    shape: 'value', formats: 'value', contexts: 'value', decode: 'value', engines: 'value', fa: 'value', 'fa-both-max': 'value', json: 'switch',
    'snout-source': 'value', 'llama-threads': 'value', tag: 'value', child: 'value', file: 'value', ids: 'value', weights: 'value', 'load-only': 'switch',
  });
  const contexts = (stringArg(args, 'contexts') ?? '512,4096,16384,32768').split(',').map(Number);
  if (contexts.some((n) => !Number.isInteger(n) || n < 2) || contexts.some((n, i) => i > 0 && n <= contexts[i - 1])) {
    throw new UserError(`${cmd}: --contexts must be increasing integers >= 2`);
  }
  const decode = numberArg(cmd, args, 'decode', (x) => Number.isInteger(x) && x >= 2 && x <= 256, 'an integer 2..256') ?? 16;
  const llamaThreads = numberArg(cmd, args, 'llama-threads', (x) => Number.isInteger(x) && x >= 1 && x <= 64, 'an integer 1..64') ?? THREADS;
  const child = stringArg(args, 'child');
  if (child) {
    const a: ChildArgs = {
      engine: child as ChildArgs['engine'], file: stringArg(args, 'file')!, idsFile: stringArg(args, 'ids')!, contexts, decode,
      fa: stringArg(args, 'fa') === 'on', loadOnly: args.switches.has('load-only'), weights: stringArg(args, 'weights') as ChildArgs['weights'], threads: llamaThreads,
    };
    await (child === 'llama.cpp' ? llamaChild(a) : snoutChild(a));
    return 0;
  }

  const shape = stringArg(args, 'shape') ?? '1.5b';
  if (!SHAPES[shape]) throw new UserError(`${cmd}: --shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  const formats = (stringArg(args, 'formats') ?? FORMATS.join(',')).split(',') as PeerFormat[];
  if (formats.some((f) => !FORMATS.includes(f))) throw new UserError(`${cmd}: --formats from ${FORMATS.join(', ')}`);
  const engines = (stringArg(args, 'engines') ?? 'llama.cpp,snout').split(',');
  if (engines.some((e) => e !== 'llama.cpp' && e !== 'snout')) throw new UserError(`${cmd}: --engines from llama.cpp, snout`);
  const faSetting = stringArg(args, 'fa') ?? 'both';
  if (!['both', 'on', 'off'].includes(faSetting)) throw new UserError(`${cmd}: --fa both|on|off`);
  const snoutSource = stringArg(args, 'snout-source') ?? 'gguf';
  if (snoutSource !== 'gguf' && snoutSource !== 'safetensors') throw new UserError(`${cmd}: --snout-source gguf|safetensors`);
  // The second flash-attention setting runs the contexts up to this one (a 32K prefill costs minutes per process).
  const faBothMax = numberArg(cmd, args, 'fa-both-max', (x) => Number.isInteger(x) && x > 0, 'a positive integer') ?? Infinity;
  const json = args.switches.has('json');
  const log = (s: string) => process.stderr.write(s + '\n');
  if (engines.includes('llama.cpp') && !existsSync(PEER_MODULE)) {
    throw new UserError(`${cmd}: llama.cpp (node-llama-cpp 3.21.1) is not installed; install it once with\n  ${PEER_INSTALL}`);
  }

  const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
  const files = peerCheckpoint(shape, formats, path.join(repoRoot, '.cache'), path.join(shared, 'models', 'tiny-coder-hf'), log);
  const idsFile = path.join(files.dir, `prompt-${contexts.at(-1)}.json`);
  writeFileSync(idsFile, JSON.stringify(await promptIds(contexts.at(-1)!)));

  const rows: PeerRow[] = [];
  const raw: Record<string, unknown>[] = [];
  const outDir = path.join(repoRoot, 'bench-results');
  const tag = stringArg(args, 'tag');
  if (tag !== undefined && !/^[a-z0-9-]{1,32}$/.test(tag)) throw new UserError(`${cmd}: --tag: up to 32 of a-z, 0-9, -`);
  const suffix = (shape === '1.5b' ? '' : `-${shape}`) + (llamaThreads === THREADS ? '' : `-llama${llamaThreads}t`) + (tag ? `-${tag}` : '');
  const meta = { bench: 'peer', shape, snout_source: snoutSource, threads: THREADS, llama_threads: llamaThreads, llama_batch: BATCH, decode_steps: decode, llama_cpp: 'node-llama-cpp 3.21.1 (prebuilt CPU)', date: new Date().toISOString(),
    load_average_at_start: loadavg().map((x) => round(x, 1)) };
  // Written after every format, so a long run that is stopped keeps what it measured.
  const save = () => {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, `peer${suffix}.json`), JSON.stringify({ ...meta, rows, raw }, null, 2) + '\n');
    writeFileSync(path.join(outDir, `peer${suffix}.md`), markdown(meta, rows));
    writeFileSync(path.join(outDir, `peer${suffix}.svg`), plot(shape, rows));
  };
  const fas = faSetting === 'both' ? [true, false] : [faSetting === 'on'];
  for (const format of formats) {
    const file = files.gguf[format];
    log(`peer: ${shape} ${format} (${path.basename(file)})`);
    const base = { file, idsFile, contexts, decode, fa: true, threads: llamaThreads };
    // Snout on the GGUF file, or on the bf16 folder quantized on load to the format's width.
    const snoutArgs = snoutSource === 'gguf' ? {} : { file: files.hf, weights: format === 'q8_0' ? 'int8' as const : 'int4' as const };
    const first: Record<string, number> = {};
    for (const engine of engines as ChildArgs['engine'][]) {
      first[engine] = (await runChild({ ...base, engine, loadOnly: true, ...(engine === 'snout' ? snoutArgs : {}) }, log))[0].load_s as number;
    }
    // Turns: llama.cpp with flash attention, Snout, llama.cpp without it.
    const runs: { engine: ChildArgs['engine']; fa: boolean }[] = [];
    if (engines.includes('llama.cpp')) runs.push({ engine: 'llama.cpp', fa: fas[0] });
    if (engines.includes('snout')) runs.push({ engine: 'snout', fa: true });
    if (engines.includes('llama.cpp') && fas.length > 1) runs.push({ engine: 'llama.cpp', fa: fas[1] });
    // The turns are taken at each context (a fresh process per engine and context), so the rows compared with each
    // other are measured minutes apart, not a whole run apart: on a shared machine the window moves the figures more
    // than the loads this costs.
    for (const n of contexts) {
      const results: { engine: string; fa: boolean; out: Record<string, unknown>[] }[] = [];
      for (const r of runs) {
        const second = r.engine === 'llama.cpp' && fas.length > 1 && r.fa === fas[1];
        if (second && n > faBothMax) continue;
        const out = await runChild({ ...base, ...r, contexts: [n], loadOnly: false, ...(r.engine === 'snout' ? snoutArgs : {}) }, log);
        results.push({ ...r, out });
        raw.push(...out.map((o) => ({ format, engine: r.engine, fa: r.engine === 'llama.cpp' ? r.fa : undefined, ...o })));
      }
      const llamaRuns = results.filter((r) => r.engine === 'llama.cpp' && r.out.some((o) => o.context === n))
        .map((r) => ({ fa: r.fa, load: r.out[0], c: r.out.find((o) => o.context === n) as unknown as ChildContext }));
      if (llamaRuns.length) {
        const ms = llamaRuns.map((r) => steadyMs(r.c.steps_ms));
        const best = ms.indexOf(Math.min(...ms)), b = llamaRuns[best];
        rows.push({
          engine: 'llama.cpp', format, context: n, decode_ms_per_token: round(ms[best], 2),
          prefill_tokens_per_s: round(b.c.prefill_tokens / b.c.prefill_s), load_s: round(b.load.load_s as number, 2),
          peak_rss_mb: b.c.peak_rss_mb, first_step_ms: round(b.c.steps_ms[0]), load_first_s: round(first['llama.cpp'], 2),
          flash_attention: b.fa,
          fa_on_ms_per_token: llamaRuns.find((r) => r.fa) ? round(ms[llamaRuns.findIndex((r) => r.fa)], 2) : undefined,
          fa_off_ms_per_token: llamaRuns.find((r) => !r.fa) ? round(ms[llamaRuns.findIndex((r) => !r.fa)], 2) : undefined,
        });
      }
      const s = results.find((r) => r.engine === 'snout');
      if (s) {
        for (const method of ['dense', 'magicpig'] as const) {
          const c = s.out.find((o) => o.context === n && o.method === method) as unknown as ChildContext;
          // The prompt is prefilled in the dense run; the magicpig run recomputes its last token only.
          const p = s.out.find((o) => o.context === n && o.method === 'dense') as unknown as ChildContext;
          rows.push({
            engine: `snout-${method}`, format, context: n, decode_ms_per_token: round(steadyMs(c.steps_ms), 2),
            prefill_tokens_per_s: round(p.prefill_tokens / p.prefill_s), load_s: round(s.out[0].load_s as number, 2),
            peak_rss_mb: c.peak_rss_mb, first_step_ms: round(c.steps_ms[0]), load_first_s: round(first.snout, 2),
            prepare_ms: round(c.prepare_ms ?? 0), sampled_fraction: round(c.sampled_fraction ?? 1, 4),
          });
        }
      }
      save();
    }
  }

  rmSync(idsFile, { force: true });
  if (json) process.stdout.write(JSON.stringify({ rows }) + '\n');
  else process.stdout.write(markdown(meta, rows));
  return 0;
}

function markdown(meta: Record<string, unknown>, rows: PeerRow[]): string {
  const header = ['engine', 'format', 'context', 'decode ms/token', 'vs llama.cpp', 'first step ms', 'prefill tok/s', 'vs llama.cpp',
    'load s (first)', 'peak RSS MB', 'notes'];
  const source = meta.snout_source === 'gguf' ? 'Snout on the GGUF file' : 'Snout on the bf16 safetensors quantized on load (int8 for Q8_0, int4 for Q4_0)';
  const lines = [`# snout bench peer: ${meta.shape} shape, ${meta.threads} threads (llama.cpp ${meta.llama_threads}), ${meta.decode_steps} decode steps (${meta.date})`, '',
    `${source}; llama.cpp ${meta.llama_cpp} on the GGUF file. Load average at the start: ${(meta.load_average_at_start as number[]).join(' / ')} (1 / 5 / 15 min) on ${cpus().length} cores.`, '',
    '| ' + header.join(' | ') + ' |', '|' + header.map(() => ' --- ').join('|') + '|'];
  for (const r of rows) {
    const ref = rows.find((x) => x.engine === 'llama.cpp' && x.format === r.format && x.context === r.context);
    const ratio = (a: number, b?: number) => (ref && r.engine !== 'llama.cpp' && b ? `${(a / b).toFixed(2)}×` : '');
    const notes = r.engine === 'llama.cpp'
      ? `flash attention ${r.flash_attention ? 'on' : 'off'} (on ${r.fa_on_ms_per_token ?? '-'}, off ${r.fa_off_ms_per_token ?? '-'} ms/token)`
      : r.engine === 'snout-magicpig' ? `prepare ${r.prepare_ms} ms, sampled ${((r.sampled_fraction ?? 1) * 100).toFixed(1)} %` : '';
    lines.push('| ' + [r.engine, r.format, r.context, r.decode_ms_per_token, ratio(r.decode_ms_per_token, ref?.decode_ms_per_token), r.first_step_ms,
      r.prefill_tokens_per_s, ratio(r.prefill_tokens_per_s, ref?.prefill_tokens_per_s), `${r.load_s} (${r.load_first_s ?? '-'})`, r.peak_rss_mb, notes].join(' | ') + ' |');
  }
  return lines.join('\n') + '\n';
}

export function plot(shape: string, rows: PeerRow[]): string {
  const series = [];
  for (const format of FORMATS) {
    for (const engine of ['llama.cpp', 'snout-dense', 'snout-magicpig'] as const) {
      const pts = rows.filter((r) => r.engine === engine && r.format === format).map((r) => [r.context, r.decode_ms_per_token] as [number, number]);
      if (pts.length) series.push({ name: `${engine} ${format.toUpperCase()}`, points: pts });
    }
  }
  const ctxs = [...new Set(rows.map((r) => r.context))].sort((a, b) => a - b);
  return lineChart(series, {
    title: `Decode ms/token, Qwen2.5-Coder-${shape.toUpperCase()} shape (random weights), 2 threads`, xLabel: 'context tokens', yLabel: 'ms per token',
    logX: true, logY: true, xTicks: ctxs.map((n) => [n, n >= 1024 ? `${n / 1024}K` : String(n)]),
  });
}
