// MagicPIG's decode step for one query head, written plainly in float64: the algorithm of
// ../../../../shared/design/magicpig.md (§n = its sections), one numbered step at a time. No blocking, no threads,
// no SIMD, no tables: read this first, then methods/magicpig.ts for the same step made fast. The tests use it as the
// oracle for the fast path (test/attention/reference.test.ts: the same sampled set, the same output within the
// log-weight table's 1e-4).

export interface MagicPigInput {
  /** One query head (after RoPE), d numbers. */
  q: ArrayLike<number>;
  /** The cached keys and values of its KV head, one row per token, keys raw (not centred). */
  keys: ArrayLike<number>[];
  values: ArrayLike<number>[];
  /** §1: I = [sinks, indexedEnd) is sampled; T = [0, sinks) ∪ [indexedEnd, keys.length) is attended exactly. */
  sinks: number;
  indexedEnd: number;
  /** §2: the centre k̄ subtracted from every indexed key before hashing (which keys it averages: sequence.ts). */
  kbar: ArrayLike<number>;
  /** §3: the Gaussian matrix W, row-major [d, K·L]; K bits per code, L tables. */
  W: ArrayLike<number>;
  K: number;
  L: number;
}

export interface MagicPigOutput {
  /** The attention output, d numbers. */
  out: number[];
  /** §5: the sampled set S, ascending. */
  sampled: number[];
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let c = 0; c < a.length; c++) s += a[c] * b[c];
  return s;
};

/** §3: table l's code of x: bit b is set when x lies on the positive side of hyperplane W[:, l·K + b]. */
export function simhashCode(x: ArrayLike<number>, W: ArrayLike<number>, K: number, L: number, l: number): number {
  let code = 0;
  for (let b = 0; b < K; b++) {
    let proj = 0;
    for (let c = 0; c < x.length; c++) proj += x[c] * W[c * K * L + l * K + b];
    if (proj > 0) code |= 1 << b;
  }
  return code;
}

/** §6: the probability that a key at cosine `cos` to q collides with it in at least 2 of the L tables. */
export function samplingProbabilityExact(cos: number, K: number, L: number): number {
  const p = 1 - Math.acos(Math.max(-1, Math.min(1, cos))) / Math.PI; // collision probability in one table
  const pK = p ** K; // …of all K bits of one table
  return 1 - (1 - pK) ** L - L * pK * (1 - pK) ** (L - 1); // 1 − P(no table) − P(exactly one table)
}

export function magicpig({ q, keys, values, sinks, indexedEnd, kbar, W, K, L }: MagicPigInput): MagicPigOutput {
  const d = q.length, n = keys.length;

  // 1. Which tokens stay exact: sinks, then everything after the index (window, unindexed context, generated tokens).
  const T: number[] = [];
  for (let i = 0; i < n; i++) if (i < sinks || i >= indexedEnd) T.push(i);

  // 2. Key centring: k̃_i = k_i − k̄ for the indexed keys.
  const centred = (i: number) => Array.from(keys[i], (x, c) => x - kbar[c]);

  // 3. SimHash: L codes of K bits for q (keys are hashed the same way, once, when they enter the index).
  const qCodes = Array.from({ length: L }, (_, l) => simhashCode(q, W, K, L, l));

  // 4. Tables (ids bucketed by code) only make step 5 fast: here each key's codes are compared with q's directly.
  // 5. Sampling rule: key i ∈ I is sampled when its code equals q's in at least 2 of the L tables.
  const S: number[] = [];
  for (let i = sinks; i < indexedEnd; i++) {
    const k = centred(i);
    let collisions = 0;
    for (let l = 0; l < L; l++) if (simhashCode(k, W, K, L, l) === qCodes[l]) collisions++;
    if (collisions >= 2) S.push(i);
  }

  // 6. Sampling probability u_i of each sampled key, from the angle between q and k̃_i (cosine 0 for a zero k̃_i).
  const qNorm = Math.sqrt(dot(q, q));
  const u = S.map((i) => {
    const k = centred(i), den = qNorm * Math.sqrt(dot(k, k));
    return samplingProbabilityExact(den > 0 ? dot(q, k) / den : 0, K, L);
  });

  // 7. Estimator: score s_i = q·k_i/√d; a sampled key's weight exp(s_i)/u_i is the logit s_i − log u_i (here the 1/u
  //    weight is applied; + 1e-4 as in the paper's code). Raw keys in the scores: q·k̃_i = q·k_i − q·k̄ shifts every
  //    logit alike, which the softmax ignores (§2).
  const score = (i: number) => dot(q, keys[i]) / Math.sqrt(d);
  const logits = [...T.map(score), ...S.map((i, j) => score(i) - Math.log(u[j] + 1e-4))];
  const rows = [...T, ...S];

  // 8. Merge with the exact part: one softmax over [s_T, s_S − log u_S] is the max-shifted merge of o_T and o_S.
  const max = Math.max(...logits);
  const w = logits.map((x) => Math.exp(x - max));
  const z = w.reduce((a, b) => a + b, 0);
  const out = new Array<number>(d).fill(0);
  rows.forEach((i, j) => { for (let c = 0; c < d; c++) out[c] += (w[j] / z) * values[i][c]; });
  return { out, sampled: S };
}
