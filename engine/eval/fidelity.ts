// Attention-level fidelity on real activations: how far each sparse method's attention output is from exact
// attention, per layer, head and decode step, against how flat that head's exact attention is (its entropy).
//
// 1. Capture: greedy-decode a long prompt with dense attention through a recording SequenceAttention, keeping every
//    layer's q, k, v (post-RoPE) and exact output for the prefill chunks and the decode steps.
// 2. Replay: for each method and (K, L), feed the same prefill into a fresh createSequenceAttention(), call
//    endPrefill(), then the recorded decode steps; compare each step's output with the exact one.
// The decode inputs are teacher-forced (q of step t comes from the exact path), so errors do not compound: this
// measures the attention kernel, not the end-to-end drift (the RepoBench run measures that).
import { createSequenceAttention } from '../attention/index';
import { defaultAttentionConfig, type AttentionConfig, type AttentionMethod, type AttentionShape, type QueryCodes, type SequenceAttention } from '../attention/types';
import { attentionShape } from '../generate/load';
import { ModelSequence } from '../generate/sequence';
import type { LoadedModel } from '../generate/types';

interface Call {
  layer: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  n: number;
  out: Float32Array;
  decode: boolean;
}

/**
 * `inner` with every forward call recorded (copies: the runner reuses its buffers). A Proxy rather than a class, so
 * the wrapper keeps delegating whatever the SequenceAttention contract grows.
 */
export function recordingAttention(inner: SequenceAttention): { attention: SequenceAttention; calls: Call[] } {
  const calls: Call[] = [];
  let prefillDone = false;
  const { numHeads: H, numKvHeads: G, headDim: d } = inner.shape;
  const record = (layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array) => {
    calls.push({
      layer, n, decode: prefillDone,
      q: q.slice(0, n * H * d), k: k.slice(0, n * G * d), v: v.slice(0, n * G * d), out: out.slice(0, n * H * d),
    });
  };
  const attention = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'forward') {
        return (layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array) => {
          target.forward(layer, q, k, v, n, out);
          record(layer, q, k, v, n, out);
        };
      }
      if (prop === 'forwardAsync') {
        return async (layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array, codes?: QueryCodes) => {
          await target.forwardAsync(layer, q, k, v, n, out, codes);
          record(layer, q, k, v, n, out);
        };
      }
      if (prop === 'endPrefill') return () => { prefillDone = true; target.endPrefill(); };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { attention, calls };
}

export interface Capture {
  shape: AttentionShape;
  promptTokens: number;
  calls: Call[];
}

/** Greedy-decodes `steps` tokens after `ids` with exact attention and records every layer's q/k/v/out. */
export async function captureDecode(model: LoadedModel, ids: number[], steps: number): Promise<Capture> {
  const shape = attentionShape(model.spec);
  const dense: AttentionConfig = { ...defaultAttentionConfig(shape.numLayers), method: 'dense' };
  const rec = recordingAttention(createSequenceAttention(shape, dense));
  const seq = new ModelSequence(rec.attention);
  try {
    await model.generate(seq, { ids, maxTokens: steps, sampling: { temperature: 0, topP: 1, seed: 0 }, attention: { method: 'dense' } });
  } finally {
    seq.dispose();
  }
  // generate() may stop at EOS before `steps`; whatever decode steps ran are what we have.
  return { shape, promptTokens: ids.length, calls: rec.calls };
}

/** Outputs of `config` for the recorded decode calls (same order), plus its sampled fraction. */
export async function replay(cap: Capture, config: AttentionConfig): Promise<{ outs: Float32Array[]; sampledFraction: number }> {
  const att = createSequenceAttention(cap.shape, config);
  const { numHeads: H, headDim: d } = cap.shape;
  const outs: Float32Array[] = [];
  let ended = false;
  for (const c of cap.calls) {
    if (c.decode && !ended) {
      // As the runner does: endPrefill, build the index, then decode.
      att.endPrefill();
      await att.prepare({ provider: 'cpu' });
      att.resetStats();
      ended = true;
    }
    const out = new Float32Array(c.n * H * d);
    // Decode steps through forwardAsync, as the runner does (query hashing on the ONNX graph).
    if (c.decode) await att.forwardAsync(c.layer, c.q, c.k, c.v, c.n, out);
    else att.forward(c.layer, c.q, c.k, c.v, c.n, out);
    if (c.decode) outs.push(out);
  }
  const sampledFraction = att.stats().sampledFraction;
  att.dispose();
  return { outs, sampledFraction };
}

export interface HeadRow {
  prompt: string;
  step: number;
  layer: number;
  head: number;
  /** Keys visible to the query (context + generated so far). */
  n: number;
  /** Entropy (nats) of the exact attention distribution. */
  entropy: number;
  /** entropy / ln(n): 1 = uniform. */
  flatness: number;
  /** Softmax mass of the top 20% of keys. */
  top20Mass: number;
  /** Relative L2 error ‖o − o_exact‖ / ‖o_exact‖ per method label. */
  error: Record<string, number>;
}

/** Exact-attention statistics of head h for a decode call, from the recorded keys (float64). */
function headStats(keys: Float32Array, len: number, q: Float32Array, h: number, shape: AttentionShape) {
  const { numHeads: H, numKvHeads: G, headDim: d } = shape;
  const g = Math.floor(h / (H / G));
  const s = new Float64Array(len);
  const scale = 1 / Math.sqrt(d);
  let max = -Infinity;
  for (let j = 0; j < len; j++) {
    let dot = 0;
    const ko = (j * G + g) * d;
    for (let i = 0; i < d; i++) dot += q[h * d + i] * keys[ko + i];
    s[j] = dot * scale;
    if (s[j] > max) max = s[j];
  }
  let z = 0;
  for (let j = 0; j < len; j++) { s[j] = Math.exp(s[j] - max); z += s[j]; }
  let entropy = 0;
  for (let j = 0; j < len; j++) { const p = s[j] / z; s[j] = p; if (p > 0) entropy -= p * Math.log(p); }
  const sorted = Array.from(s).sort((a, b) => b - a);
  let top = 0;
  for (let j = 0; j < Math.ceil(len * 0.2); j++) top += sorted[j];
  return { entropy, flatness: len > 1 ? entropy / Math.log(len) : 0, top20Mass: top };
}

export interface MethodRun {
  label: string;
  method: AttentionMethod;
  K: number;
  L: number;
}

/** Per-head rows for one captured prompt and a set of methods (all layers sampled: denseLayers = []). */
export async function fidelityRows(cap: Capture, prompt: string, runs: MethodRun[], base: Partial<AttentionConfig> = {}): Promise<{ rows: HeadRow[]; sampled: Record<string, number> }> {
  const { numLayers, numHeads: H, numKvHeads: G, headDim: d } = cap.shape;
  const decodeCalls = cap.calls.filter((c) => c.decode);
  // Concatenated keys per layer, in call order, to compute exact attention statistics.
  const keys: Float32Array[] = [];
  for (let l = 0; l < numLayers; l++) {
    const parts = cap.calls.filter((c) => c.layer === l);
    const all = new Float32Array(parts.reduce((s, c) => s + c.k.length, 0));
    let at = 0;
    for (const c of parts) { all.set(c.k, at); at += c.k.length; }
    keys.push(all);
  }
  const outs: Record<string, Float32Array[]> = {};
  const sampled: Record<string, number> = {};
  for (const r of runs) {
    const config: AttentionConfig = { ...defaultAttentionConfig(numLayers), denseLayers: [], ...base, method: r.method, K: r.K, L: r.L, budget: 'auto' };
    const res = await replay(cap, config);
    outs[r.label] = res.outs;
    sampled[r.label] = res.sampledFraction;
  }
  const rows: HeadRow[] = [];
  const stepOf = new Array(numLayers).fill(0);
  decodeCalls.forEach((c, i) => {
    const step = stepOf[c.layer]++;
    const len = cap.promptTokens + step + 1;
    void G;
    for (let h = 0; h < H; h++) {
      const st = headStats(keys[c.layer], len, c.q, h, cap.shape);
      let norm = 0;
      for (let t = 0; t < d; t++) norm += c.out[h * d + t] ** 2;
      const error: Record<string, number> = {};
      for (const r of runs) {
        const o = outs[r.label][i];
        let diff = 0;
        for (let t = 0; t < d; t++) diff += (o[h * d + t] - c.out[h * d + t]) ** 2;
        error[r.label] = Math.sqrt(diff / Math.max(norm, 1e-30));
      }
      rows.push({ prompt, step, layer: c.layer, head: h, n: len, ...st, error });
    }
  });
  return { rows, sampled };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

export interface FidelitySummary {
  labels: string[];
  overall: Record<string, { mean: number; median: number }>;
  /** Rows split into flatness quartiles (by normalised entropy). */
  byFlatness: Array<{ range: [number, number]; rows: number; meanFlatness: number; top20Mass: number; error: Record<string, number> }>;
  byLayer: Array<{ layer: number; error: Record<string, number> }>;
  /** Per (layer, head): mean flatness and top-20% mass of its exact attention, mean error per label. */
  byHead: Array<{ layer: number; head: number; flatness: number; top20Mass: number; error: Record<string, number> }>;
}

export function summariseFidelity(rows: HeadRow[], labels: string[]): FidelitySummary {
  const overall = Object.fromEntries(labels.map((l) => [l, { mean: mean(rows.map((r) => r.error[l])), median: median(rows.map((r) => r.error[l])) }]));
  const sorted = [...rows].sort((a, b) => a.flatness - b.flatness);
  const byFlatness = [0, 1, 2, 3].map((q) => {
    const part = sorted.slice(Math.floor((q * sorted.length) / 4), Math.floor(((q + 1) * sorted.length) / 4));
    return {
      range: [part[0]?.flatness ?? NaN, part[part.length - 1]?.flatness ?? NaN] as [number, number],
      rows: part.length,
      meanFlatness: mean(part.map((r) => r.flatness)),
      top20Mass: mean(part.map((r) => r.top20Mass)),
      error: Object.fromEntries(labels.map((l) => [l, mean(part.map((r) => r.error[l]))])),
    };
  });
  const layers = [...new Set(rows.map((r) => r.layer))].sort((a, b) => a - b);
  const byLayer = layers.map((layer) => ({
    layer,
    error: Object.fromEntries(labels.map((l) => [l, mean(rows.filter((r) => r.layer === layer).map((r) => r.error[l]))])),
  }));
  const heads = [...new Set(rows.map((r) => `${r.layer}:${r.head}`))].map((k) => k.split(':').map(Number))
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const byHead = heads.map(([layer, head]) => {
    const mine = rows.filter((r) => r.layer === layer && r.head === head);
    return {
      layer, head,
      flatness: mean(mine.map((r) => r.flatness)),
      top20Mass: mean(mine.map((r) => r.top20Mass)),
      error: Object.fromEntries(labels.map((l) => [l, mean(mine.map((r) => r.error[l]))])),
    };
  });
  return { labels, overall, byFlatness, byLayer, byHead };
}

/**
 * Captures `steps` decode steps of each prompt and scores every run on them (attention config: defaults, all layers
 * sampled, then `base`); sampled fractions averaged over prompts.
 */
export async function fidelityOverPrompts(
  model: LoadedModel, prompts: { name: string; ids: number[] }[], steps: number, runs: MethodRun[], log: (line: string) => void,
  base: Partial<AttentionConfig> = {},
): Promise<{ rows: HeadRow[]; sampledMean: Record<string, number> }> {
  const rows: HeadRow[] = [];
  const sampled: Record<string, number[]> = {};
  for (const p of prompts) {
    const cap = await captureDecode(model, p.ids, steps);
    const r = await fidelityRows(cap, p.name, runs, base);
    rows.push(...r.rows);
    for (const [k, v] of Object.entries(r.sampled)) (sampled[k] ??= []).push(v);
    log(`fidelity ${p.name}: ${r.rows.length} head-steps`);
  }
  const sampledMean = Object.fromEntries(Object.entries(sampled).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) / v.length]));
  return { rows, sampledMean };
}
