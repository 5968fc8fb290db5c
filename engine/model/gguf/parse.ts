// GGUF container (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md, versions 2 and 3): header, metadata and
// tensor infos, read with bounded positioned reads (a 7B file is 4-8 GB; only its header, a few MB, is read here).
// Every count, length, dimension and offset is checked against the file's size before it is trusted; anything wrong
// is one UserError naming the file.
//
// Written by hand rather than with @huggingface/gguf: that parser is asynchronous only (ModelSource and its weight()
// are synchronous, as the safetensors source is), rereads the file in 2 MB slices through Blob, and leaves the checks
// this loader needs (tensor bytes inside the file, no overlaps, known types) to the caller anyway.
import { fstatSync, readSync } from 'node:fs';
import { UserError } from '../../errors';
import { ggmlTypeName, ggmlTypes, type GgmlType } from './formats';

export type MetaScalar = number | boolean | string;
export type MetaValue = MetaScalar | MetaArray;
/** Arrays keep a typed form where they can: numbers as Float64Array (exact for every GGUF integer ≤ 2^53). */
export type MetaArray = string[] | Float64Array | boolean[] | MetaArray[];

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** GGUF order: dims[0] is the innermost (contiguous) one, i.e. [K, N] for a matrix [N rows, K cols]. */
  dims: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, MetaValue>;
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  dataStart: number;
  fileSize: number;
}

/** A header (metadata + tensor infos) above this is not a model file (a 256K-token vocabulary needs ~20 MB). */
const maxHeaderBytes = 256 * 1024 * 1024;
const maxDims = 4;

/** Sequential little-endian reads through a window buffer; every read is checked against the file and header ends. */
class Cursor {
  pos = 0;
  private buf = Buffer.alloc(1 << 20);
  private bufStart = 0;
  private bufLen = 0;
  private readonly limit: number;

  constructor(private readonly fd: number, private readonly size: number, private readonly file: string) {
    this.limit = Math.min(size, maxHeaderBytes);
  }

  /** Makes n bytes at pos available in buf; returns their index in buf. */
  private need(n: number, what: string): number {
    if (this.pos + n > this.limit) {
      if (this.pos + n > this.size) throw new UserError(`truncated: ${what} runs past the end of the ${this.size}-byte file`, this.file);
      throw new UserError(`header is over ${maxHeaderBytes / 1024 / 1024} MiB (at ${what}): not a model file this loader reads`, this.file);
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.bufLen) {
      if (n > this.buf.length) this.buf = Buffer.alloc(Math.max(n, this.buf.length * 2));
      this.bufStart = this.pos;
      this.bufLen = 0;
      const want = Math.min(this.buf.length, this.size - this.pos);
      while (this.bufLen < want) {
        const got = readSync(this.fd, this.buf, this.bufLen, want - this.bufLen, this.pos + this.bufLen);
        if (got <= 0) throw new UserError(`read failed at byte ${this.pos + this.bufLen} (file changed while reading?)`, this.file);
        this.bufLen += got;
      }
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u8(what: string): number { return this.buf[this.need(1, what)]; }
  i8(what: string): number { return this.buf.readInt8(this.need(1, what)); }
  u16(what: string): number { return this.buf.readUInt16LE(this.need(2, what)); }
  i16(what: string): number { return this.buf.readInt16LE(this.need(2, what)); }
  u32(what: string): number { return this.buf.readUInt32LE(this.need(4, what)); }
  i32(what: string): number { return this.buf.readInt32LE(this.need(4, what)); }
  f32(what: string): number { return this.buf.readFloatLE(this.need(4, what)); }
  f64(what: string): number { return this.buf.readDoubleLE(this.need(8, what)); }
  u64(what: string): number {
    const at = this.need(8, what);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi >= 1 << 21) throw new UserError(`${what} is ${this.buf.readBigUInt64LE(at)}, beyond any real file`, this.file);
    return hi * 2 ** 32 + this.buf.readUInt32LE(at);
  }
  i64(what: string): number {
    const v = this.buf.readBigInt64LE(this.need(8, what));
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${what} is ${v}, out of range`, this.file);
    return Number(v);
  }
  /** A count of items that each take at least `minBytes`: bounded by what is left of the file. */
  count(what: string, minBytes: number): number {
    const n = this.u64(what);
    if (n * minBytes > this.size - this.pos) {
      throw new UserError(`${what} is ${n}, more than the rest of the ${this.size}-byte file can hold (the file is truncated or corrupt)`, this.file);
    }
    return n;
  }
  str(what: string): string {
    // Inlined count(): `what` is only formatted on failure (a vocabulary is 100K+ strings).
    const len = this.need(8, what);
    const n = this.buf.readUInt32LE(len + 4) * 2 ** 32 + this.buf.readUInt32LE(len);
    if (n > this.size - this.pos) {
      throw new UserError(`length of ${what} is ${n}, more than the rest of the ${this.size}-byte file can hold (the file is truncated or corrupt)`, this.file);
    }
    const at = this.need(n, what);
    return this.buf.toString('utf8', at, at + n);
  }
}

// GGUF metadata value types.
const T = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };
const scalarSize: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function readScalar(c: Cursor, type: number, what: string, file: string): number | boolean {
  switch (type) {
    case T.u8: return c.u8(what);
    case T.i8: return c.i8(what);
    case T.u16: return c.u16(what);
    case T.i16: return c.i16(what);
    case T.u32: return c.u32(what);
    case T.i32: return c.i32(what);
    case T.f32: return c.f32(what);
    case T.f64: return c.f64(what);
    case T.u64: return c.u64(what);
    case T.i64: return c.i64(what);
    case T.bool: {
      const b = c.u8(what);
      if (b > 1) throw new UserError(`${what}: bool byte ${b}`, file);
      return b === 1;
    }
    default: throw new UserError(`${what}: unknown value type ${type}`, file);
  }
}

function readValue(c: Cursor, type: number, what: string, file: string, depth = 0): MetaValue {
  if (type === T.string) return c.str(what);
  if (type !== T.array) return readScalar(c, type, what, file);
  const elType = c.u32(`element type of ${what}`);
  if (elType === T.array) {
    if (depth >= 2) throw new UserError(`${what}: arrays nested deeper than 2`, file);
    const n = c.count(`length of ${what}`, 12);
    const out: MetaArray[] = [];
    for (let i = 0; i < n; i++) out.push(readValue(c, T.array, what, file, depth + 1) as MetaArray);
    return out;
  }
  if (elType === T.string) {
    const n = c.count(`length of ${what}`, 8);
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = c.str(what);
    return out;
  }
  const size = scalarSize[elType];
  if (size === undefined) throw new UserError(`${what}: unknown array element type ${elType}`, file);
  const n = c.count(`length of ${what}`, size);
  if (elType === T.bool) {
    const out = new Array<boolean>(n);
    for (let i = 0; i < n; i++) out[i] = readScalar(c, elType, what, file) as boolean;
    return out;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = readScalar(c, elType, what, file) as number;
  return out;
}

/** Parse and validate a GGUF file's header from an open descriptor. */
export function readGgufHeader(fd: number, file: string): GgufHeader {
  const fileSize = fstatSync(fd).size;
  const c = new Cursor(fd, fileSize, file);
  if (fileSize < 24) throw new UserError(`truncated: ${fileSize} bytes, too short for a GGUF header`, file);
  const magic = c.u32('magic');
  if (magic !== 0x46554747) throw new UserError('not a GGUF file (no "GGUF" magic at byte 0)', file);
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    throw new UserError(`GGUF version ${version} is not supported (2 and 3 are${version === 1 ? '; version 1 files predate August 2023: convert them again' : ''})`, file);
  }
  // A tensor info takes at least 8 (name) + 4 + 8 + 4 + 8 bytes, a key/value at least 8 + 4 + 1.
  const tensorCount = c.count('tensor count', 32);
  const kvCount = c.count('metadata count', 13);

  const metadata = new Map<string, MetaValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.str(`metadata key #${i}`);
    const type = c.u32(`type of metadata "${key}"`);
    if (metadata.has(key)) throw new UserError(`metadata key "${key}" appears twice`, file);
    metadata.set(key, readValue(c, type, `metadata "${key}"`, file));
  }

  let alignment = 32;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (typeof a !== 'number' || !Number.isInteger(a) || a < 1 || a > 1 << 16 || (a & (a - 1)) !== 0) {
      throw new UserError(`general.alignment ${JSON.stringify(a)} is not a power of two up to 65536`, file);
    }
    alignment = a;
  }

  const infos: Array<{ name: string; type: GgmlType; dims: number[]; offset: number }> = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.str(`name of tensor #${i}`);
    if (seen.has(name)) throw new UserError(`tensor "${name}" appears twice`, file);
    seen.add(name);
    const nDims = c.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > maxDims) throw new UserError(`tensor "${name}" has ${nDims} dimensions (1 to ${maxDims})`, file);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`dimension ${d} of tensor "${name}"`));
    const typeId = c.u32(`type of tensor "${name}"`);
    const offset = c.u64(`offset of tensor "${name}"`);
    const type = ggmlTypeName(typeId);
    if (!type || !(type in ggmlTypes)) {
      throw new UserError(
        `tensor "${name}" has type ${type ?? 'unknown'} (ggml type ${typeId}), which Snout does not read (supported: ${Object.keys(ggmlTypes).join(', ')})`,
        file,
      );
    }
    infos.push({ name, type: type as GgmlType, dims, offset });
  }

  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of infos) {
    const { block, bytes } = ggmlTypes[t.type];
    const bad = (msg: string): never => { throw new UserError(`tensor "${t.name}": ${msg}`, file); };
    if (t.dims.some((d) => d < 1)) bad(`dimension of 0 in [${t.dims}]`);
    if (t.dims[0] % block !== 0) bad(`${t.type} rows of ${t.dims[0]} values are not whole blocks of ${block}`);
    const count = t.dims.reduce((a, d) => a * d, 1);
    const size = (count / block) * bytes;
    if (!Number.isSafeInteger(size)) bad(`[${t.dims}] is too large`);
    if (t.offset % alignment !== 0) bad(`offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    const begin = dataStart + t.offset;
    if (begin + size > fileSize) {
      bad(`its ${size} bytes at offset ${t.offset} run past the end of the ${fileSize}-byte file (truncated, or a wrong offset or size)`);
    }
    tensors.set(t.name, { name: t.name, type: t.type, dims: t.dims, begin, end: begin + size });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new UserError(`tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data section (a wrong offset or size)`, file);
    }
  }
  return { version, metadata, tensors, alignment, dataStart, fileSize };
}
