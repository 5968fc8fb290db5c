// safetensors reader (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}} and the raw data. One file or several listed in
// model.safetensors.index.json. Everything is validated before a byte of weights is trusted; tensors are read on demand
// with plain fs reads and converted to float32 (bf16/f16 cannot cross onnxruntime's JS API, and float32 is what the
// graphs compute in).
import { closeSync, existsSync, readSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { MODEL_FILE_LIMITS, openRegularFile, readJsonObject } from './read-file';

export type StoredDtype = 'F32' | 'F16' | 'BF16';
const dtypeBytes: Record<StoredDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorInfo {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  file: string;
  /** Absolute byte range in `file`. */
  begin: number;
  end: number;
}

/** Headers above this are not a real checkpoint (the format caps them at 100 MB). */
const maxHeaderBytes = 100_000_000;

/** Parse and validate one file's header; returns its tensors with absolute offsets. */
export function readHeader(file: string): TensorInfo[] {
  const { fd, size } = openRegularFile(file);
  try {
    if (size < 8) throw new UserError(`truncated: ${size} bytes, too short for a safetensors header`, file);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > maxHeaderBytes || 8 + headerLen > size) {
      throw new UserError(`header length ${headerLen} does not fit in the ${size}-byte file (truncated or not safetensors)`, file);
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (err) {
      throw new UserError(`header is not valid JSON (${(err as Error).message})`, file);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) throw new UserError('header is not a JSON object', file);
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    const tensors: TensorInfo[] = [];
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      tensors.push(validateEntry(name, entry, dataStart, dataLen, file));
    }
    checkNoOverlap(tensors, file);
    return tensors;
  } finally {
    closeSync(fd);
  }
}

function validateEntry(name: string, entry: unknown, dataStart: number, dataLen: number, file: string): TensorInfo {
  const bad = (msg: string): never => { throw new UserError(`tensor "${name}": ${msg}`, file); };
  if (!entry || typeof entry !== 'object') bad('header entry is not an object');
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== 'string' || !(e.dtype in dtypeBytes)) bad(`unsupported dtype ${JSON.stringify(e.dtype)} (supported: F32, F16, BF16)`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`bad shape ${JSON.stringify(e.shape)}`);
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
    bad(`bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [b, en] = offsets as number[];
  const dtype = e.dtype as StoredDtype;
  const shape = e.shape as number[];
  const bytes = shape.reduce((a, d) => a * d, 1) * dtypeBytes[dtype];
  if (en < b) bad(`data_offsets [${b}, ${en}] end before they begin`);
  if (en > dataLen) bad(`data_offsets [${b}, ${en}] run past the end of the data (${dataLen} bytes; file truncated?)`);
  if (en - b !== bytes) bad(`data_offsets span ${en - b} bytes but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
  return { name, dtype, shape, file, begin: dataStart + b, end: dataStart + en };
}

function checkNoOverlap(tensors: TensorInfo[], file: string): void {
  const sorted = [...tensors].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new UserError(`tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data section`, file);
    }
  }
}

/** All tensors of a checkpoint folder: model.safetensors, or the shards named by model.safetensors.index.json. */
export class SafetensorsStore {
  private readonly tensors = new Map<string, TensorInfo>();

  static open(modelDir: string): SafetensorsStore {
    const store = new SafetensorsStore();
    const indexFile = path.join(modelDir, 'model.safetensors.index.json');
    const single = path.join(modelDir, 'model.safetensors');
    if (existsSync(indexFile)) {
      const shards = readIndex(indexFile);
      for (const shard of shards.files) {
        for (const t of readHeader(path.join(modelDir, shard))) store.add(t, path.join(modelDir, shard));
      }
      // The index must agree with the shards: every tensor it names lives in the shard it names.
      for (const [name, shard] of shards.weightMap) {
        const info = store.tensors.get(name);
        if (!info) throw new UserError(`names tensor "${name}" in ${shard}, but that shard does not hold it`, indexFile);
        if (path.basename(info.file) !== path.basename(shard)) {
          throw new UserError(`says tensor "${name}" is in ${shard}, but it is in ${path.basename(info.file)}`, indexFile);
        }
      }
    } else if (existsSync(single)) {
      for (const t of readHeader(single)) store.add(t, single);
    } else {
      throw new UserError('no model.safetensors or model.safetensors.index.json', modelDir);
    }
    return store;
  }

  private add(t: TensorInfo, file: string): void {
    if (this.tensors.has(t.name)) throw new UserError(`tensor "${t.name}" appears in more than one shard`, file);
    this.tensors.set(t.name, t);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    return this.tensors.get(name);
  }

  /** Read one tensor as float32 (converting bf16/f16). */
  read(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`tensor ${name} not in checkpoint`);
    const bytes = new Uint8Array(t.end - t.begin);
    const { fd, size } = openRegularFile(t.file); // checked again: the folder may have changed since the header was read
    try {
      if (size < t.end) throw new UserError(`tensor "${name}": file shrank to ${size} bytes since it was checked`, t.file);
      let done = 0;
      while (done < bytes.length) {
        // At most 1 GiB per read (the OS caps single reads near 2 GiB anyway).
        const n = readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), t.begin + done);
        if (n <= 0) throw new UserError(`tensor "${name}": unexpected end of file`, t.file);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return toFloat32(bytes, t.dtype);
  }
}

function readIndex(indexFile: string): { files: string[]; weightMap: Map<string, string> } {
  const json = readJsonObject(indexFile, MODEL_FILE_LIMITS.safetensorsIndex);
  const map = (json as { weight_map?: unknown })?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new UserError('missing "weight_map" object', indexFile);
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
      throw new UserError(`weight_map["${name}"] must be a shard file name, got ${JSON.stringify(shard)}`, indexFile);
    }
    weightMap.set(name, shard);
  }
  return { files: [...new Set(weightMap.values())].sort(), weightMap };
}

/** Little-endian stored bytes → float32 values. */
export function toFloat32(bytes: Uint8Array, dtype: StoredDtype): Float32Array {
  if (dtype === 'F32') {
    // `bytes` owns a fresh, aligned ArrayBuffer, so this is a view, not a copy.
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const n = bytes.byteLength / 2;
  const u16 = new Uint16Array(n);
  for (let i = 0; i < n; i++) u16[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(u16[i]);
  }
  return out;
}

/** IEEE 754 binary16 → number (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
