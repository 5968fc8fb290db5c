// snout bench layer [--shape 1.5b|7b] [--m 1,256] [--reps 60] [--copies 4] [--variants base,fused,...] [--head]
//                   [--profile] [--json]
// One fused layer graph (post-attention of layer l + pre-attention of layer l+1, as forward.ts runs them) of a
// Qwen2.5-Coder shape with Q4_0-like packed weights (4 bits, blocks of 32, default zero point: what a Q4_0 GGUF file
// becomes), timed through session.run at M tokens. Variants (graph build options × session options) take turns in
// one process, round by round, and each keeps `copies` sessions that it cycles through so the weights come from DRAM
// as in a 28-layer decode, not from the last-level cache. Reports the median ms per layer and the GB/s that implies
// over the layer's packed bytes. --head times the output head (final norm + lm_head over the whole vocabulary) too.
// --profile writes onnxruntime's per-node profile for one session per variant at M=1 and sums it by operator.
// --model FILE.gguf [--context 512] [--decode 16] [--rounds 6] [--method dense|magicpig] [--vary SNOUT_X=a,b]: the
// whole model instead, loaded once per value of an engine environment variable (default SNOUT_FUSED=0,-: old graphs
// against fused ones), with a check that the variants decode the same greedy tokens.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { UserError } from '../engine/errors';
import { buildHeadGraph, buildLayerGraph, defaultFusedOps, io, ropeTables2d, type FusedOps, type GraphOptions } from '../engine/model/graphs';
import { isQuant, quantBytes, type QuantBits, type QuantMatrix, type WeightTensor } from '../engine/model/quant';
import type { ModelSpec } from '../engine/model/spec';
import { embedName, finalNormName, layerWeightNames } from '../engine/model/weights';
import { ort, sessionOptions } from '../engine/runtime/session';
import { arg, sizes } from './args';
import { SHAPES } from './peer-checkpoint';

interface Variant {
  name: string;
  fused?: FusedOps;
  /** MatMulNBits accuracy_level (default: the engine's). */
  accuracyLevel?: number;
  /** Session options laid over the engine's own for a large (packed) model. */
  session?: Partial<ort.InferenceSession.SessionOptions>;
  /** GraphOptions.decodeAttention, fed as the runner does when the engine attends (zero rows: the nodes' cost when off). */
  decodeAttention?: boolean;
  what: string;
}

const allFused: FusedOps = { norm: true, rope: true, bias: true, outputs: true };
const spin = { extra: { session: { intra_op: { allow_spinning: '1' } } } };

export const VARIANTS: Variant[] = [
  { name: 'base', fused: {}, what: 'graphs as before: RMSNorm as 6 ops, RoPE as slices, bias Add, Identity outputs; basic rewrites' },
  { name: 'norm', fused: { norm: true }, what: 'RMSNorm and residual+RMSNorm as (Skip)SimplifiedLayerNormalization' },
  { name: 'rope', fused: { rope: true }, what: 'RoPE as com.microsoft RotaryEmbedding' },
  { name: 'bias-out', fused: { bias: true, outputs: true }, what: 'bias inside MatMulNBits, no Identity outputs' },
  { name: 'fused', fused: allFused, what: 'all four fusions' },
  { name: 'rope-io', fused: { ...allFused, ropeIo: true }, what: 'all four, and RoPE tables and outputs in RotaryEmbedding\'s shapes (no Reshape around it)' },
  { name: 'graph-attn', fused: { ...allFused, ropeIo: true }, decodeAttention: true, what: 'rope-io, plus the decode-attention nodes fed zero rows (a step the engine attends)' },
  { name: 'base-ext', fused: {}, session: { graphOptimizationLevel: 'extended' }, what: 'base graphs, extended rewrites' },
  { name: 'base-all', fused: {}, session: { graphOptimizationLevel: 'all' }, what: 'base graphs, all rewrites' },
  { name: 'fused-all', fused: allFused, session: { graphOptimizationLevel: 'all' }, what: 'fused graphs, all rewrites' },
  { name: 'base-spin', fused: {}, session: spin, what: 'base graphs, pool threads spin' },
  { name: 'fused-spin', fused: allFused, session: spin, what: 'fused graphs, pool threads spin' },
  { name: 'fused-arena', fused: allFused, session: { enableCpuMemArena: true }, what: 'fused graphs, memory arena on' },
  { name: 'fused-acc1', fused: allFused, accuracyLevel: 1, what: 'fused graphs, MatMulNBits accuracy_level 1 (float32 compute)' },
  { name: 'fused-acc2', fused: allFused, accuracyLevel: 2, what: 'fused graphs, MatMulNBits accuracy_level 2' },
  { name: 'fused-1t', fused: allFused, session: { intraOpNumThreads: 1 }, what: 'fused graphs, 1 intra-op thread' },
];

function shapeSpec(name: string): ModelSpec {
  const s = SHAPES[name];
  if (!s) throw new UserError(`bench layer: --shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  return {
    modelType: 'qwen2', hiddenSize: s.hidden, intermediateSize: s.intermediate, numLayers: s.layers, numHeads: s.heads,
    numKvHeads: s.kvHeads, headDim: s.hidden / s.heads, vocabSize: s.vocab, maxPositionEmbeddings: 32768,
    rmsNormEps: 1e-6, ropeTheta: 1e6, ropeScaling: { type: 'none' }, tieWordEmbeddings: s.tied, attentionBias: true,
    eosTokenIds: [1],
  };
}

/** Deterministic pseudo-random bytes (speed does not depend on the values). */
function fillRandom(a: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  const w = new Uint32Array(a.buffer, a.byteOffset, a.byteLength >> 2);
  for (let i = 0; i < w.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; w[i] = x; }
}

/** A packed [N, K] matrix as a Q4_0 (or Q8_0) file gives it: random codes, scales ~0.02/8, default zero point. */
function packed(N: number, K: number, bits: QuantBits, blockSize: number, seed: number): QuantMatrix {
  const data = new Uint8Array((N * K * bits) / 8);
  fillRandom(data, seed);
  const scales = new Float32Array((N * K) / blockSize).fill(0.02 / (1 << (bits - 1)));
  return { kind: 'quant', bits, blockSize, N, K, data, scales };
}

function weights(spec: ModelSpec, bits: QuantBits, blockSize: number, headBits: QuantBits, headBlock: number): (name: string) => WeightTensor {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize: V } = spec;
  const shapes = new Map<string, number[]>();
  const vectors = new Map<string, number>();
  for (const l of [0, 1]) {
    const n = layerWeightNames(spec, l);
    shapes.set(n.q, [numHeads * D, H]).set(n.k, [numKvHeads * D, H]).set(n.v, [numKvHeads * D, H]);
    shapes.set(n.o, [H, numHeads * D]).set(n.gate, [I, H]).set(n.up, [I, H]).set(n.down, [H, I]);
    vectors.set(n.inputNorm, H).set(n.postNorm, H).set(n.qBias!, numHeads * D).set(n.kBias!, numKvHeads * D).set(n.vBias!, numKvHeads * D);
  }
  vectors.set(finalNormName, H);
  const cache = new Map<string, WeightTensor>();
  let seed = 1;
  return (name) => {
    let w = cache.get(name);
    if (w) return w;
    if (name === embedName) w = packed(V, H, headBits, headBlock, seed++);
    else if (shapes.has(name)) { const [N, K] = shapes.get(name)!; w = packed(N, K, bits, blockSize, seed++); }
    else if (vectors.has(name)) w = new Float32Array(vectors.get(name)!).fill(name.endsWith('bias') ? 0.01 : 1);
    else throw new Error(`bench layer: no weight ${name}`);
    cache.set(name, w);
    return w;
  };
}

/** The q-quantile (0.5: median; 0.1 is what a variant does when the shared machine lets it run). */
const quantile = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

interface Timed { variant: string; m: number; ms: number; p10: number; gbPerS: number; what: string }

async function makeSession(bytes: Uint8Array, v: Variant, extra: Partial<ort.InferenceSession.SessionOptions> = {}): Promise<ort.InferenceSession> {
  const base = sessionOptions('cpu', { large: true, threads: 2 });
  const extraSession = { ...(base.extra as object), ...((v.session?.extra as object) ?? {}) };
  return ort.InferenceSession.create(bytes, { ...base, ...v.session, ...extra, extra: extraSession });
}

/**
 * --model FILE: the whole model, graphs as before (SNOUT_FUSED=0) against the fused ones, loaded side by side in this
 * process; `--rounds` generate calls each, taking turns, of `--decode` greedy dense steps after a `--context`-token
 * prompt (the prompt is prefilled once, then each call hits the prefix cache and decodes again). Step times are taken
 * inside (a step starts at its layer-0 attention call), as `bench peer` does.
 */
async function wholeModel(argv: string[], file: string): Promise<number> {
  const { loadModel } = await import('../engine/generate/load');
  const context = Number(arg(argv, '--context') ?? 512), decode = Number(arg(argv, '--decode') ?? 16), rounds = Number(arg(argv, '--rounds') ?? 6);
  const method = arg(argv, '--method') ?? 'dense';
  if (method !== 'dense' && method !== 'magicpig') throw new UserError('bench layer: --method dense or magicpig');
  const log = (line: string) => process.stderr.write(line + '\n');
  // --vary NAME=a,b,...: one load per value of the environment variable NAME ('-' = unset); default SNOUT_FUSED=0,-.
  const [varName, varValues] = (arg(argv, '--vary') ?? 'SNOUT_FUSED=0,-').split('=');
  if (!/^SNOUT_[A-Z_]+$/.test(varName) || !varValues) throw new UserError('bench layer: --vary takes SNOUT_NAME=value,value');
  const saved = process.env[varName];
  const variants = varValues.split(',').map((x) => ({ name: x === '-' ? `${varName} unset` : `${varName}=${x}`, value: x === '-' ? undefined : x }));
  const runs = [];
  for (const v of variants) {
    if (v.value === undefined) delete process.env[varName]; else process.env[varName] = v.value;
    const t0 = performance.now();
    const model = await loadModel(file, { provider: 'cpu', contextLimit: context + decode + 16 });
    log(`${v.name}: loaded in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
    const seq = model.newSequence();
    const attention = (seq as unknown as { attention: Record<string, (...x: unknown[]) => Promise<void>> }).attention;
    const forward = attention.forwardAsync.bind(attention), prepare = attention.prepare.bind(attention);
    const state = { starts: [] as number[], decoding: false };
    attention.forwardAsync = async (layer: unknown, ...rest: unknown[]) => {
      if (state.decoding && layer === 0) state.starts.push(performance.now());
      await forward(layer, ...rest);
    };
    // A step whose layer-0 attention runs inside the next graph (Sequence.graphAttention) starts there instead.
    const sync = attention as unknown as Record<string, (...x: unknown[]) => unknown>;
    const graphAttention = sync.graphAttention.bind(attention);
    sync.graphAttention = (layer: unknown, ...rest: unknown[]) => {
      const rows = graphAttention(layer, ...rest);
      if (rows && state.decoding && layer === 0) state.starts.push(performance.now());
      return rows;
    };
    attention.prepare = async (...x: unknown[]) => { await prepare(...x); state.decoding = true; };
    runs.push({ v, model, seq, state, steps: [] as number[], tokens: [] as string[] });
  }
  if (saved === undefined) delete process.env[varName]; else process.env[varName] = saved;
  const ids = Array.from({ length: context }, (_, i) => 1000 + ((i * 7919) % 100000));
  for (let r = -1; r < rounds; r++) {
    for (let j = 0; j < runs.length; j++) {
      const x = runs[(j + Math.max(r, 0)) % runs.length];
      x.state.starts = []; x.state.decoding = false;
      const out = await x.model.generate(x.seq, { ids, maxTokens: decode + 1, sampling: { temperature: 0, topP: 1, seed: 0 }, attention: { method } });
      x.tokens.push(out.ids.join(','));
      const end = performance.now();
      // Steps after the first (the first step after a prefill is reported apart by bench peer).
      const steps = x.state.starts.map((t, i) => (i + 1 < x.state.starts.length ? x.state.starts[i + 1] : end) - t).slice(1);
      if (r >= 0) x.steps.push(...steps);
    }
  }
  process.stdout.write(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end\n`);
  // Greedy tokens of every call against the first variant's call of the same round (variants meant to compute the
  // same thing; the first call of each prefills, the others reuse the cached prompt).
  const ref = runs[0].tokens;
  for (const x of runs.slice(1)) process.stdout.write(`${x.v.name}: ${x.tokens.filter((t, i) => t === ref[i]).length} of ${x.tokens.length} calls decoded the same tokens as ${runs[0].v.name}\n`);
  process.stdout.write(`| graphs | context | method | decode ms/token, median | p10 | mean | steps |\n| --- | --- | --- | --- | --- | --- | --- |\n`);
  for (const x of runs) {
    const mean = x.steps.reduce((a, b) => a + b, 0) / x.steps.length;
    process.stdout.write(`| ${x.v.name} | ${context} | ${method} | ${quantile(x.steps, 0.5).toFixed(1)} | ${quantile(x.steps, 0.1).toFixed(1)} | ${mean.toFixed(1)} | ${x.steps.length} |\n`);
    x.seq.dispose();
    await x.model.dispose();
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const file = arg(argv, '--model');
  if (file) return wholeModel(argv, file);
  const spec = shapeSpec(arg(argv, '--shape') ?? '1.5b');
  const ms = sizes(arg(argv, '--m') ?? '1,256');
  const reps = Number(arg(argv, '--reps') ?? 60);
  const copies = Number(arg(argv, '--copies') ?? 4);
  const names = (arg(argv, '--variants') ?? 'base,fused').split(',');
  const bits = Number(arg(argv, '--bits') ?? 4) as QuantBits;
  const blockSize = Number(arg(argv, '--block') ?? 32);
  const headBits = Number(arg(argv, '--head-bits') ?? bits) as QuantBits;
  const headBlock = Number(arg(argv, '--head-block') ?? blockSize);
  const json = argv.includes('--json');
  const variants = names.map((n) => VARIANTS.find((v) => v.name === n) ?? (() => { throw new UserError(`bench layer: unknown variant ${n} (${VARIANTS.map((v) => v.name).join(', ')})`); })());
  if (!(Number.isInteger(reps) && reps > 0 && reps <= 1e5 && Number.isInteger(copies) && copies > 0 && copies <= 64)) {
    throw new UserError('bench layer: --reps (1..100000) and --copies (1..64) must be positive integers');
  }
  if (!ms.every((m) => Number.isInteger(m) && m > 0 && m <= 4096)) throw new UserError('bench layer: --m takes token counts 1..4096');
  for (const [b, k] of [[bits, blockSize], [headBits, headBlock]]) {
    if ((b !== 4 && b !== 8) || ![16, 32, 64, 128, 256].includes(k)) throw new UserError('bench layer: bits 4 or 8, blocks of 16..256 (a power of two)');
  }

  const { hiddenSize: H, numHeads, headDim: D } = spec;
  const weight = weights(spec, bits, blockSize, headBits, headBlock);
  const n0 = layerWeightNames(spec, 0), n1 = layerWeightNames(spec, 1);
  const layerBytes = [n0.o, n0.gate, n0.up, n0.down, n1.q, n1.k, n1.v].reduce((a, name) => {
    const w = weight(name);
    return a + (isQuant(w) ? quantBytes(w) : 0);
  }, 0);
  const log = (line: string) => process.stderr.write(line + '\n');
  log(`bench layer: ${spec.hiddenSize}/${spec.intermediateSize}/${numHeads}q/${spec.numKvHeads}kv, ${bits}-bit blocks of ${blockSize}: ${(layerBytes / 1e6).toFixed(1)} MB packed per layer; ${copies} sessions per variant, ${reps} rounds`);

  // Sessions: per variant `copies` layer sessions (+ one head session with --head).
  const withHead = argv.includes('--head');
  const sessions = new Map<string, ort.InferenceSession[]>();
  const heads = new Map<string, ort.InferenceSession>();
  for (const v of variants) {
    const options: GraphOptions = { fused: v.fused, accuracyLevel: v.accuracyLevel, decodeAttention: v.decodeAttention };
    const bytes = buildLayerGraph(spec, weight, { post: 0, pre: 1 }, options);
    const list: ort.InferenceSession[] = [];
    for (let c = 0; c < copies; c++) list.push(await makeSession(bytes, v));
    sessions.set(v.name, list);
    if (withHead) heads.set(v.name, await makeSession(buildHeadGraph(spec, weight, options), v));
  }
  const headW = weight(embedName) as QuantMatrix;
  const headBytes = quantBytes(headW);

  const results: Timed[] = [];
  for (const m of ms) {
    const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
    const feeds: Record<string, ort.Tensor> = {
      [io.x]: new ort.Tensor('float32', rand(m * H), [m, H]),
      [io.attn]: new ort.Tensor('float32', rand(m * numHeads * D), [m, numHeads * D]),
      [io.cos]: new ort.Tensor('float32', new Float32Array(m * (D / 2)).fill(0.8), [m, 1, D / 2]),
      [io.sin]: new ort.Tensor('float32', new Float32Array(m * (D / 2)).fill(0.6), [m, 1, D / 2]),
    };
    // Graphs with FusedOps.ropeIo take the tables as [m, D/2].
    const feeds2d: Record<string, ort.Tensor> = { ...feeds, [io.cos]: feeds[io.cos].reshape([m, D / 2]), [io.sin]: feeds[io.sin].reshape([m, D / 2]) };
    const noRows = (cols: number) => new ort.Tensor('float32', new Float32Array(0), [0, cols]);
    const attendFeeds: Record<string, ort.Tensor> = { ...feeds2d, [io.attnQ]: noRows(numHeads * D), [io.attnPad]: new ort.Tensor('int64', new BigInt64Array(4), [4]) };
    for (let g = 0; g < spec.numKvHeads; g++) {
      attendFeeds[`${io.attnKeys}${g}`] = noRows(D);
      attendFeeds[`${io.attnValuesT}${g}`] = new ort.Tensor('float32', new Float32Array(0), [D, 0]);
    }
    const headFeeds = { [io.hidden]: new ort.Tensor('float32', rand(H), [1, H]) };
    const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const headTimes = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const roundsHere = m > 16 ? Math.max(4, Math.ceil(reps / 8)) : reps;
    for (let r = -2; r < roundsHere; r++) {
      // Rotate who goes first each round, so no variant always follows the same one.
      for (let j = 0; j < variants.length; j++) {
        const v = variants[(j + Math.max(r, 0)) % variants.length];
        for (const s of sessions.get(v.name)!) {
          const t0 = performance.now();
          await s.run(v.decodeAttention ? attendFeeds : ropeTables2d(v.fused ?? defaultFusedOps()) ? feeds2d : feeds);
          if (r >= 0) times.get(v.name)!.push(performance.now() - t0);
        }
        if (withHead && m === ms[0]) {
          const t0 = performance.now();
          await heads.get(v.name)!.run(headFeeds);
          if (r >= 0) headTimes.get(v.name)!.push(performance.now() - t0);
        }
      }
    }
    for (const v of variants) {
      const t = quantile(times.get(v.name)!, 0.5), p10 = quantile(times.get(v.name)!, 0.1);
      results.push({ variant: v.name, m, ms: t, p10, gbPerS: layerBytes / (p10 / 1e3) / 1e9, what: v.what });
      if (withHead && m === ms[0]) {
        const h = quantile(headTimes.get(v.name)!, 0.5), p10 = quantile(headTimes.get(v.name)!, 0.1);
        results.push({ variant: `${v.name} head`, m: 1, ms: h, p10, gbPerS: headBytes / (p10 / 1e3) / 1e9, what: `head ${headBits}-bit blocks of ${headBlock}, ${(headBytes / 1e6).toFixed(0)} MB` });
      }
    }
  }

  if (argv.includes('--profile')) {
    for (const v of variants) {
      const bytes = buildLayerGraph(spec, weight, { post: 0, pre: 1 }, { fused: v.fused, accuracyLevel: v.accuracyLevel });
      const prefix = `/tmp/snout-layer-profile-${process.pid}-${v.name}`;
      const s = await makeSession(bytes, v, { enableProfiling: true, profileFilePrefix: prefix });
      const tableDims = ropeTables2d(v.fused ?? defaultFusedOps()) ? [1, D / 2] : [1, 1, D / 2];
      const feeds = {
        [io.x]: new ort.Tensor('float32', new Float32Array(H).fill(0.1), [1, H]),
        [io.attn]: new ort.Tensor('float32', new Float32Array(numHeads * D).fill(0.1), [1, numHeads * D]),
        [io.cos]: new ort.Tensor('float32', new Float32Array(D / 2).fill(0.8), tableDims),
        [io.sin]: new ort.Tensor('float32', new Float32Array(D / 2).fill(0.6), tableDims),
      };
      const runs = 30;
      for (let i = 0; i < runs; i++) await s.run(feeds);
      s.endProfiling();
      await s.release();
      // onnxruntime names the file prefix_<date>.json.
      const dir = path.dirname(prefix);
      const found = readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix) + '_') && f.endsWith('.json'));
      if (found.length === 0) { log(`${v.name}: no profile file`); continue; }
      const file = path.join(dir, found[0]);
      const events = JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
      rmSync(file, { force: true });
      const byOp = new Map<string, { us: number; count: number }>();
      let runUs = 0;
      for (const e of events) {
        if (e.cat === 'Session' && e.name === 'model_run') runUs += e.dur;
        if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
        const op = e.args?.op_name ?? '?';
        const a = byOp.get(op) ?? { us: 0, count: 0 };
        a.us += e.dur; a.count++;
        byOp.set(op, a);
      }
      const nodeUs = [...byOp.values()].reduce((a, b) => a + b.us, 0);
      log(`profile ${v.name}: run ${(runUs / runs / 1e3).toFixed(3)} ms, kernels ${(nodeUs / runs / 1e3).toFixed(3)} ms, ${[...byOp.values()].reduce((a, b) => a + b.count, 0) / runs} nodes`);
      for (const [op, a] of [...byOp].sort((x, y) => y[1].us - x[1].us)) {
        log(`  ${op.padEnd(36)} ${String(a.count / runs).padStart(3)} × ${(a.us / a.count).toFixed(1).padStart(7)} us = ${(a.us / runs / 1e3).toFixed(3)} ms`);
      }
    }
  }

  for (const list of sessions.values()) for (const s of list) await s.release();
  for (const s of heads.values()) await s.release();
  if (json) {
    process.stdout.write(JSON.stringify({ layer_bytes: layerBytes, rows: results }) + '\n');
  } else {
    process.stdout.write(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end\n`);
    process.stdout.write('| variant | M | ms per layer, median | p10 | GB/s at p10 (packed bytes) | what |\n| --- | --- | --- | --- | --- | --- |\n');
    for (const r of results) process.stdout.write(`| ${r.variant} | ${r.m} | ${r.ms.toFixed(3)} | ${r.p10.toFixed(3)} | ${r.gbPerS.toFixed(1)} | ${r.what} |\n`);
  }
  return 0;
}
