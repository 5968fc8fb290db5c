// Packed tensors in a file (the model cache's embedding table, graph-cache.ts):
//   "SNOUTW01" | records … | index JSON | index length (u64 LE) | "SNOUTEND"
// Each record is one array of one tensor, 8-byte aligned; the index lists every tensor with its arrays' offsets,
// lengths and CRC-32s of a sample (the first and last 32 KiB: a checksum of every byte would cost more than the read
// itself, and truncation, a garbled header or a stale file are what caches meet in practice). Written to a temp file
// and renamed into place, so a reader sees a whole file or none.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { FileEmbedding, readFully } from './embedding-rows';
import { checkQuant, type QuantMatrix } from './quant';

const MAGIC = 'SNOUTW01';
const TRAILER = 'SNOUTEND';

type ArrayRef = [offset: number, bytes: number, crc: number];
interface Entry {
  name: string; bits: 4 | 8; blockSize: number; N: number; K: number;
  data: ArrayRef; scales: ArrayRef; zeroPoints?: ArrayRef; offsets?: ArrayRef;
}

// zlib.crc32 arrived in Node 20.15; older runtimes (an older VS Code's Electron) write 0 and skip the check.
const zlibCrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const SAMPLE = 32 * 1024;
const crc32 = (bytes: Uint8Array): number => {
  if (!zlibCrc) return 0;
  if (bytes.length <= 2 * SAMPLE) return zlibCrc(bytes);
  return zlibCrc(bytes.subarray(bytes.length - SAMPLE), zlibCrc(bytes.subarray(0, SAMPLE)));
};

const asBytes = (a: Uint8Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export class WeightCacheWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private at = 0;
  private readonly entries: Entry[] = [];

  constructor(private readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    this.fd = openSync(this.tmp, 'w');
    this.write(Buffer.from(MAGIC));
  }

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, this.at + done);
    this.at += bytes.length;
  }

  private array(a: Uint8Array | Float32Array): ArrayRef {
    const pad = (8 - (this.at % 8)) % 8;
    if (pad) this.write(new Uint8Array(pad));
    const bytes = asBytes(a);
    const ref: ArrayRef = [this.at, bytes.length, crc32(bytes)];
    this.write(bytes);
    return ref;
  }

  add(name: string, m: QuantMatrix): void {
    this.entries.push({
      name, bits: m.bits, blockSize: m.blockSize, N: m.N, K: m.K,
      data: this.array(m.data), scales: this.array(m.scales),
      zeroPoints: m.zeroPoints ? this.array(m.zeroPoints) : undefined,
      offsets: m.offsets ? this.array(m.offsets) : undefined,
    });
  }

  /** Index, trailer, then the atomic rename into place. */
  finish(): void {
    const index = Buffer.from(JSON.stringify(this.entries));
    this.write(index);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(index.length));
    this.write(len);
    this.write(Buffer.from(TRAILER));
    closeSync(this.fd);
    renameSync(this.tmp, this.file);
  }

  abandon(): void {
    try { closeSync(this.fd); } catch { /* already closed */ }
    rmSync(this.tmp, { force: true });
  }
}

export class WeightCacheReader {
  private readonly entries = new Map<string, Entry>();

  private constructor(private readonly fd: number, readonly file: string) {}

  /** Opens and validates the index; throws an Error saying what is wrong (the caller deletes and rebuilds). */
  static open(file: string): WeightCacheReader {
    const fd = openSync(file, 'r');
    const reader = new WeightCacheReader(fd, file);
    try {
      const size = fstatSync(fd).size;
      if (size < 24) throw new Error(`truncated (${size} bytes)`);
      const head = new Uint8Array(8);
      readFully(fd, head, 0);
      if (Buffer.from(head).toString('latin1') !== MAGIC) throw new Error('not a snout weight cache (bad magic)');
      const tail = new Uint8Array(16);
      readFully(fd, tail, size - 16);
      if (Buffer.from(tail.subarray(8)).toString('latin1') !== TRAILER) throw new Error('truncated (no trailer)');
      const indexLen = Number(Buffer.from(tail.subarray(0, 8)).readBigUInt64LE(0));
      if (indexLen <= 0 || indexLen > size - 24) throw new Error(`index length ${indexLen} does not fit`);
      const indexBytes = new Uint8Array(indexLen);
      readFully(fd, indexBytes, size - 16 - indexLen);
      const entries = JSON.parse(Buffer.from(indexBytes).toString('utf8')) as Entry[];
      const end = size - 16 - indexLen;
      if (!Array.isArray(entries)) throw new Error('index is not a list');
      for (const e of entries) {
        for (const ref of [e.data, e.scales, e.zeroPoints, e.offsets]) {
          if (ref && !(Array.isArray(ref) && ref[0] >= 8 && ref[1] >= 0 && ref[0] + ref[1] <= end)) throw new Error(`tensor ${e.name}: array outside the file`);
        }
        reader.entries.set(e.name, e);
      }
      return reader;
    } catch (err) {
      reader.close();
      throw err;
    }
  }

  private array(ref: ArrayRef, name: string): Uint8Array {
    const bytes = new Uint8Array(ref[1]);
    readFully(this.fd, bytes, ref[0]);
    if (zlibCrc && ref[2] !== 0 && crc32(bytes) !== ref[2]) throw new Error(`tensor ${name}: checksum mismatch`);
    return bytes;
  }

  /**
   * One packed tensor left in the file, read a row at a time (embedding-rows.ts): its shape is checked as read()
   * checks it and its arrays' checksummed samples are verified now; the rows are read on demand.
   */
  rows(name: string): FileEmbedding {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no tensor ${name}`);
    // checkQuant looks at the arrays' lengths only: give it the lengths the index states.
    const len = (ref: ArrayRef | undefined, width: number) => (ref ? { length: ref[1] / width } : undefined);
    checkQuant({
      kind: 'quant', bits: e.bits, blockSize: e.blockSize, N: e.N, K: e.K,
      data: len(e.data, 1), scales: len(e.scales, 4), zeroPoints: len(e.zeroPoints, 1), offsets: len(e.offsets, 4),
    } as unknown as QuantMatrix, `cached tensor ${name}`);
    for (const ref of [e.data, e.scales, e.zeroPoints, e.offsets]) if (ref) this.checkSample(ref, name);
    return new FileEmbedding(this.file, {
      bits: e.bits, blockSize: e.blockSize, N: e.N, K: e.K,
      data: e.data[0], scales: e.scales[0], zeroPoints: e.zeroPoints?.[0] ?? null, offsets: e.offsets?.[0] ?? null,
    });
  }

  /** The checksum of an array's first and last SAMPLE bytes (what crc32 covers), without reading the rest. */
  private checkSample(ref: ArrayRef, name: string): void {
    if (!zlibCrc || ref[2] === 0) return;
    if (ref[1] <= 2 * SAMPLE) { this.array(ref, name); return; }
    const first = new Uint8Array(SAMPLE), last = new Uint8Array(SAMPLE);
    readFully(this.fd, first, ref[0]);
    readFully(this.fd, last, ref[0] + ref[1] - SAMPLE);
    if (zlibCrc(last, zlibCrc(first)) !== ref[2]) throw new Error(`tensor ${name}: checksum mismatch`);
  }

  close(): void {
    try { closeSync(this.fd); } catch { /* already closed */ }
  }
}
