// Choosing the next token from logits: greedy (argmax) or seeded temperature + nucleus (top-p) sampling.
import { mulberry32 } from '../random';
import type { SamplingOptions } from './types';

/** Index of the largest logit (the first one on ties, like numpy/torch argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** The same seed gives the same completion (engine/random.ts). */
export const seededRandom = mulberry32;

export class Sampler {
  private readonly random: () => number;
  private order: Uint32Array = new Uint32Array(0);
  private probs: Float64Array = new Float64Array(0);
  private sorted: Float64Array = new Float64Array(0);

  constructor(readonly options: SamplingOptions) {
    this.random = seededRandom(options.seed);
  }

  get greedy(): boolean {
    return !(this.options.temperature > 0);
  }

  next(logits: Float32Array): number {
    if (this.greedy) return argmax(logits);
    const V = logits.length;
    if (this.probs.length !== V) { this.probs = new Float64Array(V); this.order = new Uint32Array(V); }
    // softmax(logits / T) in float64.
    const t = this.options.temperature;
    const max = logits[argmax(logits)];
    let sum = 0;
    for (let i = 0; i < V; i++) { const p = Math.exp((logits[i] - max) / t); this.probs[i] = p; sum += p; }
    const topP = this.options.topP > 0 && this.options.topP < 1 ? this.options.topP : 1;
    const r = this.random() * sum * topP;
    if (topP >= 1) {
      // Plain temperature sampling: walk the distribution in id order.
      let acc = 0;
      for (let i = 0; i < V; i++) { acc += this.probs[i]; if (acc > r) return i; }
      return argmax(logits);
    }
    // Nucleus: the most probable tokens whose mass first reaches topP (ties broken by lower id). Only tokens above a
    // threshold whose mass already reaches topP (lowered until it does) can be in it — the nucleus is a prefix of the
    // descending order — so a 150K vocabulary is not sorted every step, and the result is exact.
    const probs = this.probs;
    const order = this.order;
    let count = 0;
    // Probabilities are relative to the top token's (exp(max − max) = 1).
    for (let threshold = 1e-3; ; threshold /= 100) {
      count = 0;
      let above = 0;
      for (let i = 0; i < V; i++) if (probs[i] >= threshold) { order[count++] = i; above += probs[i]; }
      if (above >= sum * topP || threshold < 1e-300) break;
    }
    // Find the cut: sort just the candidates' probabilities (native numeric sort, no comparator) and walk down until
    // the mass reaches topP. Tokens above the cut are in; tokens exactly at it are taken in id order.
    const sorted = this.sorted.length >= count ? this.sorted.subarray(0, count) : (this.sorted = new Float64Array(V)).subarray(0, count);
    for (let i = 0; i < count; i++) sorted[i] = probs[order[i]];
    sorted.sort();
    const target = sum * topP;
    let mass = 0;
    let cutP = -1;
    let atCutNeeded = 0; // how many tokens with probability exactly cutP the nucleus takes
    for (let i = count - 1; i >= 0; i--) {
      if (sorted[i] !== cutP) { cutP = sorted[i]; atCutNeeded = 0; }
      atCutNeeded++;
      mass += sorted[i];
      if (mass >= target) break;
    }
    // Draw within the nucleus (any fixed order gives the same distribution; id order keeps it reproducible).
    const draw = (r / target) * mass;
    let acc = 0;
    let atCut = 0;
    let last = order[0];
    for (let i = 0; i < count; i++) {
      const id = order[i];
      const p = probs[id];
      if (p < cutP || (p === cutP && atCut++ >= atCutNeeded)) continue;
      acc += p;
      last = id;
      if (acc > draw) return id;
    }
    return last;
  }
}
