// One GGUF file as a ModelSource: the header is parsed and validated once; tensors are read on demand with positioned
// reads of their own byte range (never the whole file) and handed over as float32 (F32/F16/BF16, and every vector) or
// as a QuantMatrix in the source's block format (formats.ts). llama.cpp's q/k row permutation is undone here.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../errors';
import { dequantRow, isQuant, quantBytes, rowBytes, type QuantMatrix, type WeightTensor } from '../quant';
import type { ModelSource } from '../source';
import type { ModelSpec } from '../spec';
import { HfTokenizer } from '../tokenizer';
import { expectedShapes } from '../weights';
import { floatsOf, isFloatType, toQuantMatrix, type GgmlType } from './formats';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from './parse';
import { ggufSpec, ggufTensorName } from './spec';
import { ggufTokenizer } from './tokenizer';

export function openGguf(file: string): ModelSource {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new UserError('not found', abs);
  const fd = openSync(abs, 'r');
  try {
    const stat = fstatSync(fd);
    const header = readGgufHeader(fd, abs);
    const tok = ggufTokenizer(header, abs);
    const spec = ggufSpec(header, abs, tok.vocabSize, { bos: tok.bosId, eos: tok.eosIds });
    checkTensors(header, spec, abs);
    const tokenizer = HfTokenizer.fromJson(tok.json, tok.config, tok.eosIds, abs);
    return new GgufSource(abs, fd, header, spec, tokenizer, `gguf:${abs}:${stat.size}:${stat.mtimeMs}`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Every tensor the spec implies is there, with the shape it implies (GGUF lists dims innermost first). */
function checkTensors(h: GgufHeader, spec: ModelSpec, file: string): void {
  for (const [hf, shape] of expectedShapes(spec)) {
    const name = ggufTensorName(hf)!;
    const t = h.tensors.get(name);
    if (!t) throw new UserError(`has no tensor "${name}" (the metadata implies it)`, file);
    const dims = [...t.dims].reverse();
    if (dims.length !== shape.length || dims.some((d, i) => d !== shape[i])) {
      throw new UserError(`tensor "${name}" has shape [${t.dims}] but the metadata implies [${[...shape].reverse()}]`, file);
    }
  }
}

/** Resident bytes per weight of each stored type once loaded (README.md's table; floats widen to float32). */
const residentPerWeight: Record<GgmlType, number> = {
  F32: 4, F16: 4, BF16: 4, Q8_0: 1.125, Q4_0: 0.625, Q4_1: 0.765625, Q4_K: 0.765625, Q5_K: 1.28125, Q6_K: 1.3125,
};

class GgufSource implements ModelSource {
  readonly format = 'gguf' as const;
  private open = true;
  residentBytes = 0;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly header: GgufHeader,
    readonly spec: ModelSpec,
    readonly tokenizer: HfTokenizer,
    readonly fingerprint: string,
  ) {}

  /** The embedding is stored in a block format: the engine looks embeddings up from the packed table. */
  get packed(): boolean {
    return !isFloatType(this.header.tensors.get('token_embd.weight')!.type);
  }

  /** The largest resident size per weight among the matrices (the graph-size check must hold for every graph). */
  get bytesPerWeight(): number {
    let most = 0;
    for (const t of this.header.tensors.values()) if (t.dims.length === 2) most = Math.max(most, residentPerWeight[t.type]);
    return most;
  }

  weight(hfName: string): WeightTensor {
    const name = ggufTensorName(hfName);
    const t = name !== undefined ? this.header.tensors.get(name) : undefined;
    if (!t) throw new UserError(`has no tensor "${name ?? hfName}" (${hfName})`, this.path);
    const raw = this.read(t);
    const rows = t.dims.slice(1).reduce((a, d) => a * d, 1);
    const K = t.dims[0];
    let w: WeightTensor;
    if (isFloatType(t.type)) w = floatsOf(t.type, raw);
    else {
      const m = toQuantMatrix(t.type, raw, rows, K);
      if (t.dims.length === 1) {
        // Vectors (norms, biases) are float32 whatever the file stores.
        const v = new Float32Array(K);
        dequantRow(m, 0, v);
        w = v;
      } else w = m;
    }
    if (this.spec.modelType === 'llama') {
      const heads = /\.self_attn\.q_proj\./.test(hfName) ? this.spec.numHeads : /\.self_attn\.k_proj\./.test(hfName) ? this.spec.numKvHeads : 0;
      if (heads > 0) w = unpermuteQk(w, t.dims.length === 1 ? 1 : K, heads);
    }
    this.residentBytes += isQuant(w) ? quantBytes(w) : w.byteLength;
    return w;
  }

  private read(t: GgufTensorInfo): Uint8Array {
    if (!this.open) throw new Error(`${this.path}: read after close`);
    const bytes = new Uint8Array(t.end - t.begin);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(this.fd, bytes, done, Math.min(bytes.length - done, 1 << 30), t.begin + done);
      if (n <= 0) throw new UserError(`tensor "${t.name}": unexpected end of file (changed since it was opened?)`, this.path);
      done += n;
    }
    return bytes;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd);
  }
}

/**
 * llama.cpp's converter stores each llama q/k head's rows interleaved for its RoPE: file row h·D + 2i + j holds
 * Hugging Face row h·D + j·D/2 + i. The engine's rotate_half graphs want the Hugging Face order back. Rows move whole,
 * so a packed matrix's blocks, scales, zero points and offsets move with them unchanged.
 */
function unpermuteQk(w: WeightTensor, cols: number, heads: number): WeightTensor {
  const rows = w instanceof Float32Array ? w.length / cols : w.N;
  const D = rows / heads;
  const fileRow = (r: number) => {
    const h = Math.floor(r / D), within = r % D;
    const j = within >= D / 2 ? 1 : 0;
    const i = within - j * (D / 2);
    return h * D + 2 * i + j;
  };
  const move = <A extends Float32Array | Uint8Array>(src: A, perRow: number): A => {
    const out = new (src.constructor as new (n: number) => A)(src.length);
    for (let r = 0; r < rows; r++) out.set(src.subarray(fileRow(r) * perRow, (fileRow(r) + 1) * perRow), r * perRow);
    return out;
  };
  if (w instanceof Float32Array) return move(w, cols);
  const nb = w.K / w.blockSize;
  const rb = rowBytes(w);
  const m: QuantMatrix = {
    ...w,
    data: move(w.data, rb.data),
    scales: move(w.scales, nb),
    zeroPoints: w.zeroPoints && move(w.zeroPoints, rb.zeroPoints),
    offsets: w.offsets && move(w.offsets, nb),
  };
  return m;
}
