// Loads kernels.wasm (built from kernels.c by scripts/build-kernels.mjs; what each kernel does is documented there)
// and binds its exports to one memory. A module that cannot be read, compiled or instantiated is an error, never a
// silent slower path; only SNOUT_NO_WASM=1 (tests of the TypeScript fallbacks) turns the kernels off.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Points of the log-weight table over θ ∈ [0, π] (log-weights.ts; the table holds points + 2 floats). */
export const LOG_WEIGHT_POINTS = 16384;

/** Head sizes with kernels built for their row length (kernels.c KERNELS lines); others use the any-length ones. */
export const HEAD_DIMS = [64, 80, 96, 128, 256];

/** Byte pointers into the memory; rows of rowBytes read, `stride` bytes apart (row i at base + i · stride). */
export interface WasmKernels {
  /** out[j] = q · row(ids[j]). */
  dotsIds(q: number, base: number, ids: number, out: number, m: number, rowBytes: number, stride: number): void;
  /** out[j] = q · row(start + j). */
  dotsRange(q: number, base: number, start: number, out: number, m: number, rowBytes: number, stride: number): void;
  /** o += Σ_j w[j] · row(ids[j]). */
  axpyIds(o: number, base: number, ids: number, w: number, m: number, rowBytes: number, stride: number): void;
  /** o += Σ_j w[j] · row(start + j). */
  axpyRange(o: number, base: number, start: number, w: number, m: number, rowBytes: number, stride: number): void;
  /** The same four over bfloat16 rows (rowBytes = 2·d); q and o stay float32. */
  dotsIds16(q: number, base: number, ids: number, out: number, m: number, rowBytes: number, stride: number): void;
  dotsRange16(q: number, base: number, start: number, out: number, m: number, rowBytes: number, stride: number): void;
  axpyIds16(o: number, base: number, ids: number, w: number, m: number, rowBytes: number, stride: number): void;
  axpyRange16(o: number, base: number, start: number, w: number, m: number, rowBytes: number, stride: number): void;
  /**
   * out[j] = (float)((double)(q · row) · scale) over ids / a range, f32 or bf16 rows; returns the largest double
   * product (−∞ for m = 0): the scores and softmax shift of an exact part in one call.
   */
  dotsIdsMax(q: number, base: number, ids: number, out: number, m: number, rowBytes: number, stride: number, scale: number): number;
  dotsRangeMax(q: number, base: number, start: number, out: number, m: number, rowBytes: number, stride: number, scale: number): number;
  dotsIdsMax16(q: number, base: number, ids: number, out: number, m: number, rowBytes: number, stride: number, scale: number): number;
  dotsRangeMax16(q: number, base: number, start: number, out: number, m: number, rowBytes: number, stride: number, scale: number): number;
  /** Load one word of every 64-byte line of [p, p + bytes) (a prefetch); returns their sum. */
  touch(p: number, bytes: number): number;
  /** MagicPIG logits of m sampled keys in place (s_i − log(u_i + 1e-4)); returns the largest. */
  logWeights(out: number, nrm: number, m: number, table: number, qn: number, qk: number, scale: number): number;
  /** p[j] = exp(p[j] − shift) in place; returns the sum. */
  expShift(p: number, m: number, shift: number): number;
  /** Retrieval over one table set (lsh-tables.ts); returns how many ids it wrote to out. */
  retrieve(q: number, buckets: number, ids: number, idBytes: number, seen: number, out: number, L: number, B: number,
    stride: number, base: number, sampled: number, spans: number, count: number): number;
}

const ROW_KERNELS = ['dotsIds', 'dotsRange', 'axpyIds', 'axpyRange', 'dotsIds16', 'dotsRange16', 'axpyIds16', 'axpyRange16',
  'dotsIdsMax', 'dotsRangeMax', 'dotsIdsMax16', 'dotsRangeMax16'] as const;

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernels, or null when SNOUT_NO_WASM=1. Throws when the module cannot be loaded. */
export function kernelModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  if (process.env.SNOUT_NO_WASM === '1') return (compiled = null);
  // Bundled: dist/kernels.wasm beside the bundle (esbuild.mjs copies it); from source: beside this file.
  const file = path.join(__dirname, 'kernels.wasm');
  try {
    compiled = new WebAssembly.Module(readFileSync(file));
  } catch (err) {
    throw new Error(`attention kernels: cannot load ${file} (${(err as Error).message}); WebAssembly SIMD is required `
      + '(set SNOUT_NO_WASM=1 to run the much slower TypeScript kernels)');
  }
  return compiled;
}

/**
 * The kernels bound to `mem`; with d, the row kernels built for rows of d channels where there are some (then every
 * row-kernel call must pass rowBytes = 4·d, or 2·d for the bf16 ones). Null when SNOUT_NO_WASM=1.
 */
export function instantiate(mem: WebAssembly.Memory, d = 0): WasmKernels | null {
  const mod = kernelModule();
  if (!mod) return null;
  const exports = new WebAssembly.Instance(mod, { env: { memory: mem } }).exports as Record<string, unknown>;
  const sized = HEAD_DIMS.includes(d) ? `_${d}` : '';
  const k: Record<string, unknown> = { ...exports };
  for (const name of ROW_KERNELS) k[name] = exports[name + sized];
  return k as unknown as WasmKernels;
}
