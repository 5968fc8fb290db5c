// The two hot loops of a decode step as WebAssembly SIMD (f32x4), assembled here from opcodes (no toolchain):
//   dots:  out[j] = q · K[row_j]          (scores of a gathered set of keys)
//   axpy:  o += Σ_j w[j] · V[row_j]        (weighted sum of a gathered set of values)
// with rows given either as an id list or as a contiguous range, plus touch (a prefetch of a dense block). They run on
// one KV head's WebAssembly.Memory (see kv-store.ts), so the cache is read in place. Measured ~3-4× the TypeScript
// loops (bench attention). Built once per head size (immediate offsets) and once for any row length.
// Requires headDim % 8 == 0 (float32 or bfloat16 storage); otherwise the TypeScript kernels are used.

const I32 = 0x7f, V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => vec([...Buffer.from(s)].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// Opcodes used below.
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const add = [0x6a], mul = [0x6c], shl = [0x74], geU = [0x4f];
const i32load = [0x28, 2, 0], f32load = [0x2a, 2, 0], f32store = [0x38, 2, 0];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const v128load = (offset: number) => simd(0, 4, ...uleb(offset));
const v128store = (offset: number) => simd(11, 4, ...uleb(offset));
const v128zero = simd(12, ...new Array(16).fill(0));
const f32x4splat = simd(19), f32x4add = simd(228), f32x4mul = simd(230);
const f32x4sub = simd(229), f32x4max = simd(233), i32x4add = simd(174), i32x4truncSatF32x4 = simd(248);
const lane = (i: number) => simd(31, i);
const f32add = [0x92];
// bf16 → f32: zero-extend 4 of the 8 u16 lanes to i32 and shift them into the top half (one shift, as in kv-store).
const extendLowU = simd(169), extendHighU = simd(170), i32x4shl = simd(171);
const widenLow = [...extendLowU, ...i32c(16), ...i32x4shl], widenHigh = [...extendHighU, ...i32c(16), ...i32x4shl];
/** for (i = 0; i < limit; i += step) body — as block/loop/br_if. */
const forLoop = (i: number, limit: number[], step: number, body: number[]) => [
  ...i32c(0), ...set(i),
  0x02, 0x40, 0x03, 0x40,
  ...get(i), ...limit, ...geU, 0x0d, 1,
  ...body,
  ...get(i), ...i32c(step), ...add, ...set(i),
  0x0c, 0, 0x0b, 0x0b,
];

/**
 * A channel position inside a row: a constant byte offset (kernels unrolled for one head size) or null (the loop
 * counter C, for any rowBytes). Unrolled kernels address with immediate offsets, so a load is one instruction, not an
 * add and a load; the loop's compare and branch go too.
 */
type Channel = number | null;
const channelIndex = (c: Channel, shift: number) => (c === null ? [...get(C), ...(shift ? [...i32c(shift), ...shl] : []), ...add] : []);
/** v128 at pointer local p + (channel << shift) + off. */
const load = (p: number, c: Channel, off: number, shift = 0) => [...get(p), ...channelIndex(c, shift), ...v128load(off + (c === null ? 0 : c << shift))];
/** The address part of a store to p + (channel << shift) + off (the value goes on the stack after it), and the store. */
const oAddress = (p: number, c: Channel, shift = 0) => [...get(p), ...channelIndex(c, shift)];
const store = (c: Channel, off: number, shift = 0) => v128store(off + (c === null ? 0 : c << shift));
/** body for every channel step of a row: unrolled over `unroll` bytes, or a loop over the rowBytes parameter. */
const channels = (unroll: number | undefined, step: number, body: (c: Channel) => number[]) =>
  unroll ? Array.from({ length: unroll / step }, (_, i) => body(i * step)).flat() : forLoop(C, get(P.rowBytes), step, body(null));

// Every kernel: (a, base, rows, w, m, rowBytes, stride) → (), params 0..6; i32 locals 7..14 (QP, END: the dots
// kernels' moving q pointer and row end), v128 locals 15..28.
// rowBytes: bytes of one row read (d channels); stride: bytes from one token's row to the next (K and V interleave).
const P = { a: 0, base: 1, rows: 2, w: 3, m: 4, rowBytes: 5, stride: 6 } as const;
const J = 7, ROW = 8, C = 9, ROWS = [8, 10, 11, 12], QP = 13, END = 14;
const ACC = [[15, 16], [18, 19], [20, 21], [22, 23]], TMPS = [17, 24, 25, 26];
/** q's 8 channels of the current step in the dots kernels (loaded once for all the rows of a pass). */
const QLO = 27, QHI = 28;
const LOCALS = [[8, I32], [14, V128]];

/** Channel steps of a dots kernel unrolled per iteration of its row loop (DOTS_UNROLL × step bytes). */
const DOTS_UNROLL = 2;
/**
 * The channel loop of a dots kernel (q at local QP, set here from param a). For a known row length it moves the
 * pointers instead of adding a counter to every address, DOTS_UNROLL steps an iteration with immediate offsets: rows by
 * step · DOTS_UNROLL bytes, q by that << qShift. Fully unrolled, a dots kernel was slower (d = 128 rows in L2: 19 → 26
 * ns a row; with no stores in its body the compiler's schedule keeps too many loads live), this way 18-19 → 16.
 * Otherwise the plain counter loop.
 */
function dotChannels(unroll: number | undefined, step: number, qShift: number, rows: number[], body: (c: Channel) => number[]): number[] {
  if (!unroll || unroll % (step * DOTS_UNROLL) !== 0) return [...get(P.a), ...set(QP), ...channels(undefined, step, body)];
  const bump = (x: number, by: number) => [...get(x), ...i32c(by), ...add, ...set(x)];
  return [
    ...get(P.a), ...set(QP), ...get(rows[0]), ...i32c(unroll), ...add, ...set(END),
    0x02, 0x40, 0x03, 0x40,
    ...get(rows[0]), ...get(END), ...geU, 0x0d, 1,
    ...Array.from({ length: DOTS_UNROLL }, (_, i) => body(i * step)).flat(),
    ...rows.flatMap((x) => bump(x, step * DOTS_UNROLL)), ...bump(QP, (step * DOTS_UNROLL) << qShift),
    0x0c, 0, 0x0b, 0x0b,
  ];
}

/** row = base + (ids ? ids[j + k] : rows + j + k) · stride, into local `into`. */
function rowAddress(ids: boolean, into = ROW, k = 0): number[] {
  const j = [...get(J), ...(k ? [...i32c(k), ...add] : [])];
  const index = ids
    ? [...get(P.rows), ...j, ...i32c(2), ...shl, ...add, ...i32load]
    : [...get(P.rows), ...j, ...add];
  return [...get(P.base), ...index, ...get(P.stride), ...mul, ...add, ...set(into)];
}

/** Horizontal sum of v128 local `a` as f32. */
const hsum = (a: number) => [...get(a), ...lane(0), ...get(a), ...lane(1), ...f32add, ...get(a), ...lane(2), ...f32add, ...get(a), ...lane(3), ...f32add];

/** for (j = 0; j + n − 1 < m; j += n) group;  for (; j < m; j++) single  — signed compares (m = 0 is fine). */
function rowGroups(n: number, group: number[], single: number[]): number[] {
  return [
    ...i32c(0), ...set(J),
    0x02, 0x40, 0x03, 0x40,
    ...get(J), ...get(P.m), ...i32c(n - 1), 0x6b, 0x4e, 0x0d, 1,
    ...group,
    ...get(J), ...i32c(n), ...add, ...set(J),
    0x0c, 0, 0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40,
    ...get(J), ...get(P.m), 0x4e, 0x0d, 1,
    ...single,
    ...get(J), ...i32c(1), ...add, ...set(J),
    0x0c, 0, 0x0b, 0x0b,
  ];
}

/**
 * dots: a = q pointer, w = out pointer. Rows go ROWS_AT_ONCE at a time with independent accumulators, so the gathered
 * rows' cache misses overlap (the gathers are latency-bound), then the leftover rows one by one.
 */
function dotsBody(ids: boolean, unroll?: number, n = ROWS_AT_ONCE): number[] {
  // q's 8 channels of this step are loaded once (QLO, QHI) and shared by the pass's rows: 1.4-1.6× the kernel that
  // reloaded them per row (in L2 and streaming from memory; identical outputs).
  const fma = (acc: number, row: number, c: Channel, off: number, qv: number) => [
    ...get(acc), ...get(qv), ...load(row, c, off), ...f32x4mul, ...f32x4add, ...set(acc),
  ];
  const rows = (r: number) => {
    const ks = [...Array(r).keys()];
    return [
      ...ks.flatMap((k) => rowAddress(ids, ROWS[k], k)),
      ...ks.flatMap((k) => [...v128zero, ...set(ACC[k][0]), ...v128zero, ...set(ACC[k][1])]),
      ...dotChannels(unroll, 32, 0, ks.map((k) => ROWS[k]), (c) => [
        ...load(QP, c, 0), ...set(QLO), ...load(QP, c, 16), ...set(QHI),
        ...ks.flatMap((k) => fma(ACC[k][0], ROWS[k], c, 0, QLO)), ...ks.flatMap((k) => fma(ACC[k][1], ROWS[k], c, 16, QHI)),
      ]),
      ...ks.flatMap((k) => storeScore(k, ACC[k][0], ACC[k][1])),
    ];
  };
  return rowGroups(n, rows(n), rows(1));
}

/** axpy: a = o pointer (f32 accumulator), w = weights pointer. ROWS_AT_ONCE rows per pass over o (as dots). */
function axpyBody(ids: boolean, unroll?: number, n = ROWS_AT_ONCE): number[] {
  const rows = (r: number) => {
    const ks = [...Array(r).keys()];
    const step = (c: Channel, off: number) => [
      ...oAddress(P.a, c), ...load(P.a, c, off),
      ...ks.flatMap((k) => [...get(ACC[k][0]), ...load(ROWS[k], c, off), ...f32x4mul, ...f32x4add]),
      ...store(c, off),
    ];
    return [
      ...ks.flatMap((k) => [...rowAddress(ids, ROWS[k], k), ...splatWeight(k, ACC[k][0])]),
      ...channels(unroll, 32, (c) => [...step(c, 0), ...step(c, 16)]),
    ];
  };
  return rowGroups(n, rows(n), rows(1));
}

/** out[j + k] = hsum(a + b): one score of a dots kernel. */
const storeScore = (k: number, a: number, b: number) => [
  ...get(P.w), ...get(J), ...(k ? [...i32c(k), ...add] : []), ...i32c(2), ...shl, ...add,
  ...get(a), ...get(b), ...f32x4add, ...set(a), ...hsum(a), ...f32store,
];

/** splat(w[j + k]) into local `into`: one weight of an axpy kernel. */
const splatWeight = (k: number, into: number) => [
  ...get(P.w), ...get(J), ...(k ? [...i32c(k), ...add] : []), ...i32c(2), ...shl, ...add, ...f32load, ...f32x4splat, ...set(into),
];

/** dots over bfloat16 rows (rowBytes = 2·d): 8 channels per 16-byte load, q read at twice the offset; n rows a pass. */
function dotsBf16Body(ids: boolean, unroll?: number, n = ROWS_AT_ONCE): number[] {
  const rows = (r: number) => {
    const ks = [...Array(r).keys()];
    return [
      ...ks.flatMap((k) => rowAddress(ids, ROWS[k], k)),
      ...ks.flatMap((k) => [...v128zero, ...set(ACC[k][0]), ...v128zero, ...set(ACC[k][1])]),
      ...dotChannels(unroll, 16, 1, ks.map((k) => ROWS[k]), (c) => [
        ...ks.flatMap((k) => [...load(ROWS[k], c, 0), ...set(TMPS[k])]),
        // q's 8 channels loaded once per step for all the pass's rows.
        ...load(QP, c, 0, 1), ...set(QLO), ...load(QP, c, 16, 1), ...set(QHI),
        ...ks.flatMap((k) => [...get(ACC[k][0]), ...get(QLO), ...get(TMPS[k]), ...widenLow, ...f32x4mul, ...f32x4add, ...set(ACC[k][0])]),
        ...ks.flatMap((k) => [...get(ACC[k][1]), ...get(QHI), ...get(TMPS[k]), ...widenHigh, ...f32x4mul, ...f32x4add, ...set(ACC[k][1])]),
      ]),
      ...ks.flatMap((k) => storeScore(k, ACC[k][0], ACC[k][1])),
    ];
  };
  return rowGroups(n, rows(n), rows(1));
}

/** axpy over bfloat16 rows: o (float32) += w · widen(row); n rows a pass. */
function axpyBf16Body(ids: boolean, unroll?: number, n = ROWS_AT_ONCE): number[] {
  const rows = (r: number) => {
    const ks = [...Array(r).keys()];
    const half = (c: Channel, off: number, widen: number[]) => [
      ...oAddress(P.a, c, 1), ...load(P.a, c, off, 1),
      ...ks.flatMap((k) => [...get(ACC[k][0]), ...get(TMPS[k]), ...widen, ...f32x4mul, ...f32x4add]),
      ...store(c, off, 1),
    ];
    return [
      ...ks.flatMap((k) => [...rowAddress(ids, ROWS[k], k), ...splatWeight(k, ACC[k][0])]),
      ...channels(unroll, 16, (c) => [
        ...ks.flatMap((k) => [...load(ROWS[k], c, 0), ...set(TMPS[k])]),
        ...half(c, 0, widenLow), ...half(c, 16, widenHigh),
      ]),
    ];
  };
  return rowGroups(n, rows(n), rows(1));
}

/** Gathered rows per pass in every kernel (independent accumulators: the rows' cache misses overlap). */
const ROWS_AT_ONCE = 4;

/**
 * The eight kernels; with `d`, built for rows of d channels (rowBytes must then be 4·d, or 2·d for the bf16 ones):
 * axpy unrolled with immediate offsets, dots with moving pointers (dotChannels). Rows in L2, both builds on one memory
 * (same bits): float32 d = 128 dots 18.0 → 16.0 ns a row, axpy 16.6 → 9.7; d = 64 dots 9.5 → 9.0, axpy 8.3 → 4.9;
 * bfloat16 d = 128 dots 17.4 → 17.4, axpy 17.9 → 15.3.
 */
function kernelBodies(d?: number): [string, number[]][] {
  const f32 = d ? 4 * d : undefined, bf16 = d ? 2 * d : undefined;
  return [
    ['dotsIds', dotsBody(true, f32)], ['dotsRange', dotsBody(false, f32)],
    ['axpyIds', axpyBody(true, f32)], ['axpyRange', axpyBody(false, f32)],
    ['dotsIds16', dotsBf16Body(true, bf16)], ['dotsRange16', dotsBf16Body(false, bf16)],
    ['axpyIds16', axpyBf16Body(true, bf16)], ['axpyRange16', axpyBf16Body(false, bf16)],
  ];
}

/** Interleaved streams of the touch kernel (one i32 load per 64-byte line each, an iteration). */
const TOUCH_STREAMS = 8;
/**
 * touch(p, bytes) → i32: one load per 64-byte line of [p, p + bytes), TOUCH_STREAMS parts of it side by side, and the
 * sum of the words read (so nothing can drop the loads). WebAssembly has no prefetch; this is one. A dense step runs it
 * on each block before scoring it: the block's lines arrive with 8 misses in flight at a time (~15-19 GB/s here)
 * instead of at the pace of the dots kernel's stalls, and are then read from L2. Measured in README "Decisions".
 * Locals: params p 0, bytes 1; part 2, end 3, sum 4.
 */
function touchBody(): number[] {
  const divU = [0x6e], ltU = [0x49];
  return [
    ...get(1), ...i32c(TOUCH_STREAMS), ...divU, ...set(2),
    ...get(0), ...get(2), ...add, ...set(3),
    0x02, 0x40, 0x03, 0x40,
    ...get(0), ...get(3), ...ltU, 0x45, 0x0d, 1,
    ...Array.from({ length: TOUCH_STREAMS }, (_, s) => [
      ...get(4), ...get(0), ...(s ? [...get(2), ...i32c(s), ...mul, ...add] : []), ...i32load, ...add, ...set(4),
    ]).flat(),
    ...get(0), ...i32c(64), ...add, ...set(0),
    0x0c, 0, 0x0b, 0x0b,
    ...get(4),
  ];
}

function moduleBytes(d?: number): Uint8Array {
  const kernels = kernelBodies(d);
  // Type 0: the row kernels (7 × i32) → (); type 1: touch (i32, i32) → i32.
  const type = section(1, vec([[0x60, ...vec(new Array(7).fill([I32])), ...vec([])], [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])]]));
  // Imported memory: shared, with a maximum (required for shared); limits flag 3.
  const imports = section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]]));
  const funcs = section(3, vec([...kernels.map(() => [0]), [1]]));
  const exports = section(7, vec([...kernels.map(([name], i) => [...str(name), 0x00, ...uleb(i)]), [...str('touch'), 0x00, ...uleb(kernels.length)]]));
  const code = section(10, vec([
    ...kernels.map(([, body]) => {
      const fn = [...vec(LOCALS), ...body, 0x0b];
      return [...uleb(fn.length), ...fn];
    }),
    (() => {
      const fn = [...vec([[3, I32]]), ...touchBody(), 0x0b];
      return [...uleb(fn.length), ...fn];
    })(),
  ]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imports, ...funcs, ...exports, ...code]);
}

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
  /** Load one word of every 64-byte line of [p, p + bytes) (a prefetch); returns their sum. */
  touch(p: number, bytes: number): number;
}

/** Points of the log-weight table over θ ∈ [0, π] (decode-kernels.ts LogWeightTable; the table holds points + 2). */
export const LOG_WEIGHT_POINTS = 16384;

const F32 = 0x7d, F64 = 0x7c;
const f32c = (x: number) => [0x43, ...new Uint8Array(new Float32Array([x]).buffer)];
const f64c = (x: number) => [0x44, ...new Uint8Array(new Float64Array([x]).buffer)];
/** v128.const with the same float32 (f32x4) or int32 (i32x4) in all four lanes. */
const f32x4c = (x: number) => simd(12, ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Float32Array([x]).buffer)]));
const i32x4c = (x: number) => simd(12, ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Int32Array([x]).buffer)]));
const F = {
  load: [0x2a, 2, 0], store: [0x38, 2, 0], add: [0x92], sub: [0x93], mul: [0x94], div: [0x95], sqrt: [0x91],
  abs: [0x8b], min: [0x96], max: [0x97], nearest: [0x90], lt: [0x5d], gt: [0x5e], convertI32: [0xb2],
};

/** arccos coefficients (Abramowitz & Stegun 4.4.46, as decode-kernels.ts acos), highest power first. */
const ACOS = [-0.0012624911, 0.0066700901, -0.0170881256, 0.0308918810, -0.0501743046, 0.0889789874, -0.2145988016, 1.5707963050];

/**
 * logWeights(out, nrm, m, table, qn, qk, scale) → max: for sampled keys whose out[j] = q·k and nrm[j] = |k − k̄|
 * (the index's norms, gathered), out[j] = q·k·scale − log(u_j + 1e-4) with u from the log-weight table over θ (decode-kernels.ts
 * LogWeightTable: TABLE + 2 floats at `table`), θ = arccos(clamp((q·k − qk) / (qn·|k̃|))). Returns the largest out[j].
 * The same arithmetic as LogWeightTable.at, in float32. Four keys at a time (f32x4, the table read by four scalar loads
 * per end point; each key gets the same bits as in the one-at-a-time tail): 26.5 → 13.9 ns per key in L1; whole MagicPIG
 * steps side by side 1.02× at 16K, 0.98-1.06× at 64K, 1.04-1.07× at 128K (f32, 1 thread), identical outputs.
 */
function logWeightsBody(tablePoints: number): number[] {
  const [OUT, NRM, M, TBL, QN, QK, SC] = [0, 1, 2, 3, 4, 5, 6];
  const [j, addr, i] = [7, 8, 9]; // i32
  const [dot, c, a, r, x, mx, den] = [10, 11, 12, 13, 14, 15, 16]; // f32
  const [DOT, C, A, R, X, MX, DEN, IDX, T0, T1] = [17, 18, 19, 20, 21, 22, 23, 24, 25, 26]; // v128
  const poly = [...f32c(ACOS[0]), ...ACOS.slice(1).flatMap((k) => [...get(a), ...F.mul, ...f32c(k), ...F.add])];
  // f32x4 opcodes (0xfd prefix) used here.
  const V = {
    abs: simd(224), sqrt: simd(227), add: f32x4add, sub: f32x4sub, mul: f32x4mul, div: simd(231), min: simd(232),
    max: f32x4max, floor: simd(104), lt: simd(67), gt: simd(68), and: simd(78), bitselect: simd(82),
    truncSat: i32x4truncSatF32x4, i32shl: i32x4shl, i32add: i32x4add, splat: f32x4splat, i32splat: simd(17),
  };
  const vpoly = [...f32x4c(ACOS[0]), ...ACOS.slice(1).flatMap((k) => [...get(A), ...V.mul, ...f32x4c(k), ...V.add])];
  const i32lane = (k: number) => simd(27, k), f32replace = (k: number) => simd(32, k), f32lane = (k: number) => simd(31, k);
  // t[i] and t[i + 1] of each lane (no gather in WebAssembly SIMD: four scalar loads each), IDX holding byte addresses.
  const gather = [0, 1, 2, 3].flatMap((k) => [
    ...get(IDX), ...i32lane(k), ...set(i),
    ...get(T0), ...get(i), ...F.load, ...f32replace(k), ...set(T0),
    ...get(T1), ...get(i), 0x2a, 2, 4, ...f32replace(k), ...set(T1),
  ]);
  return [
    ...f32c(-Infinity), ...set(mx),
    ...f32x4c(-Infinity), ...set(MX),
    // Four keys at a time while j + 3 < m: the scalar loop's float32 operations, lane by lane (same bits per key).
    ...i32c(0), ...set(j),
    0x02, 0x40, 0x03, 0x40,
    ...get(j), ...i32c(3), ...add, ...get(M), 0x4e /* i32.ge_s */, 0x0d, 1,
    ...get(OUT), ...get(j), ...i32c(2), ...shl, ...add, ...set(addr),
    ...get(addr), ...v128load(0), ...set(DOT),
    ...get(QN), ...V.splat, ...get(NRM), ...get(j), ...i32c(2), ...shl, ...add, ...v128load(0), ...V.mul, ...set(DEN),
    // c = den > 0 ? (dot − qk) / den : 0 (the mask's zero lanes are +0), clamped to [−1, 1]
    ...get(DOT), ...get(QK), ...V.splat, ...V.sub, ...get(DEN), ...V.div, ...get(DEN), ...v128zero, ...V.gt, ...V.and,
    ...f32x4c(-1), ...V.max, ...f32x4c(1), ...V.min, ...set(C),
    ...get(C), ...V.abs, ...set(A),
    ...f32x4c(1), ...get(A), ...V.sub, ...V.sqrt, ...vpoly, ...V.mul, ...set(R),
    // θ = c < 0 ? π − r : r;  x = θ · points / π
    ...f32x4c(Math.PI), ...get(R), ...V.sub, ...get(R), ...get(C), ...v128zero, ...V.lt, ...V.bitselect,
    ...f32x4c(tablePoints / Math.PI), ...V.mul, ...set(X),
    // byte addresses of t[i], i = trunc_sat(x) (NaN → 0, as in the scalar loop)
    ...get(X), ...V.truncSat, ...i32c(2), ...V.i32shl, ...get(TBL), ...V.i32splat, ...V.i32add, ...set(IDX),
    ...gather,
    ...get(addr),
    ...get(DOT), ...get(SC), ...V.splat, ...V.mul,
    ...get(T0),
    ...get(X), ...get(X), ...V.floor, ...V.sub,
    ...get(T1), ...get(T0), ...V.sub, ...V.mul, ...V.add,
    ...V.sub, ...set(DOT),
    ...get(DOT), ...v128store(0),
    ...get(MX), ...get(DOT), ...V.max, ...set(MX),
    ...get(j), ...i32c(4), ...add, ...set(j),
    0x0c, 0, 0x0b, 0x0b,
    ...get(MX), ...f32lane(0), ...get(MX), ...f32lane(1), ...F.max, ...get(MX), ...f32lane(2), ...F.max, ...get(MX), ...f32lane(3), ...F.max, ...set(mx),
    // The rest one by one (j continues where the four-lane loop stopped).
    0x02, 0x40, 0x03, 0x40,
    ...get(j), ...get(M), 0x4e /* i32.ge_s */, 0x0d, 1,
    ...get(OUT), ...get(j), ...i32c(2), ...shl, ...add, ...set(addr),
    ...get(addr), ...F.load, ...set(dot),
    ...get(QN), ...get(NRM), ...get(j), ...i32c(2), ...shl, ...add, ...F.load, ...F.mul, ...set(den),
    // c = den > 0 ? (dot − qk) / den : 0, clamped to [−1, 1]
    ...get(dot), ...get(QK), ...F.sub, ...get(den), ...F.div, ...f32c(0), ...get(den), ...f32c(0), ...F.gt, 0x1b,
    ...f32c(-1), ...F.max, ...f32c(1), ...F.min, ...set(c),
    ...get(c), ...F.abs, ...set(a),
    ...f32c(1), ...get(a), ...F.sub, ...F.sqrt, ...poly, ...F.mul, ...set(r),
    // θ = c < 0 ? π − r : r;  x = θ · points / π
    ...f32c(Math.PI), ...get(r), ...F.sub, ...get(r), ...get(c), ...f32c(0), ...F.lt, 0x1b,
    ...f32c(tablePoints / Math.PI), ...F.mul, ...set(x),
    // i32.trunc_sat_f32_s (x ∈ [0, points]): saturating, so a NaN (a broken model's activations) gives index 0 and
    // flows on as NaN instead of trapping; the runner reports non-finite logits clearly (forward.ts finiteLogits).
    ...get(x), 0xfc, 0x00, ...set(i),
    ...get(TBL), ...get(i), ...i32c(2), ...shl, ...add, ...set(i), // i: byte address of t[i]
    ...get(addr),
    ...get(dot), ...get(SC), ...F.mul,
    ...get(i), ...F.load,
    ...get(x), ...get(x), 0x8e /* floor */, ...F.sub,
    ...get(i), 0x2a, 2, 4, ...get(i), ...F.load, ...F.sub, ...F.mul, ...F.add, // t[i] + (x − ⌊x⌋)(t[i+1] − t[i])
    ...F.sub, ...F.store,
    ...get(mx), ...get(addr), ...F.load, ...F.max, ...set(mx),
    ...get(j), ...i32c(1), ...add, ...set(j),
    0x0c, 0, 0x0b, 0x0b,
    ...get(mx),
  ];
}

/**
 * expShift(p, m, shift) → Σ: p[j] = exp(p[j] − shift) in place, returns the sum (float64). exp(x) = 2^n · e^r with
 * n = round(x·log2 e), r = x − n·ln 2 (Cody-Waite: ln 2 split in two floats so r is exact), |r| ≤ ln2/2, and a
 * degree-6 Taylor polynomial for e^r: relative error ~2e-7, about float32's own rounding. Arguments below −87 give
 * e^−87 (≈ 1.6e-38) rather than 0.
 * Four lanes at a time (f32x4: the same float32 operations per element as the scalar tail, so each p[j] is the same
 * bits either way), the sum in two float64x2 accumulators. Measured side by side against the scalar loop: 10.3 → 3.9 ns
 * per element on 256-element blocks; exact decode steps (one exp per key and query head) 1.13× at tiny-coder's shape
 * (4 / 2 heads, d 64, 32K keys) and 1.05-1.07× at 32 / 8, d 128; a MagicPIG step within noise. Same outputs.
 */
function expShiftBody(): number[] {
  const [P, M, SH] = [0, 1, 2];
  const [j, addr] = [3, 4]; // i32
  const [x, n, r] = [5, 6, 7]; // f32
  const SUM = 8; // f64
  const [X, N, R, LO, HI, SHV] = [9, 10, 11, 12, 13, 14]; // v128
  const LN2_HI = 0.693145751953125, LN2_LO = 1.428606765330187e-6;
  const taylor = [720, 120, 24, 6, 2, 1].map((k) => 1 / k); // r^6/6! … r^1/1!
  const poly = [...f32c(taylor[0]), ...taylor.slice(1).flatMap((k) => [...get(r), ...F.mul, ...f32c(k), ...F.add]),
    ...get(r), ...F.mul, ...f32c(1), ...F.add];
  // SIMD opcodes (0xfd prefix) used here only.
  const f32x4nearest = simd(106), f64x2add = simd(240), promoteLow = simd(95), lane64 = (i: number) => simd(33, i);
  const highHalf = simd(13, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7); // i8x16.shuffle: lanes 2, 3 to 0, 1
  const vpoly = [...f32x4c(taylor[0]), ...taylor.slice(1).flatMap((k) => [...get(R), ...f32x4mul, ...f32x4c(k), ...f32x4add]),
    ...get(R), ...f32x4mul, ...f32x4c(1), ...f32x4add];
  return [
    ...f64c(0), ...set(SUM),
    ...v128zero, ...set(LO), ...v128zero, ...set(HI),
    ...get(SH), ...f32x4splat, ...set(SHV),
    // Four at a time while j + 3 < m.
    ...i32c(0), ...set(j),
    0x02, 0x40, 0x03, 0x40,
    ...get(j), ...i32c(3), ...add, ...get(M), 0x4e /* i32.ge_s */, 0x0d, 1,
    ...get(P), ...get(j), ...i32c(2), ...shl, ...add, ...set(addr),
    ...get(addr), ...v128load(0), ...get(SHV), ...f32x4sub, ...f32x4c(-87), ...f32x4max, ...set(X),
    ...get(X), ...f32x4c(Math.LOG2E), ...f32x4mul, ...f32x4nearest, ...set(N),
    ...get(X), ...get(N), ...f32x4c(LN2_HI), ...f32x4mul, ...f32x4sub, ...get(N), ...f32x4c(LN2_LO), ...f32x4mul, ...f32x4sub, ...set(R),
    ...get(addr),
    ...vpoly,
    ...get(N), ...i32x4truncSatF32x4, ...i32x4c(127), ...i32x4add, ...i32c(23), ...i32x4shl,
    ...f32x4mul, ...set(X),
    ...get(X), ...v128store(0),
    ...get(LO), ...get(X), ...promoteLow, ...f64x2add, ...set(LO),
    ...get(HI), ...get(X), ...get(X), ...highHalf, ...promoteLow, ...f64x2add, ...set(HI),
    ...get(j), ...i32c(4), ...add, ...set(j),
    0x0c, 0, 0x0b, 0x0b,
    ...get(LO), ...lane64(0), ...get(LO), ...lane64(1), 0xa0, ...get(HI), ...lane64(0), 0xa0, ...get(HI), ...lane64(1), 0xa0, ...set(SUM),
    // The rest one by one (j continues where the SIMD loop stopped).
    0x02, 0x40, 0x03, 0x40,
    ...get(j), ...get(M), 0x4e /* i32.ge_s */, 0x0d, 1,
    ...get(P), ...get(j), ...i32c(2), ...shl, ...add, ...set(addr),
    ...get(addr), ...F.load, ...get(SH), ...F.sub, ...f32c(-87), ...F.max, ...set(x),
    ...get(x), ...f32c(Math.LOG2E), ...F.mul, ...F.nearest, ...set(n),
    ...get(x), ...get(n), ...f32c(LN2_HI), ...F.mul, ...F.sub, ...get(n), ...f32c(LN2_LO), ...F.mul, ...F.sub, ...set(r),
    ...get(addr),
    ...poly,
    // 2^n by the exponent bits (n ∈ [−126, 127] for finite x; i32.trunc_sat_f32_s: a NaN gives 0 instead of a trap)
    ...get(n), 0xfc, 0x00, ...i32c(127), ...add, ...i32c(23), ...shl, 0xbe, // f32.reinterpret_i32
    ...F.mul,
    ...F.store,
    ...get(SUM), ...get(addr), ...F.load, 0xbb /* f64.promote_f32 */, 0xa0 /* f64.add */, ...set(SUM),
    ...get(j), ...i32c(1), ...add, ...set(j),
    0x0c, 0, 0x0b, 0x0b,
    ...get(SUM),
  ];
}

export type LogWeightsKernel = (out: number, nrm: number, m: number, table: number, qn: number, qk: number, scale: number) => number;
export type ExpShiftKernel = (p: number, m: number, shift: number) => number;

function mathModuleBytes(tablePoints: number): Uint8Array {
  const type = section(1, vec([
    [0x60, ...vec([[I32], [I32], [I32], [I32], [F32], [F32], [F32]]), ...vec([[F32]])],
    [0x60, ...vec([[I32], [I32], [F32]]), ...vec([[F64]])],
  ]));
  const imports = section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]]));
  const funcs = section(3, vec([[0], [1]]));
  const exports = section(7, vec([[...str('logWeights'), 0x00, 0], [...str('expShift'), 0x00, 1]]));
  const fns = [
    [...vec([[3, I32], [7, F32], [10, V128]]), ...logWeightsBody(tablePoints), 0x0b],
    [...vec([[2, I32], [3, F32], [1, F64], [6, V128]]), ...expShiftBody(), 0x0b],
  ].map((fn) => [...uleb(fn.length), ...fn]);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imports, ...funcs, ...exports, ...section(10, vec(fns))]);
}

const mathModules = new Map<number, WebAssembly.Module | null>();

/** logWeights (for a table of `tablePoints` + 2 floats) and expShift on a memory; null without WebAssembly. */
export function mathKernels(mem: WebAssembly.Memory, tablePoints: number): { logWeights: LogWeightsKernel; expShift: ExpShiftKernel } | null {
  let mod = mathModules.get(tablePoints);
  if (mod === undefined) {
    try {
      mod = process.env.SNOUT_NO_WASM === '1' ? null : new WebAssembly.Module(mathModuleBytes(tablePoints) as Uint8Array<ArrayBuffer>);
    } catch {
      mod = null;
    }
    mathModules.set(tablePoints, mod);
  }
  if (!mod) return null;
  return new WebAssembly.Instance(mod, { env: { mem } }).exports as unknown as { logWeights: LogWeightsKernel; expShift: ExpShiftKernel };
}

/**
 * Retrieval (lsh-tables.ts, spec §5) as a WebAssembly loop over one table set's memory:
 * (q, buckets, ids, seen, out, L, B, stride, base, sampled, spans, count) → ids emitted into out, ascending (buckets:
 * (start, size) pairs, table l's ids from ids + 4·l·stride; see lsh-tables.ts). Two bitmaps of one
 * bit per id (indexed by id − base), both zero between retrievals: for each table l, walk bucket q[l]; per id,
 * sampled |= seen & bit (a second collision), then seen |= bit — branch-free, and 2 bits per key of scratch (the
 * two bitmaps of 128K keys are 32 KB: L1-sized), where a mark byte per key was 128 KB of L2 traffic. One scan of the
 * sampled bitmap then lists the sampled keys in id order, so the attention's address-ordered gathers need no sort,
 * and leaves both bitmaps zero. Byte pointers; ids, bucket starts and sizes int32.
 * A first pass finds the L buckets (into spans: start and end address per table) and loads the first id of each:
 * those loads do not depend on each other, so their cache and TLB misses overlap — a bucket is a random place in
 * L·count·4 bytes of ids, and under nested paging (this VM) one miss there costs ~400 ns; walking the buckets one by
 * one paid it L times in a row. Both changes, 32 heads, a fresh query each time (microbenchmark, old and new side by
 * side): 2.22 → 1.06 ms at 16K keys, 4.28 → 2.27 at 64K, 6.57 → 3.75 at 128K (the bitmaps alone: ~1.1×).
 */
function retrievalBody(): number[] {
  const [Q, BUCKETS, IDS, SEEN, OUT, L, NB, STRIDE, BASE, SAMPLED, SPANS, COUNT] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const [l, p, e, j, w, b, s, m, i, mask] = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  const tee = (x: number) => [0x22, ...uleb(x)];
  const ld4 = [0x28, 2, 4], i32store = [0x36, 2, 0], st4 = [0x36, 2, 4];
  const ltU = [0x49], sub = [0x6b], and = [0x71], ctz = [0x68], or = [0x72], shrU = [0x76];
  const xor = [0x73];
  return [
    // Pass 1: spans[l] = (p, e) of bucket q[l] of table l, and s ^= its first id (the load is what matters).
    ...i32c(0), ...set(s),
    ...i32c(0), ...set(l),
    0x02, 0x40, 0x03, 0x40,
    ...get(l), ...get(L), 0x4e, 0x0d, 1,
    // bucket (in w) = &buckets[2·(l·B + q[l])];  p = &ids[l·stride + start];  e = p + size·4
    ...get(BUCKETS), ...get(l), ...get(NB), ...mul, ...get(Q), ...get(l), ...i32c(2), ...shl, ...add, ...i32load, ...add, ...i32c(3), ...shl, ...add, ...set(w),
    ...get(IDS), ...get(l), ...get(STRIDE), ...mul, ...get(w), ...i32load, ...add, ...i32c(2), ...shl, ...add, ...set(p),
    ...get(p), ...get(w), ...ld4, ...i32c(2), ...shl, ...add, ...set(e),
    ...get(SPANS), ...get(l), ...i32c(3), ...shl, ...add, ...tee(w), ...get(p), ...i32store,
    ...get(w), ...get(e), ...st4,
    ...get(p), ...get(e), ...ltU, 0x04, 0x40, ...get(s), ...get(p), ...i32load, ...xor, ...set(s), 0x0b,
    ...get(l), ...i32c(1), ...add, ...set(l),
    0x0c, 0, 0x0b, 0x0b,
    ...i32c(0), ...get(s), ...i32store, // keep the loads: their value goes to the (unused) word at address 0
    // Pass 2: walk the buckets.
    ...i32c(0), ...set(l),
    0x02, 0x40, 0x03, 0x40,
    ...get(l), ...get(L), 0x4e, 0x0d, 1,
    ...get(SPANS), ...get(l), ...i32c(3), ...shl, ...add, ...tee(w), ...i32load, ...set(p),
    ...get(w), ...ld4, ...set(e),
    0x02, 0x40, 0x03, 0x40,
    ...get(p), ...get(e), ...ltU, 0x45, 0x0d, 1,
    // j = ids[p] − base;  w = 4·(j >> 5);  b = 1 << (j & 31)  (i32.shl takes its count mod 32)
    ...get(p), ...i32load, ...get(BASE), ...sub, ...tee(j), ...i32c(5), ...shrU, ...i32c(2), ...shl, ...set(w),
    ...i32c(1), ...get(j), ...shl, ...set(b),
    // s = seen[w];  sampled[w] |= s & b;  seen[w] = s | b
    ...get(SEEN), ...get(w), ...add, ...i32load, ...set(s),
    ...get(SAMPLED), ...get(w), ...add, ...get(SAMPLED), ...get(w), ...add, ...i32load, ...get(s), ...get(b), ...and, ...or, ...i32store,
    ...get(SEEN), ...get(w), ...add, ...get(s), ...get(b), ...or, ...i32store,
    ...get(p), ...i32c(4), ...add, ...set(p),
    0x0c, 0, 0x0b, 0x0b,
    ...get(l), ...i32c(1), ...add, ...set(l),
    0x0c, 0, 0x0b, 0x0b,
    // Scan the bitmaps word by word: clear seen; emit base + 32·i + ctz(word) for each sampled bit, and clear it.
    ...i32c(0), ...set(m), ...i32c(0), ...set(i),
    0x02, 0x40, 0x03, 0x40,
    ...get(i), ...get(COUNT), ...i32c(31), ...add, ...i32c(5), ...shrU, ...ltU, 0x45, 0x0d, 1,
    ...get(SEEN), ...get(i), ...i32c(2), ...shl, ...add, ...i32c(0), ...i32store,
    ...get(SAMPLED), ...get(i), ...i32c(2), ...shl, ...add, ...i32load, ...tee(mask),
    0x04, 0x40,
    ...get(SAMPLED), ...get(i), ...i32c(2), ...shl, ...add, ...i32c(0), ...i32store,
    0x02, 0x40, 0x03, 0x40,
    ...get(mask), 0x45, 0x0d, 1,
    ...get(OUT), ...get(m), ...i32c(2), ...shl, ...add, ...get(BASE), ...get(i), ...i32c(5), ...shl, ...add, ...get(mask), ...ctz, ...add, ...i32store,
    ...get(m), ...i32c(1), ...add, ...set(m),
    ...get(mask), ...get(mask), ...i32c(1), ...sub, ...and, ...set(mask),
    0x0c, 0, 0x0b, 0x0b,
    0x0b,
    ...get(i), ...i32c(1), ...add, ...set(i),
    0x0c, 0, 0x0b, 0x0b,
    ...get(m),
  ];
}

export type RetrievalKernel = (q: number, buckets: number, ids: number, seen: number, out: number, L: number,
  B: number, stride: number, base: number, sampled: number, spans: number, count: number) => number;

function retrievalModuleBytes(): Uint8Array {
  const type = section(1, vec([[0x60, ...vec(new Array(12).fill([I32])), ...vec([[I32]])]]));
  const imports = section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]]));
  const funcs = section(3, vec([[0]]));
  const exports = section(7, vec([[...str('retrieve'), 0x00, 0]]));
  const fn = [...vec([[10, I32]]), ...retrievalBody(), 0x0b];
  const code = section(10, vec([[...uleb(fn.length), ...fn]]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imports, ...funcs, ...exports, ...code]);
}

/** The retrieval kernel bound to a table set's memory, or null without WebAssembly (then lsh-tables.ts loops in TS). */
export const retrievalKernel: ((mem: WebAssembly.Memory) => RetrievalKernel) | null = (() => {
  if (process.env.SNOUT_NO_WASM === '1') return null;
  try {
    const module = new WebAssembly.Module(retrievalModuleBytes() as Uint8Array<ArrayBuffer>);
    return (mem: WebAssembly.Memory) => (new WebAssembly.Instance(module, { env: { mem } }).exports as { retrieve: RetrievalKernel }).retrieve;
  } catch {
    return null;
  }
})();

/** Head sizes up to this get kernels unrolled for their row length (larger ones loop: code size). */
const UNROLL_MAX_D = 256;
const compiled = new Map<number, WebAssembly.Module | null>();

/**
 * The compiled module (unrolled for rows of d channels when d is given and d ≤ UNROLL_MAX_D; 0 = any row length), or
 * null where WebAssembly SIMD is unavailable (then the TypeScript kernels run).
 */
export function wasmModule(d = 0): WebAssembly.Module | null {
  const key = d > 0 && d <= UNROLL_MAX_D && d % 8 === 0 ? d : 0;
  let m = compiled.get(key);
  if (m === undefined) {
    try {
      m = process.env.SNOUT_NO_WASM === '1' ? null : new WebAssembly.Module(moduleBytes(key || undefined) as Uint8Array<ArrayBuffer>);
    } catch {
      m = null;
    }
    compiled.set(key, m);
  }
  return m;
}

/** Kernels on mem; with d, unrolled for rows of d channels: then every call must pass rowBytes = 4·d (2·d for bf16). */
export function instantiate(mem: WebAssembly.Memory, d = 0): WasmKernels | null {
  const m = wasmModule(d);
  if (!m) return null;
  return new WebAssembly.Instance(m, { env: { mem } }).exports as unknown as WasmKernels;
}
