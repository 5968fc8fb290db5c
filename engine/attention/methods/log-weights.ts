// MagicPIG's sampling probability (spec §6) and the table the fast path reads it from.
import { LOG_WEIGHT_POINTS } from '../kernels/kernels';

/** Probability that a key at cosine `cos` to q is sampled: spec §6 (K bits, L tables, ≥ 2 collisions). */
export function samplingProbability(cos: number, K: number, L: number): number {
  const c = cos > 1 ? 1 : cos < -1 ? -1 : cos;
  const p = 1 - Math.acos(c) / Math.PI;
  let pk = p;
  for (let b = 1; b < K; b++) pk *= p; // p^K by K−1 products: cheaper than Math.pow for K ≤ 16
  const a = 1 - pk, aL1 = Math.exp((L - 1) * Math.log1p(-pk)); // (1 − p^K)^(L−1)
  return 1 - a * aL1 - L * pk * aL1;
}

/**
 * arccos by Abramowitz & Stegun 4.4.46 (|error| ≤ 2e-8 rad): √(1−x)·Σ a_k x^k on [0, 1], π − acos(−x) below 0.
 * Several times cheaper than Math.acos, and far inside the table's 1e-4 budget.
 */
function acos(x: number): number {
  const a = x < 0 ? -x : x;
  const r = Math.sqrt(1 - a) * (1.5707963050 + a * (-0.2145988016 + a * (0.0889789874 + a * (-0.0501743046
    + a * (0.0308918810 + a * (-0.0170881256 + a * (0.0066700901 + a * -0.0012624911)))))));
  return x < 0 ? Math.PI - r : r;
}

const TABLE = LOG_WEIGHT_POINTS;

/**
 * log(u(θ) + 1e-4) for fixed K, L, tabulated over the angle θ = arccos(cos) and linearly interpolated.
 * Deviation from spec §6-7 (numerical only): the exact formula (exp, log1p, log per sampled key) would cost a large
 * share of a step, the table a small one (bench-results/attention-decisions.md). In θ the function is smooth (its slope is bounded by
 * 2K/(π·p)), so with 16384 points the interpolation error stays below 1e-4 in log-weight (checked in
 * test/attention/magicpig.test.ts). The WebAssembly kernel `logWeights` (kernels.c) does the same in float32.
 */
export class LogWeightTable {
  readonly t = new Float32Array(TABLE + 2); // 64 KB: stays in L2
  constructor(readonly K: number, readonly L: number) {
    for (let i = 0; i <= TABLE + 1; i++) {
      const theta = Math.min(Math.PI, (Math.PI * i) / TABLE);
      this.t[i] = Math.log(samplingProbability(Math.cos(theta), K, L) + 1e-4);
    }
  }
  /** log(u + 1e-4) for a key at cosine `cos` to the query. */
  at(cos: number): number {
    const c = cos > 1 ? 1 : cos < -1 ? -1 : cos;
    const x = acos(c) * (TABLE / Math.PI), i = x | 0, t = this.t;
    return t[i] + (x - i) * (t[i + 1] - t[i]);
  }
}
