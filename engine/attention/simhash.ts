// SimHash (spec §3): one Gaussian matrix W [d, K·L] from a fixed seed, shared by all layers and heads; table l gives
// x the K-bit code Σ_b [x·W[:, l·K+b] > 0] · 2^b. This file holds W and the CPU (TypeScript) hasher, used for the
// per-step query hash and as the fallback key hasher; hash-graph.ts runs the same product as an ONNX graph.
import { gaussianStream } from '../random';
import { dotF32 } from './rows';
import { instantiate, kernelModule, type WasmKernels } from './kernels/kernels';

// W[r, c] is the (r·K·L + c)-th normal of gaussianStream(seed) (engine/random.ts), row-major over [d, K·L].

export class SimHash {
  /** W row-major [d, K·L] (the ONNX graph's constant). */
  readonly W: Float32Array;
  /** W transposed, [K·L, d]: one contiguous hyperplane per row for the CPU dot products (in the SIMD memory). */
  readonly Wt: Float32Array;
  /** SIMD path: Wt, the query and the K·L projections live in one WebAssembly memory. */
  private readonly simd: { k: WasmKernels; x: Float32Array; proj: Float32Array; xOff: number; projOff: number; wOff: number } | null;

  constructor(readonly d: number, readonly K: number, readonly L: number, readonly seed: number) {
    if (K < 1 || K > 16) throw new Error(`SimHash K=${K}: codes are stored in 16 bits (1 <= K <= 16)`);
    if (L < 2) throw new Error(`SimHash L=${L}: sampling needs 2 collisions, so L >= 2`);
    const cols = K * L;
    const next = gaussianStream(seed);
    this.W = new Float32Array(d * cols);
    const xOff = 64, projOff = xOff + 4 * d, wOff = (projOff + 4 * cols + 63) & ~63;
    const mem = d % 8 === 0 && kernelModule()
      ? new WebAssembly.Memory({ initial: Math.ceil((wOff + 4 * d * cols) / 65536), maximum: Math.ceil((wOff + 4 * d * cols) / 65536), shared: true })
      : null;
    const k = mem ? instantiate(mem, d) : null;
    this.simd = mem && k ? {
      k, xOff, projOff, wOff,
      x: new Float32Array(mem.buffer, xOff, d), proj: new Float32Array(mem.buffer, projOff, cols),
    } : null;
    this.Wt = mem ? new Float32Array(mem.buffer, wOff, d * cols) : new Float32Array(d * cols);
    for (let r = 0; r < d; r++) for (let c = 0; c < cols; c++) {
      const w = next();
      this.W[r * cols + c] = w;
      this.Wt[c * d + r] = w;
    }
  }

  /** Codes of x[xo..xo+d) for all L tables into codes[co..co+L). */
  hashInto(x: Float32Array, xo: number, codes: Uint16Array | Int32Array, co: number): void {
    const { d, K, L, Wt } = this;
    if (this.simd) {
      // All K·L projections with the SIMD dot kernel, then the sign bits.
      const s = this.simd;
      const sx = s.x;
      for (let c = 0; c < d; c++) sx[c] = x[xo + c];
      s.k.dotsRange(s.xOff, s.wOff, 0, s.projOff, K * L, 4 * d, 4 * d);
      for (let l = 0; l < L; l++) {
        let code = 0;
        for (let b = 0; b < K; b++) if (s.proj[l * K + b] > 0) code |= 1 << b;
        codes[co + l] = code;
      }
      return;
    }
    for (let l = 0; l < L; l++) {
      let code = 0;
      for (let b = 0; b < K; b++) {
        const wo = (l * K + b) * d;
        if (dotF32(x, xo, Wt, wo, d) > 0) code |= 1 << b;
      }
      codes[co + l] = code;
    }
  }
}

const simhashes = new Map<string, SimHash>();
/** One SimHash per (d, K, L, seed) per thread (W is a pure function of them). */
export function simhashFor(d: number, K: number, L: number, seed: number): SimHash {
  const key = `${d}/${K}/${L}/${seed}`;
  let h = simhashes.get(key);
  if (!h) simhashes.set(key, (h = new SimHash(d, K, L, seed)));
  return h;
}
