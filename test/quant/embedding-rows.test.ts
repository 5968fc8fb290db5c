// Embedding rows read from the model cache's file (embedding-rows.ts FileEmbedding) against the float64 dequantization
// of the same packed table (quant.ts dequantRow64, written from the formats' definition) and against the in-memory
// lookup, for every layout a packed table comes in: 4 and 8 bits, default zero points, explicit zero points, offsets.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { FileEmbedding, MemoryEmbedding } from '../../engine/model/embedding-rows';
import { dequantRow64, quantizeRtn, rowBytes, type QuantBits, type QuantMatrix } from '../../engine/model/quant';
import { WeightCacheReader, WeightCacheWriter } from '../../engine/model/weight-cache';
import { rng } from '../attention/data';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-embed-rows-'));
after(() => rmSync(root, { recursive: true, force: true }));

function table(bits: QuantBits, blockSize: number, N: number, K: number, extras: boolean, seed: number): QuantMatrix {
  const rand = rng(seed);
  const base = quantizeRtn(Float32Array.from({ length: N * K }, () => rand() * 2 - 1), N, K, bits, blockSize);
  if (!extras) return base;
  // A source with its own zero points and offsets (GGUF Q4_1 / K-quant style): random ones, in range.
  const nb = K / blockSize, rb = rowBytes(base);
  const zeroPoints = Uint8Array.from({ length: N * rb.zeroPoints }, () => Math.floor(rand() * 256));
  const offsets = Float32Array.from({ length: N * nb }, () => rand() - 0.5);
  return { ...base, zeroPoints, offsets };
}

function written(name: string, m: QuantMatrix): string {
  const file = path.join(root, `${name}.snoutw`);
  const w = new WeightCacheWriter(file);
  w.add('embed', m);
  w.finish();
  return file;
}

function open(file: string): FileEmbedding {
  const reader = WeightCacheReader.open(file);
  try {
    return reader.rows('embed');
  } finally {
    reader.close();
  }
}

for (const [bits, blockSize, extras] of [[4, 32, false], [8, 32, false], [4, 64, true], [8, 32, true]] as const) {
  it(`${bits}-bit rows, blocks of ${blockSize}${extras ? ', zero points and offsets' : ''}: the file's rows are the table's`, () => {
    const N = 300, K = 128;
    const m = table(bits, blockSize, N, K, extras, bits * 100 + blockSize);
    const fileRows = open(written(`t${bits}_${blockSize}_${extras}`, m));
    const memory = new MemoryEmbedding(m);
    try {
      const rand = rng(7);
      const ids = [0, N - 1, 5, 5, ...Array.from({ length: 40 }, () => Math.floor(rand() * N))];
      const a = new Float32Array(ids.length * K), b = new Float32Array(ids.length * K);
      fileRows.rowsInto(ids, a);
      memory.rowsInto(ids, b);
      assert.deepEqual(a, b, 'file and memory lookups agree bit for bit');
      ids.forEach((id, i) => {
        const ref = dequantRow64(m, id);
        for (let k = 0; k < K; k++) {
          assert.ok(Math.abs(a[i * K + k] - ref[k]) <= 1e-6 * (1 + Math.abs(ref[k])), `row ${id} column ${k}: ${a[i * K + k]} vs ${ref[k]}`);
        }
      });
      // What stays in memory is one row, not the table.
      assert.ok(fileRows.residentBytes * 100 < memory.residentBytes, `${fileRows.residentBytes} vs ${memory.residentBytes}`);
    } finally {
      fileRows.close();
    }
  });
}

it('an id outside the table is a clear RangeError; a closed table refuses lookups', () => {
  const m = table(4, 32, 50, 64, false, 3);
  const rows = open(written('bounds', m));
  const out = new Float32Array(64);
  for (const bad of [50, -1, 1.5, Number.NaN]) assert.throws(() => rows.rowsInto([bad], out), (e: Error) => e instanceof RangeError && /outside the embedding table \(50 rows\)/.test(e.message));
  assert.throws(() => new MemoryEmbedding(m).rowsInto([50], out), RangeError);
  rows.close();
  assert.throws(() => rows.rowsInto([0], out), /closed/);
});

it('a cache file cut short after it was opened is a clear error naming the file, not garbage rows', () => {
  const m = table(8, 32, 200, 64, false, 4);
  const file = written('cut', m);
  const rows = open(file);
  try {
    truncateSync(file, Math.floor(statSync(file).size / 4)); // the scales (after the data) are gone
    assert.throws(() => rows.rowsInto([199], new Float32Array(64)), (e: Error) => e.message.includes(file) && /cannot be read/.test(e.message));
  } finally {
    rows.close();
  }
});
