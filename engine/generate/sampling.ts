// Choosing the next token from logits: greedy (argmax) or seeded temperature + nucleus (top-p) sampling.
import type { SamplingOptions } from './types';

/** Index of the largest logit (the first one on ties, like numpy/torch argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** mulberry32: a small, fast, seedable PRNG; the same seed gives the same completion. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Sampler {
  private readonly random: () => number;
  private order: Uint32Array = new Uint32Array(0);
  private probs: Float64Array = new Float64Array(0);

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
    // Nucleus: the most probable tokens whose mass first reaches topP; sample within them (by descending probability).
    const order = this.order;
    for (let i = 0; i < V; i++) order[i] = i;
    const probs = this.probs;
    order.sort((a, b) => probs[b] - probs[a] || a - b);
    let mass = 0;
    let cut = 0;
    while (cut < V && mass < sum * topP) mass += probs[order[cut++]];
    // Renormalised draw within the nucleus: r is uniform over [0, sum·topP) ≤ mass.
    const target = (r / (sum * topP)) * mass;
    let acc = 0;
    for (let i = 0; i < cut; i++) { acc += probs[order[i]]; if (acc > target) return order[i]; }
    return order[cut - 1];
  }
}
