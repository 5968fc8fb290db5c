// A packed model's token embeddings, looked up a row per token (forward.ts). Two sources:
// - MemoryEmbedding: the packed table in memory (the load that converted the model and wrote the cache, or a load
//   without a cache).
// - FileEmbedding: the model cache's copy of that table (graph-cache.ts, weight-cache.ts format), read a row at a time
//   with positioned reads. The table then lives in the OS page cache, which the system can reclaim, instead of in
//   the engine's memory: the whole vocabulary is 139 MB for a 1.5B Q4_0 model and 262 MB for Q8_0, and a tied
//   matrix is held a second time by the head graph anyway. A lookup is one read per array of the row (two for a
//   source with default zero points), a few microseconds a token.
import { closeSync, openSync, readSync } from 'node:fs';
import { dequantRow, rowBytes, type QuantBits, type QuantMatrix } from './quant';

export interface EmbeddingRows {
  /** Rows (vocabulary) and columns (hidden size). */
  readonly N: number;
  readonly K: number;
  /** Bytes the table holds in the engine's memory. */
  readonly residentBytes: number;
  /** Row ids[i] into out[i·K ..], float32; throws a RangeError on an id outside the table. */
  rowsInto(ids: ArrayLike<number>, out: Float32Array): void;
  close(): void;
}

/** Reads bytes.length bytes at `position` (positioned reads loop until done); throws at the end of the file. */
export function readFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), position + done);
    if (n <= 0) throw new Error('unexpected end of file');
    done += n;
  }
}

function checkId(id: number, N: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= N) throw new RangeError(`token id ${id} is outside the embedding table (${N} rows)`);
}

export class MemoryEmbedding implements EmbeddingRows {
  readonly N: number;
  readonly K: number;
  readonly residentBytes: number;

  constructor(private readonly table: QuantMatrix) {
    this.N = table.N;
    this.K = table.K;
    this.residentBytes = table.data.byteLength + table.scales.byteLength + (table.zeroPoints?.byteLength ?? 0)
      + (table.offsets?.byteLength ?? 0);
  }

  rowsInto(ids: ArrayLike<number>, out: Float32Array): void {
    for (let i = 0; i < ids.length; i++) {
      checkId(ids[i], this.N);
      dequantRow(this.table, ids[i], out, i * this.K);
    }
  }

  close(): void {}
}

/** Where a table's arrays start in the file (byte offsets); absent arrays are null. */
export interface TableLayout {
  bits: QuantBits; blockSize: number; N: number; K: number;
  data: number; scales: number; zeroPoints: number | null; offsets: number | null;
}

export class FileEmbedding implements EmbeddingRows {
  readonly N: number;
  readonly K: number;
  private fd: number | null;
  /** One row of each array (a QuantMatrix of N = 1), refilled per lookup. */
  private readonly row: QuantMatrix;
  private readonly sizes: { data: number; scales: number; zeroPoints: number; offsets: number };
  /** The row arrays' bytes, filled by the reads (views made once). */
  private readonly bytes: { data: Uint8Array; scales: Uint8Array; zeroPoints: Uint8Array | null; offsets: Uint8Array | null };
  readonly residentBytes: number;

  /** Opens `file` (its own descriptor, closed by close()); the layout comes from a validated index. */
  constructor(readonly file: string, private readonly layout: TableLayout) {
    const { bits, blockSize, N, K } = layout;
    this.N = N;
    this.K = K;
    const nb = K / blockSize, rb = rowBytes({ K, blockSize, bits });
    this.sizes = { data: rb.data, scales: 4 * nb, zeroPoints: layout.zeroPoints === null ? 0 : rb.zeroPoints, offsets: layout.offsets === null ? 0 : 4 * nb };
    this.row = {
      kind: 'quant', bits, blockSize, N: 1, K,
      data: new Uint8Array(rb.data),
      scales: new Float32Array(nb),
      zeroPoints: layout.zeroPoints === null ? undefined : new Uint8Array(rb.zeroPoints),
      offsets: layout.offsets === null ? undefined : new Float32Array(nb),
    };
    const view = (a: Uint8Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    this.bytes = {
      data: this.row.data, scales: view(this.row.scales),
      zeroPoints: this.row.zeroPoints ?? null, offsets: this.row.offsets ? view(this.row.offsets) : null,
    };
    this.residentBytes = this.sizes.data + this.sizes.scales + this.sizes.zeroPoints + this.sizes.offsets;
    this.fd = openSync(file, 'r');
  }

  private read(into: Uint8Array, at: number): void {
    try {
      readFully(this.fd!, into, at);
    } catch (err) {
      throw new Error(`${this.file}: the model cache's embedding table cannot be read (${(err as Error).message}; was the file changed?)`);
    }
  }

  rowsInto(ids: ArrayLike<number>, out: Float32Array): void {
    if (this.fd === null) throw new Error('embedding table closed');
    const { layout, sizes, row, bytes } = this;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      checkId(id, this.N);
      this.read(bytes.data, layout.data + id * sizes.data);
      this.read(bytes.scales, layout.scales + id * sizes.scales);
      if (bytes.zeroPoints) this.read(bytes.zeroPoints, layout.zeroPoints! + id * sizes.zeroPoints);
      if (bytes.offsets) this.read(bytes.offsets, layout.offsets! + id * sizes.offsets);
      dequantRow(row, 0, out, i * this.K);
    }
  }

  close(): void {
    if (this.fd === null) return;
    try { closeSync(this.fd); } catch { /* already closed */ }
    this.fd = null;
  }
}
