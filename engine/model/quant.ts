// Quantized weight matrices in the layout of onnxruntime's com.microsoft MatMulNBits operator, the one form every
// quantized source (GGUF block formats, safetensors quantized on load) is brought into before it reaches a graph.
//
// A matrix W [N out, K in] (the checkpoint's [out, in] order) is cut along K into blocks of `blockSize`:
//
//   W[n, k] = scale[n, b] · (q[n, k] − zp[n, b]) + offset[n, b]        b = ⌊k / blockSize⌋
//
// q is an unsigned `bits`-bit integer; zp defaults to 2^(bits−1) (8 or 128) when no zero points are given; offset
// (absent = 0) carries the per-block minimum of formats such as Q4_1 and the K-quants (d·sc·q − dmin·m), which
// MatMulNBits cannot express: the graph adds it as blocksum(x) · offsetᵀ (see engine/model/graphs.ts), so those
// formats load without requantizing.
//
// Byte layout (MatMulNBits): data [N][nBlocks][blockSize·bits/8]; with 4 bits element 2i sits in the low nibble and
// 2i+1 in the high nibble of byte i of its block. zeroPoints: [N][⌈nBlocks·bits/8⌉] packed the same way (4 bits: block
// 2j low nibble, 2j+1 high). scales and offsets: [N][nBlocks] float32.

export type QuantBits = 4 | 8;

export interface QuantMatrix {
  readonly kind: 'quant';
  readonly bits: QuantBits;
  /** Power of two, 16..256. */
  readonly blockSize: number;
  /** Rows (output features). */
  readonly N: number;
  /** Columns (input features); a multiple of blockSize. */
  readonly K: number;
  readonly data: Uint8Array;
  readonly scales: Float32Array;
  readonly zeroPoints?: Uint8Array;
  readonly offsets?: Float32Array;
}

/** A weight as the graph builder receives it: plain float32 (norms, biases, small models) or a QuantMatrix. */
export type WeightTensor = Float32Array | QuantMatrix;

export const isQuant = (w: WeightTensor): w is QuantMatrix => !(w instanceof Float32Array);

export function blocksPerRow(m: Pick<QuantMatrix, 'K' | 'blockSize'>): number {
  return m.K / m.blockSize;
}

/** Bytes of one row's packed data, and of one row's packed zero points. */
export function rowBytes(m: Pick<QuantMatrix, 'K' | 'blockSize' | 'bits'>): { data: number; zeroPoints: number } {
  const nb = m.K / m.blockSize;
  return { data: (m.K * m.bits) / 8, zeroPoints: Math.ceil((nb * m.bits) / 8) };
}

/** Resident bytes of the packed form (what a loaded model holds per matrix). */
export function quantBytes(m: QuantMatrix): number {
  return m.data.byteLength + m.scales.byteLength + (m.zeroPoints?.byteLength ?? 0) + (m.offsets?.byteLength ?? 0);
}

/** Checks the invariants the graph and the kernels rely on; throws with what is wrong. */
export function checkQuant(m: QuantMatrix, what: string): void {
  const fail = (msg: string): never => { throw new Error(`${what}: ${msg}`); };
  if (m.bits !== 4 && m.bits !== 8) fail(`bits ${m.bits} (4 or 8)`);
  if (!(m.blockSize >= 16 && m.blockSize <= 256 && (m.blockSize & (m.blockSize - 1)) === 0)) fail(`block size ${m.blockSize}`);
  if (!(m.N > 0 && m.K > 0 && m.K % m.blockSize === 0)) fail(`shape [${m.N}, ${m.K}] with blocks of ${m.blockSize}`);
  const rb = rowBytes(m);
  const nb = m.K / m.blockSize;
  if (m.data.length !== m.N * rb.data) fail(`${m.data.length} data bytes, expected ${m.N * rb.data}`);
  if (m.scales.length !== m.N * nb) fail(`${m.scales.length} scales, expected ${m.N * nb}`);
  if (m.zeroPoints && m.zeroPoints.length !== m.N * rb.zeroPoints) fail(`${m.zeroPoints.length} zero-point bytes, expected ${m.N * rb.zeroPoints}`);
  if (m.offsets && m.offsets.length !== m.N * nb) fail(`${m.offsets.length} offsets, expected ${m.N * nb}`);
}

function zeroPoint(m: QuantMatrix, n: number, b: number, zpRowBytes: number): number {
  if (!m.zeroPoints) return 1 << (m.bits - 1);
  if (m.bits === 8) return m.zeroPoints[n * zpRowBytes + b];
  const byte = m.zeroPoints[n * zpRowBytes + (b >> 1)];
  return (b & 1) === 0 ? byte & 15 : byte >> 4;
}

/**
 * Row n of W into out[at .. at+K) (float32). Used for embedding lookups from the compact table, where a row is a
 * token's embedding, and by the tests.
 */
export function dequantRow(m: QuantMatrix, n: number, out: Float32Array, at = 0): void {
  const { K, blockSize, bits } = m;
  const nb = K / blockSize;
  const rb = rowBytes(m);
  const row = n * rb.data;
  for (let b = 0; b < nb; b++) {
    const s = m.scales[n * nb + b];
    const z = zeroPoint(m, n, b, rb.zeroPoints);
    const off = m.offsets ? m.offsets[n * nb + b] : 0;
    const k0 = b * blockSize;
    if (bits === 8) {
      for (let i = 0; i < blockSize; i++) out[at + k0 + i] = s * (m.data[row + k0 + i] - z) + off;
    } else {
      const base = row + k0 / 2;
      for (let i = 0; i < blockSize; i += 2) {
        const byte = m.data[base + i / 2];
        out[at + k0 + i] = s * ((byte & 15) - z) + off;
        out[at + k0 + i + 1] = s * ((byte >> 4) - z) + off;
      }
    }
  }
}

/** Row n of W in float64 (the test oracle's view of a QuantMatrix). */
export function dequantRow64(m: QuantMatrix, n: number): Float64Array {
  const out = new Float64Array(m.K);
  const nb = m.K / m.blockSize;
  const rb = rowBytes(m);
  for (let k = 0; k < m.K; k++) {
    const b = Math.floor(k / m.blockSize);
    const byte = m.data[n * rb.data + Math.floor((k * m.bits) / 8)];
    const q = m.bits === 8 ? byte : k % 2 === 0 ? byte & 15 : byte >> 4;
    out[k] = m.scales[n * nb + b] * (q - zeroPoint(m, n, b, rb.zeroPoints)) + (m.offsets ? m.offsets[n * nb + b] : 0);
  }
  return out;
}

/**
 * Round-to-nearest quantization of a float32 matrix [N, K] (safetensors weights quantized on load): symmetric per
 * block, scale = max|w| / (2^(bits−1) − 1), default zero point (no zeroPoints array). K not a multiple of blockSize is
 * refused (every matrix of the supported architectures has K a multiple of 32).
 */
export function quantizeRtn(w: Float32Array, N: number, K: number, bits: QuantBits, blockSize: number): QuantMatrix {
  if (w.length !== N * K) throw new Error(`quantizeRtn: ${w.length} values for [${N}, ${K}]`);
  if (K % blockSize !== 0) throw new Error(`quantizeRtn: K ${K} is not a multiple of the block size ${blockSize}`);
  const nb = K / blockSize;
  const zp = 1 << (bits - 1);
  const qmax = zp - 1;
  const data = new Uint8Array((N * K * bits) / 8);
  const scales = new Float32Array(N * nb);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const at = n * K + b * blockSize;
      let amax = 0;
      for (let i = 0; i < blockSize; i++) amax = Math.max(amax, Math.abs(w[at + i]));
      const s = amax / qmax;
      scales[n * nb + b] = s;
      const inv = s > 0 ? 1 / s : 0;
      for (let i = 0; i < blockSize; i++) {
        const q = Math.max(-qmax - 1, Math.min(qmax, Math.round(w[at + i] * inv))) + zp;
        if (bits === 8) data[at + i] = q;
        else data[(at + i) >> 1] |= (at + i) % 2 === 0 ? q : q << 4;
      }
    }
  }
  return { kind: 'quant', bits, blockSize, N, K, data, scales };
}
