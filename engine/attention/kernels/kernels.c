// The hot loops of a decode step, compiled to WebAssembly SIMD (f32x4) by clang: `node scripts/build-kernels.mjs`
// writes kernels.wasm beside this file, which kernels.ts loads. Every pointer is a byte address in the memory the
// module imports (one KV head's cache and workspace, head-cache.ts; or one table set, lsh-tables.ts), so the cache is
// read in place. Floating-point operations are written in the order they must happen: clang keeps it (no -ffast-math),
// and the TypeScript fallbacks and tests depend on these exact bits.
//
//   dots:  out[j] = q · row_j                 (scores of a gathered set of keys)
//   dotsMax: out[j] = scale · (q · row_j), and the largest (the exact part of a step: its softmax shift)
//   axpy:  o += Σ_j w[j] · row_j              (weighted sum of a gathered set of values)
//   touch: one load per 64-byte line          (WebAssembly has no prefetch; this is one)
//   logWeights, expShift                      (MagicPIG's per-key math after the gathers, spec §6-7)
//   retrieve                                  (keys colliding with q in ≥ 2 of L tables, spec §5)
//
// Rows are given as an id list (`…Ids`: row j = base + ids[j] · stride) or a contiguous range (`…Range`: row j =
// base + (start + j) · stride); `stride` is the byte distance between tokens (K and V of a token are interleaved).
// The `…16` kernels read bfloat16 rows (q, o and weights stay float32). Head sizes in HEAD_DIMS get copies built for
// that row length (exports `dotsIds_128`, …): a known trip count lets clang unroll axpy with immediate offsets.
// Built with -mllvm -disable-lsr: loop strength reduction turned the row pointers into one shared counter plus adds,
// which loses the immediate offsets.
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define INLINE static inline __attribute__((always_inline))
/** A byte address in the imported memory (pointer arithmetic, so clang folds constant offsets into the loads). */
typedef uint8_t *addr;

INLINE v128_t load(addr p) { return wasm_v128_load((const void *)p); }
INLINE void store(addr p, v128_t v) { wasm_v128_store((void *)p, v); }
INLINE float loadf(addr p) { return *(const float *)p; }
INLINE int32_t loadi(addr p) { return *(const int32_t *)p; }

/** Rows gathered per pass: independent accumulators, so the rows' cache misses overlap (the gathers wait on memory). */
#define ROWS 4

/** Row k of pass j: by id or by position. */
INLINE addr rowAt(int byIds, addr base, uint32_t rows, int32_t j, uint32_t stride) {
  uint32_t i = byIds ? (uint32_t)loadi((addr)(uintptr_t)rows + 4 * j) : rows + (uint32_t)j;
  return base + i * stride;
}

/** The sum of a score's two accumulators, then its lanes left to right. */
INLINE float hsum(v128_t a, v128_t b) {
  v128_t s = wasm_f32x4_add(a, b);
  return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2)
    + wasm_f32x4_extract_lane(s, 3);
}

/** bfloat16 → float32: four u16 lanes into the top halves of four 32-bit lanes (an interleave with zeros). */
INLINE v128_t widenLow(v128_t x) { return wasm_i16x8_shuffle(wasm_i16x8_splat(0), x, 0, 8, 1, 9, 2, 10, 3, 11); }
INLINE v128_t widenHigh(v128_t x) { return wasm_i16x8_shuffle(wasm_i16x8_splat(0), x, 4, 12, 5, 13, 6, 14, 7, 15); }

// ---- dots ------------------------------------------------------------------------------------------------------------
// n rows (1 or ROWS) at a time; q's 8 channels of a step are loaded once for all of them. Each row keeps two
// accumulators (channels c..c+3 and c+4..c+7 of every 8), summed by hsum at the end.

/** Adds the next 8 channels of the n rows (at r[k]) times q's (at qc) to their accumulators. */
INLINE void dotsStep(int n, int bf16, addr qc, const addr *r, v128_t *lo, v128_t *hi) {
  v128_t qlo = load(qc), qhi = load(qc + 16);
  if (bf16) {
    v128_t x[ROWS];
    for (int k = 0; k < n; k++) x[k] = load(r[k]);
    for (int k = 0; k < n; k++) lo[k] = wasm_f32x4_add(lo[k], wasm_f32x4_mul(qlo, widenLow(x[k])));
    for (int k = 0; k < n; k++) hi[k] = wasm_f32x4_add(hi[k], wasm_f32x4_mul(qhi, widenHigh(x[k])));
  } else {
    for (int k = 0; k < n; k++) lo[k] = wasm_f32x4_add(lo[k], wasm_f32x4_mul(qlo, load(r[k])));
    for (int k = 0; k < n; k++) hi[k] = wasm_f32x4_add(hi[k], wasm_f32x4_mul(qhi, load(r[k] + 16)));
  }
}

INLINE void dotsPass(int n, int bf16, addr q, const addr *row, addr out, uint32_t rowBytes) {
  v128_t lo[ROWS], hi[ROWS];
  addr r[ROWS];
  for (int k = 0; k < n; k++) { lo[k] = hi[k] = wasm_f32x4_splat(0); r[k] = row[k]; }
  const uint32_t step = bf16 ? 16 : 32; // row bytes per 8 channels (q: 32)
  // One step an iteration, the pointers moving: two steps an iteration kept both steps' q live at once and ran
  // slower, and so did a fully unrolled loop (too many loads live).
#pragma clang loop unroll(disable)
  for (addr end = r[0] + rowBytes, qc = q; r[0] < end; qc += 32) {
    dotsStep(n, bf16, qc, r, lo, hi);
    for (int k = 0; k < n; k++) r[k] += step;
  }
  for (int k = 0; k < n; k++) *(float *)(out + 4 * k) = hsum(lo[k], hi[k]);
}

INLINE void dots(int byIds, int bf16, addr q, addr base, uint32_t rows, addr out, int32_t m, uint32_t rowBytes,
  uint32_t stride) {
  int32_t j = 0;
  for (; j + ROWS - 1 < m; j += ROWS) {
    addr row[ROWS];
    for (int k = 0; k < ROWS; k++) row[k] = rowAt(byIds, base, rows, j + k, stride);
    dotsPass(ROWS, bf16, q, row, out + 4 * (uint32_t)j, rowBytes);
  }
  for (; j < m; j++) {
    addr row[1] = { rowAt(byIds, base, rows, j, stride) };
    dotsPass(1, bf16, q, row, out + 4 * (uint32_t)j, rowBytes);
  }
}

/**
 * dots, then each score times `scale` (in double: the float score widened, as JavaScript's `logits[j] * scale` does),
 * stored rounded to float; returns the largest product (double, unrounded), −∞ for m = 0. The exact parts of a step
 * (a dense block, MagicPIG's exact set T) take their softmax shift from it, so no JavaScript loop re-reads the scores.
 */
INLINE double dotsMax(int byIds, int bf16, addr q, addr base, uint32_t rows, addr out, int32_t m, uint32_t rowBytes,
  uint32_t stride, double scale) {
  dots(byIds, bf16, q, base, rows, out, m, rowBytes, stride);
  double mx = -__builtin_inf();
  for (int32_t j = 0; j < m; j++) {
    float *o = (float *)(out + 4 * (uint32_t)j);
    double x = (double)*o * scale;
    *o = (float)x;
    if (x > mx) mx = x;
  }
  return mx;
}

// ---- axpy ------------------------------------------------------------------------------------------------------------
// o += w_0·row_0 + w_1·row_1 + … for n rows a pass, added in row order onto o's 8 channels of each step.

INLINE void axpyPass(int n, int bf16, addr o, const addr *row, const v128_t *w, uint32_t rowBytes) {
  uint32_t step = bf16 ? 16 : 32;
#pragma clang loop unroll(full)
  for (uint32_t c = 0; c < rowBytes; c += step) {
    addr oc = o + (bf16 ? 2 * c : c);
    v128_t lo = load(oc), hi = load(oc + 16);
    if (bf16) {
      v128_t r[ROWS];
      for (int k = 0; k < n; k++) r[k] = load(row[k] + c);
      for (int k = 0; k < n; k++) lo = wasm_f32x4_add(lo, wasm_f32x4_mul(w[k], widenLow(r[k])));
      store(oc, lo);
      for (int k = 0; k < n; k++) hi = wasm_f32x4_add(hi, wasm_f32x4_mul(w[k], widenHigh(r[k])));
      store(oc + 16, hi);
    } else {
      for (int k = 0; k < n; k++) lo = wasm_f32x4_add(lo, wasm_f32x4_mul(w[k], load(row[k] + c)));
      store(oc, lo);
      for (int k = 0; k < n; k++) hi = wasm_f32x4_add(hi, wasm_f32x4_mul(w[k], load(row[k] + c + 16)));
      store(oc + 16, hi);
    }
  }
}

INLINE void axpy(int byIds, int bf16, addr o, addr base, uint32_t rows, addr w, int32_t m, uint32_t rowBytes,
  uint32_t stride) {
  int32_t j = 0;
  for (; j + ROWS - 1 < m; j += ROWS) {
    addr row[ROWS];
    v128_t wk[ROWS];
    for (int k = 0; k < ROWS; k++) {
      row[k] = rowAt(byIds, base, rows, j + k, stride);
      wk[k] = wasm_f32x4_splat(loadf(w + 4 * (uint32_t)(j + k)));
    }
    axpyPass(ROWS, bf16, o, row, wk, rowBytes);
  }
  for (; j < m; j++) {
    addr row[1] = { rowAt(byIds, base, rows, j, stride) };
    v128_t wk[1] = { wasm_f32x4_splat(loadf(w + 4 * (uint32_t)j)) };
    axpyPass(1, bf16, o, row, wk, rowBytes);
  }
}

// ---- exports: any row length, and one copy per head size in HEAD_DIMS ------------------------------------------------
// (a, base, rows, w, m, rowBytes, stride): a = q (dots) or o (axpy); w = out (dots) or weights (axpy); rows = ids
// address or start position. A sized copy ignores rowBytes (it is 4·d, or 2·d for the bf16 kernels).

#define KERNELS(SUFFIX, F32_BYTES, BF16_BYTES)                                                                          \
  EXPORT("dotsIds" SUFFIX) void dotsIds##F32_BYTES(addr q, addr base, uint32_t ids, addr out, int32_t m, uint32_t rb,      \
    uint32_t stride) { dots(1, 0, q, base, ids, out, m, F32_BYTES ? F32_BYTES : rb, stride); }                          \
  EXPORT("dotsRange" SUFFIX) void dotsRange##F32_BYTES(addr q, addr base, uint32_t start, addr out, int32_t m,            \
    uint32_t rb, uint32_t stride) { dots(0, 0, q, base, start, out, m, F32_BYTES ? F32_BYTES : rb, stride); }           \
  EXPORT("axpyIds" SUFFIX) void axpyIds##F32_BYTES(addr o, addr base, uint32_t ids, addr w, int32_t m, uint32_t rb,        \
    uint32_t stride) { axpy(1, 0, o, base, ids, w, m, F32_BYTES ? F32_BYTES : rb, stride); }                            \
  EXPORT("axpyRange" SUFFIX) void axpyRange##F32_BYTES(addr o, addr base, uint32_t start, addr w, int32_t m, uint32_t rb, \
    uint32_t stride) { axpy(0, 0, o, base, start, w, m, F32_BYTES ? F32_BYTES : rb, stride); }                          \
  EXPORT("dotsIds16" SUFFIX) void dotsIds16_##F32_BYTES(addr q, addr base, uint32_t ids, addr out, int32_t m, uint32_t rb, \
    uint32_t stride) { dots(1, 1, q, base, ids, out, m, BF16_BYTES ? BF16_BYTES : rb, stride); }                        \
  EXPORT("dotsRange16" SUFFIX) void dotsRange16_##F32_BYTES(addr q, addr base, uint32_t start, addr out, int32_t m,       \
    uint32_t rb, uint32_t stride) { dots(0, 1, q, base, start, out, m, BF16_BYTES ? BF16_BYTES : rb, stride); }         \
  EXPORT("axpyIds16" SUFFIX) void axpyIds16_##F32_BYTES(addr o, addr base, uint32_t ids, addr w, int32_t m, uint32_t rb,   \
    uint32_t stride) { axpy(1, 1, o, base, ids, w, m, BF16_BYTES ? BF16_BYTES : rb, stride); }                          \
  EXPORT("axpyRange16" SUFFIX) void axpyRange16_##F32_BYTES(addr o, addr base, uint32_t start, addr w, int32_t m,         \
    uint32_t rb, uint32_t stride) { axpy(0, 1, o, base, start, w, m, BF16_BYTES ? BF16_BYTES : rb, stride); }          \
  EXPORT("dotsIdsMax" SUFFIX) double dotsIdsMax##F32_BYTES(addr q, addr base, uint32_t ids, addr out, int32_t m,          \
    uint32_t rb, uint32_t stride, double scale) {                                                                       \
    return dotsMax(1, 0, q, base, ids, out, m, F32_BYTES ? F32_BYTES : rb, stride, scale); }                           \
  EXPORT("dotsRangeMax" SUFFIX) double dotsRangeMax##F32_BYTES(addr q, addr base, uint32_t start, addr out, int32_t m,    \
    uint32_t rb, uint32_t stride, double scale) {                                                                       \
    return dotsMax(0, 0, q, base, start, out, m, F32_BYTES ? F32_BYTES : rb, stride, scale); }                         \
  EXPORT("dotsIdsMax16" SUFFIX) double dotsIdsMax16_##F32_BYTES(addr q, addr base, uint32_t ids, addr out, int32_t m,     \
    uint32_t rb, uint32_t stride, double scale) {                                                                       \
    return dotsMax(1, 1, q, base, ids, out, m, BF16_BYTES ? BF16_BYTES : rb, stride, scale); }                         \
  EXPORT("dotsRangeMax16" SUFFIX) double dotsRangeMax16_##F32_BYTES(addr q, addr base, uint32_t start, addr out,          \
    int32_t m, uint32_t rb, uint32_t stride, double scale) {                                                            \
    return dotsMax(0, 1, q, base, start, out, m, BF16_BYTES ? BF16_BYTES : rb, stride, scale); }

KERNELS("", 0, 0)
// HEAD_DIMS (keep in step with kernels.ts): d = 64, 80, 96, 128, 256.
KERNELS("_64", 256, 128)
KERNELS("_80", 320, 160)
KERNELS("_96", 384, 192)
KERNELS("_128", 512, 256)
KERNELS("_256", 1024, 512)

// ---- touch -----------------------------------------------------------------------------------------------------------
/** Parts of [p, p + bytes) read side by side (8 misses in flight). */
#define TOUCH_STREAMS 8

/** One i32 load per 64-byte line of [p, p + bytes), TOUCH_STREAMS parts side by side; their sum, so none is dropped. */
EXPORT("touch") int32_t touch(addr p, uint32_t bytes) {
  uint32_t part = bytes / TOUCH_STREAMS;
  int32_t sum = 0;
  for (addr end = p + part; p < end; p += 64) {
    for (uint32_t s = 0; s < TOUCH_STREAMS; s++) sum += loadi(p + s * part);
  }
  return sum;
}

// ---- logWeights ------------------------------------------------------------------------------------------------------
/** Points of the log-weight table over θ ∈ [0, π] (the table holds POINTS + 2 floats; decode/log-weights.ts). */
#define POINTS 16384
#define PI_F 3.14159265358979323846f

/** arccos(a) / √(1 − a) on [0, 1]: Abramowitz & Stegun 4.4.46, highest power first (Horner). */
INLINE float acosPoly(float a) {
  float p = -0.0012624911f;
  p = p * a + 0.0066700901f;
  p = p * a + -0.0170881256f;
  p = p * a + 0.0308918810f;
  p = p * a + -0.0501743046f;
  p = p * a + 0.0889789874f;
  p = p * a + -0.2145988016f;
  p = p * a + 1.5707963050f;
  return p;
}
INLINE v128_t acosPolyV(v128_t a) {
  v128_t p = wasm_f32x4_splat(-0.0012624911f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(0.0066700901f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(-0.0170881256f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(0.0308918810f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(-0.0501743046f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(0.0889789874f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(-0.2145988016f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, a), wasm_f32x4_splat(1.5707963050f));
  return p;
}

/**
 * For m sampled keys with out[j] = q·k_j and nrm[j] = |k_j − k̄|: out[j] = q·k_j·scale − log(u_j + 1e-4), the 1/u
 * weight of spec §7 as a logit offset, u_j read from the log-weight table (linear interpolation over the angle θ =
 * arccos(clamp((q·k_j − qk) / (qn·|k̃_j|))), spec §6). Returns the largest out[j]. Four keys at a time, the table read
 * by scalar loads per lane; the tail one at a time with the same float32 operations, so each key gets the same bits.
 */
EXPORT("logWeights") float logWeights(addr out, addr nrm, int32_t m, addr table, float qn, float qk, float scale) {
  const float toIndex = (float)(POINTS / 3.14159265358979323846);
  float mx = -__builtin_inff();
  v128_t MX = wasm_f32x4_splat(-__builtin_inff());
  int32_t j = 0;
  for (; j + 3 < m; j += 4) {
    addr at = out + 4 * (uint32_t)j;
    v128_t dot = load(at);
    v128_t den = wasm_f32x4_mul(wasm_f32x4_splat(qn), load(nrm + 4 * (uint32_t)j));
    // cos = den > 0 ? (dot − qk) / den : +0, clamped to [−1, 1]
    v128_t c = wasm_v128_and(wasm_f32x4_div(wasm_f32x4_sub(dot, wasm_f32x4_splat(qk)), den),
      wasm_f32x4_gt(den, wasm_f32x4_splat(0)));
    c = wasm_f32x4_min(wasm_f32x4_max(c, wasm_f32x4_splat(-1)), wasm_f32x4_splat(1));
    v128_t a = wasm_f32x4_abs(c);
    v128_t r = wasm_f32x4_mul(wasm_f32x4_sqrt(wasm_f32x4_sub(wasm_f32x4_splat(1), a)), acosPolyV(a));
    // θ = c < 0 ? π − r : r, in table points
    v128_t theta = wasm_v128_bitselect(wasm_f32x4_sub(wasm_f32x4_splat(PI_F), r), r,
      wasm_f32x4_lt(c, wasm_f32x4_splat(0)));
    v128_t x = wasm_f32x4_mul(theta, wasm_f32x4_splat(toIndex));
    // trunc_sat: a NaN (a broken model's activations) gives index 0 and flows on as NaN instead of trapping.
    v128_t idx = wasm_i32x4_shl(wasm_i32x4_trunc_sat_f32x4(x), 2);
    v128_t t0 = wasm_f32x4_splat(0), t1 = wasm_f32x4_splat(0);
    t0 = wasm_f32x4_replace_lane(t0, 0, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 0)));
    t1 = wasm_f32x4_replace_lane(t1, 0, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 0) + 4));
    t0 = wasm_f32x4_replace_lane(t0, 1, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 1)));
    t1 = wasm_f32x4_replace_lane(t1, 1, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 1) + 4));
    t0 = wasm_f32x4_replace_lane(t0, 2, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 2)));
    t1 = wasm_f32x4_replace_lane(t1, 2, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 2) + 4));
    t0 = wasm_f32x4_replace_lane(t0, 3, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 3)));
    t1 = wasm_f32x4_replace_lane(t1, 3, loadf(table + (uint32_t)wasm_i32x4_extract_lane(idx, 3) + 4));
    // logit = q·k·scale − log(u + 1e-4), log(u + 1e-4) = t[i] + (x − ⌊x⌋)·(t[i+1] − t[i]): the 1/u weight (spec §7)
    v128_t logw = wasm_f32x4_add(t0, wasm_f32x4_mul(wasm_f32x4_sub(x, wasm_f32x4_floor(x)), wasm_f32x4_sub(t1, t0)));
    v128_t logit = wasm_f32x4_sub(wasm_f32x4_mul(dot, wasm_f32x4_splat(scale)), logw);
    store(at, logit);
    MX = wasm_f32x4_max(MX, logit);
  }
  mx = __builtin_wasm_max_f32(__builtin_wasm_max_f32(__builtin_wasm_max_f32(wasm_f32x4_extract_lane(MX, 0),
    wasm_f32x4_extract_lane(MX, 1)), wasm_f32x4_extract_lane(MX, 2)), wasm_f32x4_extract_lane(MX, 3));
  for (; j < m; j++) {
    addr at = out + 4 * (uint32_t)j;
    float dot = loadf(at), den = qn * loadf(nrm + 4 * (uint32_t)j);
    float c = den > 0 ? (dot - qk) / den : 0.0f;
    c = __builtin_wasm_min_f32(__builtin_wasm_max_f32(c, -1.0f), 1.0f);
    float a = __builtin_fabsf(c);
    float r = __builtin_sqrtf(1.0f - a) * acosPoly(a);
    float x = (c < 0 ? PI_F - r : r) * toIndex;
    addr i = table + ((uint32_t)__builtin_wasm_trunc_saturate_s_i32_f32(x) << 2);
    float t0 = loadf(i), t1 = loadf(i + 4);
    float logit = dot * scale - (t0 + (x - __builtin_floorf(x)) * (t1 - t0)); // the 1/u weight, as above
    *(float *)at = logit;
    mx = __builtin_wasm_max_f32(mx, logit);
  }
  return mx;
}

// ---- expShift --------------------------------------------------------------------------------------------------------
// exp(x) = 2^n · e^r with n = round(x·log2 e), r = x − n·ln 2 (Cody-Waite: ln 2 split in two floats so r is exact),
// |r| ≤ ln2/2, and a degree-6 Taylor polynomial for e^r: relative error ~2e-7, about float32's own rounding.
// Arguments below −87 give e^−87 (≈ 1.6e-38) rather than 0.
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-6f
#define LOG2E_F 1.4426950408889634f

INLINE float expPoly(float r) {
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 1.0f / 2;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}
INLINE v128_t expPolyV(v128_t r) {
  v128_t p = wasm_f32x4_splat(1.0f / 720);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  return wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
}

/**
 * p[j] = exp(p[j] − shift) in place for j < m; returns Σ p[j] (float64). Four lanes at a time (the same float32
 * operations per element as the scalar tail), the sum in two float64x2 accumulators (lanes 0-1 and 2-3).
 */
EXPORT("expShift") double expShift(addr p, int32_t m, float shift) {
  v128_t lo = wasm_f64x2_splat(0), hi = wasm_f64x2_splat(0), sh = wasm_f32x4_splat(shift);
  int32_t j = 0;
  for (; j + 3 < m; j += 4) {
    addr at = p + 4 * (uint32_t)j;
    v128_t x = wasm_f32x4_max(wasm_f32x4_sub(load(at), sh), wasm_f32x4_splat(-87));
    v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(LOG2E_F)));
    v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(LN2_HI))),
      wasm_f32x4_mul(n, wasm_f32x4_splat(LN2_LO)));
    v128_t pow2n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
    v128_t e = wasm_f32x4_mul(expPolyV(r), pow2n);
    store(at, e);
    lo = wasm_f64x2_add(lo, wasm_f64x2_promote_low_f32x4(e));
    hi = wasm_f64x2_add(hi, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 0, 1)));
  }
  double sum = wasm_f64x2_extract_lane(lo, 0) + wasm_f64x2_extract_lane(lo, 1) + wasm_f64x2_extract_lane(hi, 0)
    + wasm_f64x2_extract_lane(hi, 1);
  for (; j < m; j++) {
    addr at = p + 4 * (uint32_t)j;
    float x = __builtin_wasm_max_f32(loadf(at) - shift, -87.0f);
    float n = __builtin_rintf(x * LOG2E_F);
    float r = (x - n * LN2_HI) - n * LN2_LO;
    union { int32_t i; float f; } pow2n = { (__builtin_wasm_trunc_saturate_s_i32_f32(n) + 127) << 23 };
    float e = expPoly(r) * pow2n.f;
    *(float *)at = e;
    sum += (double)e;
  }
  return sum;
}

// ---- retrieve --------------------------------------------------------------------------------------------------------
/**
 * Spec §5 over one table set (lsh-tables.ts): the keys whose code equals q's in at least 2 of the L tables, written to
 * out in id order; returns how many. Table l's bucket c is ids[l·stride + start .. + size) with (start, size) =
 * buckets[2·(l·B + c)]; an id is stored relative to base, in idBytes (2 or 4) bytes. seen and sampled are bitmaps of
 * one bit per key (bit id − base), zero on entry and on exit.
 *
 * Pass 1 finds q's L buckets (into spans) and loads each one's first id: those loads do not depend on each other, so
 * their cache and TLB misses overlap instead of queueing one bucket at a time. Pass 2 walks the buckets: per id,
 * sampled |= seen & bit (a second collision), then seen |= bit — branch-free. Pass 3 scans `sampled` word by word,
 * emitting the set bits in order and clearing both bitmaps.
 */
INLINE void mark(uint32_t j, addr seen, addr sampled) {
  uint32_t w = 4 * (j >> 5), bit = 1u << (j & 31);
  uint32_t s = *(uint32_t *)(seen + w);
  *(uint32_t *)(sampled + w) |= s & bit;
  *(uint32_t *)(seen + w) = s | bit;
}

EXPORT("retrieve") int32_t retrieve(addr q, addr buckets, addr ids, int32_t idBytes, addr seen, addr out, int32_t L,
  int32_t B, int32_t stride, int32_t base, addr sampled, addr spans, int32_t count) {
  const int wide = idBytes == 4;
  int32_t first = 0;
  for (int32_t l = 0; l < L; l++) {
    addr bucket = buckets + 8 * (uint32_t)(l * B + loadi(q + 4 * (uint32_t)l));
    addr p = ids + (uint32_t)idBytes * (uint32_t)(l * stride + loadi(bucket));
    addr e = p + (uint32_t)idBytes * (uint32_t)loadi(bucket + 4);
    *(addr *)(spans + 8 * (uint32_t)l) = p;
    *(addr *)(spans + 8 * (uint32_t)l + 4) = e;
    if (p < e) first ^= *(const uint16_t *)p;
  }
  *(volatile int32_t *)q = first; // keeps pass 1's loads (q's codes are not read again)
  for (int32_t l = 0; l < L; l++) {
    addr p = *(addr *)(spans + 8 * (uint32_t)l), e = *(addr *)(spans + 8 * (uint32_t)l + 4);
    if (wide) for (; p < e; p += 4) mark((uint32_t)loadi(p), seen, sampled);
    else for (; p < e; p += 2) mark(*(const uint16_t *)p, seen, sampled);
  }
  int32_t m = 0;
  for (uint32_t i = 0, words = ((uint32_t)count + 31) >> 5; i < words; i++) {
    *(uint32_t *)(seen + 4 * i) = 0;
    uint32_t mask = *(uint32_t *)(sampled + 4 * i);
    if (mask == 0) continue;
    *(uint32_t *)(sampled + 4 * i) = 0;
    for (; mask != 0; mask &= mask - 1) *(int32_t *)(out + 4 * (uint32_t)m++) = base + (int32_t)(32 * i) + __builtin_ctz(mask);
  }
  return m;
}
