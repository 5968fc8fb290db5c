// Float64 dequantization of ggml's block formats, written plainly from the definitions (ggml-common.h block structs,
// ggml-quants.c dequantize_row_*): the oracle the converters are tested against. Deliberately element-order code that
// follows ggml's loops, sharing nothing with engine/model/gguf/formats.ts.

function half(raw: Uint8Array, at: number): number {
  const h = raw[at] | (raw[at + 1] << 8);
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

function getScaleMinK4(j: number, q: Uint8Array, at: number): { d: number; m: number } {
  if (j < 4) return { d: q[at + j] & 63, m: q[at + j + 4] & 63 };
  return { d: (q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4), m: (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4) };
}

const int8 = (b: number) => (b > 127 ? b - 256 : b);

/** Dequantize `raw` (whole blocks of `type`) to float64, in ggml's element order. */
export function dequantize64(type: string, raw: Uint8Array): Float64Array {
  const y: number[] = [];
  switch (type) {
    case 'Q8_0':
      for (let at = 0; at < raw.length; at += 34) {
        const d = half(raw, at);
        for (let j = 0; j < 32; j++) y.push(d * int8(raw[at + 2 + j]));
      }
      break;
    case 'Q4_0':
      for (let at = 0; at < raw.length; at += 18) {
        const d = half(raw, at);
        const lo: number[] = [], hi: number[] = [];
        for (let j = 0; j < 16; j++) {
          lo.push(((raw[at + 2 + j] & 0x0f) - 8) * d);
          hi.push(((raw[at + 2 + j] >> 4) - 8) * d);
        }
        y.push(...lo, ...hi);
      }
      break;
    case 'Q4_1':
      for (let at = 0; at < raw.length; at += 20) {
        const d = half(raw, at), m = half(raw, at + 2);
        const lo: number[] = [], hi: number[] = [];
        for (let j = 0; j < 16; j++) {
          lo.push((raw[at + 4 + j] & 0x0f) * d + m);
          hi.push((raw[at + 4 + j] >> 4) * d + m);
        }
        y.push(...lo, ...hi);
      }
      break;
    case 'Q4_K':
      for (let at = 0; at < raw.length; at += 144) {
        const d = half(raw, at), min = half(raw, at + 2);
        let q = at + 16;
        let is = 0;
        for (let j = 0; j < 256; j += 64) {
          const a = getScaleMinK4(is, raw, at + 4), b = getScaleMinK4(is + 1, raw, at + 4);
          for (let l = 0; l < 32; l++) y.push(d * a.d * (raw[q + l] & 0xf) - min * a.m);
          for (let l = 0; l < 32; l++) y.push(d * b.d * (raw[q + l] >> 4) - min * b.m);
          q += 32; is += 2;
        }
      }
      break;
    case 'Q5_K':
      for (let at = 0; at < raw.length; at += 176) {
        const d = half(raw, at), min = half(raw, at + 2);
        const qh = at + 16;
        let ql = at + 48;
        let is = 0, u1 = 1, u2 = 2;
        for (let j = 0; j < 256; j += 64) {
          const a = getScaleMinK4(is, raw, at + 4), b = getScaleMinK4(is + 1, raw, at + 4);
          for (let l = 0; l < 32; l++) y.push(d * a.d * ((raw[ql + l] & 0xf) + (raw[qh + l] & u1 ? 16 : 0)) - min * a.m);
          for (let l = 0; l < 32; l++) y.push(d * b.d * ((raw[ql + l] >> 4) + (raw[qh + l] & u2 ? 16 : 0)) - min * b.m);
          ql += 32; is += 2; u1 <<= 2; u2 <<= 2;
        }
      }
      break;
    case 'Q6_K':
      for (let at = 0; at < raw.length; at += 210) {
        const d = half(raw, at + 208);
        const out = new Array<number>(256);
        let ql = at, qh = at + 128, sc = at + 192, base = 0;
        for (let n = 0; n < 256; n += 128) {
          for (let l = 0; l < 32; l++) {
            const is = Math.floor(l / 16);
            const q1 = ((raw[ql + l] & 0xf) | (((raw[qh + l] >> 0) & 3) << 4)) - 32;
            const q2 = ((raw[ql + l + 32] & 0xf) | (((raw[qh + l] >> 2) & 3) << 4)) - 32;
            const q3 = ((raw[ql + l] >> 4) | (((raw[qh + l] >> 4) & 3) << 4)) - 32;
            const q4 = ((raw[ql + l + 32] >> 4) | (((raw[qh + l] >> 6) & 3) << 4)) - 32;
            out[base + l] = d * int8(raw[sc + is]) * q1;
            out[base + l + 32] = d * int8(raw[sc + is + 2]) * q2;
            out[base + l + 64] = d * int8(raw[sc + is + 4]) * q3;
            out[base + l + 96] = d * int8(raw[sc + is + 6]) * q4;
          }
          base += 128; ql += 64; qh += 32; sc += 8;
        }
        y.push(...out);
      }
      break;
    default:
      throw new Error(`no reference for ${type}`);
  }
  return Float64Array.from(y);
}
