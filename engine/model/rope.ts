// Rotary position embedding tables. The graphs take cos/sin for the chunk's positions as inputs (computed here in
// float64, then rounded once to float32), so prefill chunks and decode steps of any length share one graph, and long
// positions keep their precision (float32 position × frequency products lose ~1e-3 rad at 16K).
import type { ModelSpec } from './spec';

/** Per-pair inverse frequencies θ^(-2i/d), with linear or llama3 scaling applied as transformers does. */
export function inverseFrequencies(spec: ModelSpec): Float64Array {
  const half = spec.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / spec.ropeTheta ** ((2 * i) / spec.headDim);
  const s = spec.ropeScaling;
  if (s.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
  } else if (s.type === 'llama3') {
    // transformers _compute_llama3_parameters: keep high frequencies, divide low ones by `factor`, blend in between.
    const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowFreqWavelen) {
        inv[i] = inv[i] / s.factor;
      } else if (wavelen >= highFreqWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** cos/sin of position × frequency for positions start..start+n-1, each [n, headDim/2] row-major. */
export class RopeTables {
  private readonly inv: Float64Array;
  readonly half: number;

  constructor(spec: ModelSpec) {
    this.inv = inverseFrequencies(spec);
    this.half = spec.headDim / 2;
  }

  fill(start: number, n: number, cos: Float32Array, sin: Float32Array): void {
    const half = this.half;
    for (let t = 0; t < n; t++) {
      const pos = start + t;
      for (let i = 0; i < half; i++) {
        const angle = pos * this.inv[i];
        cos[t * half + i] = Math.cos(angle);
        sin[t * half + i] = Math.sin(angle);
      }
    }
  }
}
