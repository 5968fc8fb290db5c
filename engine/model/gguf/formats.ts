// ggml's tensor formats (ggml-common.h, ggml-quants.c) as this loader reads them, and their conversion to the
// engine's forms: float32 for F32/F16/BF16, a QuantMatrix (quant.ts, MatMulNBits layout) for the block formats. Every
// block format maps onto a QuantMatrix exactly (no float32 round trip, no requantizing): see README.md for the table.
import { halfToFloat, toFloat32 } from '../safetensors';
import type { QuantMatrix } from '../quant';

/** Elements per block and bytes per block of the formats this loader reads. */
export const ggmlTypes = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q4_1: { id: 3, block: 32, bytes: 20 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  Q5_K: { id: 13, block: 256, bytes: 176 },
  Q6_K: { id: 14, block: 256, bytes: 210 },
  BF16: { id: 30, block: 1, bytes: 2 },
} as const;
export type GgmlType = keyof typeof ggmlTypes;

// All ggml type ids (ggml.h), so an unsupported one is named in the error rather than shown as a number.
const allTypeNames = [
  'F32', 'F16', 'Q4_0', 'Q4_1', 'Q4_2', 'Q4_3', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K',
  'Q8_K', 'IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'I8', 'I16', 'I32', 'I64', 'F64',
  'IQ1_M', 'BF16', 'Q4_0_4_4', 'Q4_0_4_8', 'Q4_0_8_8', 'TQ1_0', 'TQ2_0', 'IQ4_NL_4_4', 'IQ4_NL_4_8', 'IQ4_NL_8_8', 'MXFP4',
];

export function ggmlTypeName(id: number): string | undefined {
  return allTypeNames[id];
}

export const isFloatType = (t: GgmlType): t is 'F32' | 'F16' | 'BF16' => t === 'F32' || t === 'F16' || t === 'BF16';

/** F32/F16/BF16 bytes → float32 (exact). */
export function floatsOf(type: 'F32' | 'F16' | 'BF16', raw: Uint8Array): Float32Array {
  return toFloat32(raw, type);
}

const f16 = (raw: Uint8Array, at: number) => halfToFloat(raw[at] | (raw[at + 1] << 8));

/** The K-quants' 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at `at` (get_scale_min_k4). */
export function scaleMinK(raw: Uint8Array, at: number, j: number): [number, number] {
  const q = (i: number) => raw[at + i];
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 15) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

/**
 * A block-format tensor [N rows × K] (raw bytes, rows of whole blocks) → QuantMatrix. Scales are the products ggml
 * itself computes in float32 (d·sc, dmin·m); they are exact there (an 11-bit half times an integer of ≤ 8 bits), so
 * the matrix dequantizes to exactly what ggml's definition gives.
 */
export function toQuantMatrix(type: Exclude<GgmlType, 'F32' | 'F16' | 'BF16'>, raw: Uint8Array, N: number, K: number): QuantMatrix {
  const { block, bytes } = ggmlTypes[type];
  const blocksPerRow = K / block;
  if (!Number.isInteger(blocksPerRow) || raw.length !== N * blocksPerRow * bytes) {
    throw new Error(`${type} [${N}, ${K}]: ${raw.length} bytes`);
  }
  switch (type) {
    case 'Q8_0': return q8_0(raw, N, K);
    case 'Q4_0': return q4_01(raw, N, K, false);
    case 'Q4_1': return q4_01(raw, N, K, true);
    case 'Q4_K': return q4_K(raw, N, K);
    case 'Q5_K': return q5_K(raw, N, K);
    case 'Q6_K': return q6_K(raw, N, K);
  }
}

/** Q8_0 (d: f16, qs: int8[32]; x = d·q) → 8 bits, blocks of 32, q + 128 against the default zero point 128. */
function q8_0(raw: Uint8Array, N: number, K: number): QuantMatrix {
  const nb = (N * K) / 32;
  const data = new Uint8Array(N * K);
  const scales = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const at = b * 34;
    scales[b] = f16(raw, at);
    for (let i = 0; i < 32; i++) data[b * 32 + i] = raw[at + 2 + i] ^ 0x80; // int8 two's complement + 128
  }
  return { kind: 'quant', bits: 8, blockSize: 32, N, K, data, scales };
}

/**
 * Q4_0 (d, qs[16]; x = d·(q − 8)) and Q4_1 (d, m, qs[16]; x = d·q + m) → 4 bits, blocks of 32. ggml keeps element j
 * in the low nibble and element j+16 in the high nibble of byte j; MatMulNBits wants elements 2i and 2i+1 in byte i,
 * so the nibbles are repacked. Q4_0 uses the default zero point 8; Q4_1 zero points 0 and offsets m.
 */
function q4_01(raw: Uint8Array, N: number, K: number, withMin: boolean): QuantMatrix {
  const nb = (N * K) / 32;
  const bytes = withMin ? 20 : 18;
  const head = withMin ? 4 : 2;
  const data = new Uint8Array((N * K) / 2);
  const scales = new Float32Array(nb);
  const offsets = withMin ? new Float32Array(nb) : undefined;
  const nib = (qs: number, e: number) => (e < 16 ? raw[qs + e] & 15 : raw[qs + e - 16] >> 4);
  for (let b = 0; b < nb; b++) {
    const at = b * bytes;
    scales[b] = f16(raw, at);
    if (offsets) offsets[b] = f16(raw, at + 2);
    const qs = at + head;
    for (let i = 0; i < 16; i++) data[b * 16 + i] = nib(qs, 2 * i) | (nib(qs, 2 * i + 1) << 4);
  }
  const m: QuantMatrix = { kind: 'quant', bits: 4, blockSize: 32, N, K, data, scales };
  // 4-bit zero points pack two blocks a byte; all zero.
  return withMin ? { ...m, zeroPoints: new Uint8Array(N * Math.ceil(K / 32 / 2)), offsets } : m;
}

/**
 * Q4_K (d, dmin: f16; scales[12]; qs[128]; 8 sub-blocks of 32, x = d·sc·q − dmin·m) → 4 bits, blocks of 32 (the
 * sub-blocks), scale d·sc, zero point 0, offset −dmin·m. In each 64-element chunk c ggml keeps sub-block 2c in the low
 * nibbles of qs[32c..32c+32) and sub-block 2c+1 in their high nibbles.
 */
function q4_K(raw: Uint8Array, N: number, K: number): QuantMatrix {
  const supers = (N * K) / 256;
  const nb = supers * 8;
  const data = new Uint8Array((N * K) / 2);
  const scales = new Float32Array(nb);
  const offsets = new Float32Array(nb);
  for (let s = 0; s < supers; s++) {
    const at = s * 144;
    const d = f16(raw, at), dmin = f16(raw, at + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK(raw, at + 4, j);
      const b = s * 8 + j;
      scales[b] = d * sc;
      offsets[b] = -(dmin * m);
      const qs = at + 16 + 32 * (j >> 1);
      const shift = (j & 1) * 4;
      for (let i = 0; i < 16; i++) {
        data[b * 16 + i] = ((raw[qs + 2 * i] >> shift) & 15) | (((raw[qs + 2 * i + 1] >> shift) & 15) << 4);
      }
    }
  }
  return { kind: 'quant', bits: 4, blockSize: 32, N, K, data, scales, zeroPoints: new Uint8Array(N * Math.ceil(K / 32 / 2)), offsets };
}

/**
 * Q5_K (d, dmin, scales[12], qh[32], qs[128]; x = d·sc·q − dmin·m, q 5 bits) → 8 bits, blocks of 32, scale d·sc,
 * zero point 0, offset −dmin·m. Element l of sub-block j: low 4 bits as in Q4_K, 5th bit = bit j of qh[l].
 */
function q5_K(raw: Uint8Array, N: number, K: number): QuantMatrix {
  const supers = (N * K) / 256;
  const nb = supers * 8;
  const data = new Uint8Array(N * K);
  const scales = new Float32Array(nb);
  const offsets = new Float32Array(nb);
  for (let s = 0; s < supers; s++) {
    const at = s * 176;
    const d = f16(raw, at), dmin = f16(raw, at + 2);
    const qh = at + 16, ql = at + 48;
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK(raw, at + 4, j);
      const b = s * 8 + j;
      scales[b] = d * sc;
      offsets[b] = -(dmin * m);
      const qs = ql + 32 * (j >> 1);
      const shift = (j & 1) * 4;
      for (let l = 0; l < 32; l++) data[b * 32 + l] = ((raw[qs + l] >> shift) & 15) | (((raw[qh + l] >> j) & 1) << 4);
    }
  }
  return { kind: 'quant', bits: 8, blockSize: 32, N, K, data, scales, zeroPoints: new Uint8Array(N * (K / 32)), offsets };
}

/**
 * Q6_K (ql[128], qh[64], int8 scales[16], d; x = d·sc·(q − 32), 16 sub-blocks of 16) → 8 bits, blocks of 16, scale
 * d·sc (sc is signed), zero point 32. In half h (128 elements), element l < 32 takes the low nibble of ql[64h+l],
 * l+32 the low nibble of ql[64h+32+l], l+64 and l+96 the high nibbles of those; their top 2 bits are bits 0-1, 2-3,
 * 4-5, 6-7 of qh[32h+l].
 */
function q6_K(raw: Uint8Array, N: number, K: number): QuantMatrix {
  const supers = (N * K) / 256;
  const nb = supers * 16;
  const data = new Uint8Array(N * K);
  const scales = new Float32Array(nb);
  for (let s = 0; s < supers; s++) {
    const at = s * 210;
    const d = f16(raw, at + 208);
    for (let j = 0; j < 16; j++) {
      const sc = raw[at + 192 + j] << 24 >> 24; // int8
      scales[s * 16 + j] = d * sc;
    }
    const out = s * 256;
    for (let h = 0; h < 2; h++) {
      const ql = at + 64 * h, qh = at + 128 + 32 * h;
      for (let l = 0; l < 32; l++) {
        const hb = raw[qh + l];
        const e = out + 128 * h + l;
        data[e] = (raw[ql + l] & 15) | ((hb & 3) << 4);
        data[e + 32] = (raw[ql + 32 + l] & 15) | (((hb >> 2) & 3) << 4);
        data[e + 64] = (raw[ql + l] >> 4) | (((hb >> 4) & 3) << 4);
        data[e + 96] = (raw[ql + 32 + l] >> 4) | (((hb >> 6) & 3) << 4);
      }
    }
  }
  return { kind: 'quant', bits: 8, blockSize: 16, N, K, data, scales, zeroPoints: new Uint8Array(N * (K / 16)).fill(32) };
}
