// One cached sequence on disk: its token ids, every layer's K and V rows [0, n) in the cache's own dtype, and the
// index MagicPIG built over them (k̄, key norms, the L bucket tables as they lie in memory), so a sequence read back
// decodes bit for bit like the one written (the disk tier: engine/generate/disk-prefix-cache.ts).
//
// File layout (little endian):
//   0  magic "SNOUTKV\0"        8 bytes
//   8  format version           u32   (SNAPSHOT_VERSION; a newer file is refused, never guessed at)
//   12 header length H          u32   (JSON, at most MAX_HEADER bytes)
//   16 payload length P         f64   (an integer; the file is exactly 32 + H + P bytes)
//   24 crc32 of the header      u32
//   28 crc32 of the payload     u32
//   32 header JSON: engine version, model identity, attention settings, shape, token count, per-layer index sizes
//   32+H payload, in this order: tokens (i32 × n); per layer, per KV head: its K/V rows (one run of n·stride elements
//        when K and V are interleaved, else K rows then V rows), then, if the layer is indexed: k̄ (f32 × d), norms
//        (f32 × indexedEnd), and the tables as codes (u16 × L·count, table-major: id i's code in table l at
//        l·count + i − sinks).
//
// K/V rows, k̄ and norms are written from views of the live memory (no copy) and read back through one 1 MiB staging
// buffer (measured faster than reading into fresh memory directly: restoreSnapshot); the checksum covers those bytes. The tables
// are stored as codes, not as their memory: half the bytes of the ids (2 bytes an id a table, no gaps, no bucket
// bounds), and canonical — rebuilt by LshTables.fromCodes they are the tables a cold prefill of the same tokens
// builds, whatever folds and cuts the written sequence went through (retrieval lists the same ids either way).
// Quest's page min/max are not stored: they are recomputed from the keys on demand (pagesValid = 0), same bits.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { version as ENGINE_VERSION } from '../../package.json';
import { HeadIndex } from './head-index';
import { KvStore } from './kv-store';
import { LshTables } from './lsh-tables';
import type { LayerState, Sequence } from './sequence';
import type { AttentionConfig, AttentionShape } from './types';

export const SNAPSHOT_MAGIC = 'SNOUTKV\0';
/** Bump whenever the layout above or the meaning of any stored field changes. */
export const SNAPSHOT_VERSION = 1;
export const PREAMBLE = 32;
/** A header longer than this is not one we wrote (per-layer entries are a few dozen bytes). */
const MAX_HEADER = 1 << 20;
/** Bytes read (and checksummed) at a time when restoring. */
const STAGE = 1 << 20;
/** Bytes of table codes made in one go when writing (one event-loop turn of the disk writer). */
const CODES_CHUNK = 1 << 20;
/** Extra rows reserved past the restored tokens, so the request that follows (its new tail and its output) fits. */
const RESTORE_ROOM = 2048;

/** The attention settings that shape what is stored (a file made under others is never used). */
export const SHAPING_KEYS = ['method', 'K', 'L', 'seed', 'sinks', 'window', 'tailThreshold', 'minIndexed', 'denseLayers', 'kvDtype'] as const;
export type ShapingConfig = Pick<AttentionConfig, typeof SHAPING_KEYS[number]>;
export const shapingConfig = (c: Readonly<AttentionConfig>): ShapingConfig =>
  Object.fromEntries(SHAPING_KEYS.map((k) => [k, c[k]])) as unknown as ShapingConfig;

interface HeadMeta { count: number }
interface LayerMeta { indexedEnd: number; kbarSpan: number; heads: HeadMeta[] | null }

export interface SnapshotHeader {
  engine: string;
  /** The model and how its K/V are computed (load.ts: source fingerprint, weights, graph options). */
  identity: unknown;
  config: ShapingConfig;
  shape: AttentionShape;
  /** K and V of a token side by side (stride 2·d, the SIMD layout) or in separate arrays. */
  interleaved: boolean;
  tokens: number;
  layers: LayerMeta[];
}

/** Why a file was not used (the disk tier deletes it and logs this). */
export class SnapshotError extends Error {}

// crc32: node:zlib's (Node ≥ 20.15 / 22.2), else a table-driven fallback (older runtimes: VS Code's may be one).
const zcrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Int32Array | null = null;
function crcJs(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c;
    }
  }
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
export const crc32 = (data: Uint8Array, value = 0): number => (zcrc ? zcrc(data, value) : crcJs(data, value));

export const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** A payload segment: a view of live memory, or bytes made when the writer gets there (a head's table codes). */
export type Segment = Uint8Array | { bytes: number; make: () => Uint8Array };
export const segmentBytes = (s: Segment): number => (s instanceof Uint8Array ? s.length : s.bytes);
export const materialize = (s: Segment): Uint8Array => (s instanceof Uint8Array ? s : s.make());

/** Token count worth saving: the prompt's exact prefix (never sampled decode output, never past the cached rows). */
export function snapshotLength(seq: Sequence, tokens: number): number {
  return Math.max(0, Math.min(tokens, seq.length, seq.exactLength));
}

/** Header and payload segments (views of live memory) of the first n tokens of `seq`. */
export function snapshotParts(seq: Sequence, tokens: readonly number[], n: number, identity: unknown): { header: SnapshotHeader; segments: Segment[] } {
  const { config, layers } = seq.persistState();
  const { numKvHeads: G, headDim: d } = seq.shape;
  const segments: Segment[] = [bytesOf(Int32Array.from(tokens.slice(0, n)))];
  const metas: LayerMeta[] = [];
  let interleaved = true;
  for (const st of layers) {
    for (let g = 0; g < G; g++) {
      const h = st.kv.heads[g];
      if (h.stride === 2 * d) segments.push(bytesOf(st.kv.keys[g].subarray(0, n * h.stride)));
      else {
        interleaved = false;
        segments.push(bytesOf(st.kv.keys[g].subarray(0, n * d)), bytesOf(st.kv.values[g].subarray(0, n * d)));
      }
    }
    // An index is kept only when it lies inside the saved tokens and every head has it (else it is rebuilt on use).
    const indexed = st.kbarSpan > 0 && st.indexedEnd <= n && st.heads.every((hi) => hi.kbar && hi.tables);
    if (!indexed) { metas.push({ indexedEnd: config.sinks, kbarSpan: 0, heads: null }); continue; }
    const heads: HeadMeta[] = [];
    for (const hi of st.heads) {
      const t = hi.tables!;
      heads.push({ count: t.count });
      segments.push(bytesOf(hi.kbar!), bytesOf(hi.norms.subarray(0, st.indexedEnd)));
      // Codes are made from the live tables when the writer reaches them, ~CODES_CHUNK bytes of tables at a time.
      const per = Math.max(1, Math.floor(CODES_CHUNK / (2 * Math.max(1, t.count))));
      for (let l0 = 0; l0 < t.L; l0 += per) {
        const l1 = Math.min(t.L, l0 + per);
        segments.push({ bytes: 2 * (l1 - l0) * t.count, make: () => bytesOf(t.codes(l0, l1)) });
      }
    }
    metas.push({ indexedEnd: st.indexedEnd, kbarSpan: st.kbarSpan, heads });
  }
  const header: SnapshotHeader = {
    engine: ENGINE_VERSION, identity, config: shapingConfig(config), shape: { ...seq.shape }, interleaved, tokens: n, layers: metas,
  };
  return { header, segments };
}

/** The 32-byte preamble followed by the header JSON, given the payload's length and checksum. */
export function encodeHead(header: SnapshotHeader, payloadBytes: number, payloadCrc: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(PREAMBLE + json.length);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from(SNAPSHOT_MAGIC, 'latin1'), 0);
  dv.setUint32(8, SNAPSHOT_VERSION, true);
  dv.setUint32(12, json.length, true);
  dv.setFloat64(16, payloadBytes, true);
  dv.setUint32(24, crc32(json), true);
  dv.setUint32(28, payloadCrc >>> 0, true);
  out.set(json, PREAMBLE);
  return out;
}

/**
 * Writes the first n tokens of `seq` to `file` in one go (temp file + rename). The disk tier writes in chunks instead
 * (disk-prefix-cache.ts); this is for tools and tests. Returns the file's size.
 */
export function writeSnapshotSync(file: string, seq: Sequence, tokens: readonly number[], n: number, identity: unknown): number {
  const { header, segments } = snapshotParts(seq, tokens, n, identity);
  const parts = segments.map(materialize);
  let crc = 0, bytes = 0;
  for (const s of parts) { crc = crc32(s, crc); bytes += s.length; }
  const head = encodeHead(header, bytes, crc);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    let pos = 0;
    for (const s of [head, ...parts]) {
      for (let at = 0; at < s.length;) at += writeSync(fd, s, at, s.length - at, pos + at);
      pos += s.length;
    }
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  return head.length + bytes;
}

/** What a reader compares a file against: this engine, this model, these settings. */
export interface SnapshotExpect {
  identity: unknown;
  /** Unset: any settings (the folder index reads files of every settings key). */
  config?: Readonly<AttentionConfig>;
  shape: AttentionShape;
}

function readFully(fd: number, dst: Uint8Array, pos: number): void {
  for (let at = 0; at < dst.length;) {
    const m = readSync(fd, dst, at, Math.min(dst.length - at, 1 << 30), pos + at);
    if (m <= 0) throw new SnapshotError(`truncated: the file ends ${dst.length - at} bytes early`);
    at += m;
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Opens `file` and checks its preamble and header (magic, version, length, header checksum); with `expect`, also the
 * engine version, the model's identity and the attention settings. Throws SnapshotError with the reason.
 */
export function readHeader(fd: number, expect?: SnapshotExpect): { header: SnapshotHeader; payloadAt: number; payloadBytes: number; payloadCrc: number } {
  const size = fstatSync(fd).size;
  if (size < PREAMBLE) throw new SnapshotError(`truncated: ${size} bytes, not even a header`);
  const pre = new Uint8Array(PREAMBLE);
  readFully(fd, pre, 0);
  const dv = new DataView(pre.buffer);
  if (Buffer.from(pre.subarray(0, 8)).toString('latin1') !== SNAPSHOT_MAGIC) throw new SnapshotError('not a Snout KV snapshot (bad magic)');
  const version = dv.getUint32(8, true);
  if (version > SNAPSHOT_VERSION) throw new SnapshotError(`format v${version} is newer than this engine's v${SNAPSHOT_VERSION}`);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`old format v${version} (this engine writes v${SNAPSHOT_VERSION})`);
  const H = dv.getUint32(12, true), P = dv.getFloat64(16, true);
  if (H > MAX_HEADER || !Number.isSafeInteger(P) || P < 0) throw new SnapshotError('garbled preamble (impossible lengths)');
  if (size !== PREAMBLE + H + P) throw new SnapshotError(`truncated or overlong: ${size} bytes, the header says ${PREAMBLE + H + P}`);
  const json = new Uint8Array(H);
  readFully(fd, json, PREAMBLE);
  if (crc32(json) !== dv.getUint32(24, true)) throw new SnapshotError('header checksum mismatch (damaged file)');
  let header: SnapshotHeader;
  try { header = JSON.parse(Buffer.from(json).toString('utf8')) as SnapshotHeader; } catch { throw new SnapshotError('garbled header JSON'); }
  if (!header || typeof header !== 'object' || !Number.isSafeInteger(header.tokens) || header.tokens < 1 || !Array.isArray(header.layers)) {
    throw new SnapshotError('garbled header fields');
  }
  if (expect) {
    if (header.engine !== ENGINE_VERSION) throw new SnapshotError(`written by engine ${header.engine}, this is ${ENGINE_VERSION}`);
    if (!same(header.identity, expect.identity)) throw new SnapshotError('made by another model (or weights format, or graph options)');
    if (!same(header.shape, expect.shape)) throw new SnapshotError('attention shape differs from the model');
    if (expect.config && !same(header.config, shapingConfig(expect.config))) throw new SnapshotError('made under other attention settings (method, K, L, dtype, ...)');
    if (header.layers.length !== expect.shape.numLayers) throw new SnapshotError('garbled header: layer count');
  }
  return { header, payloadAt: PREAMBLE + H, payloadBytes: P, payloadCrc: dv.getUint32(28, true) };
}

/** Reads only the token ids of a snapshot (the disk tier's folder index), after the header checks. */
export function readTokens(file: string, expect?: SnapshotExpect): { header: SnapshotHeader; tokens: Int32Array } {
  const fd = openSync(file, 'r');
  try {
    const h = readHeader(fd, expect);
    if (h.payloadBytes < 4 * h.header.tokens) throw new SnapshotError('garbled header: tokens past the payload');
    const tokens = new Int32Array(h.header.tokens);
    readFully(fd, bytesOf(tokens), h.payloadAt);
    return { header: h.header, tokens };
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a snapshot into `seq` (which must have been made with the expected config): K/V rows into fresh cache memory
 * and the tables rebuilt from their codes, with no buffer the size of the file (1 MiB staging). Returns the
 * token ids. On any mismatch or damage throws SnapshotError and leaves `seq` as it was.
 */
/** Restores a snapshot into `seq` in one synchronous call (tests, CLI, benches). */
export function restoreSnapshot(file: string, seq: Sequence, expect: SnapshotExpect): Int32Array {
  const steps = restoreSteps(file, seq, expect);
  for (;;) { const r = steps.next(); if (r.done) return r.value; }
}

/**
 * Restores a snapshot a slice (~`sliceMs`) at a time, giving the event loop a turn between slices: at 32K tokens a
 * read takes seconds, and the engine must keep answering cancellations and status meanwhile. An abort stops it
 * between slices (SnapshotAborted; `seq` is then untouched: its state is adopted only at the end).
 */
export async function restoreSnapshotAsync(file: string, seq: Sequence, expect: SnapshotExpect, signal?: AbortSignal, sliceMs = 8): Promise<Int32Array> {
  const steps = restoreSteps(file, seq, expect);
  let t0 = performance.now();
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (performance.now() - t0 < sliceMs) continue;
      await new Promise((res) => setImmediate(res));
      if (signal?.aborted) throw new SnapshotAborted('cancelled while reading the cached prefix');
      t0 = performance.now();
    }
  } finally {
    steps.return(new Int32Array(0)); // closes the file when stopped early
  }
}

/** A restore stopped by its caller (not a damaged file). */
export class SnapshotAborted extends Error {}

/** The restore, as steps: it yields after each slice read and each table rebuilt. */
function* restoreSteps(file: string, seq: Sequence, expect: SnapshotExpect): Generator<void, Int32Array, void> {
  const fd = openSync(file, 'r');
  try {
    const { header, payloadAt, payloadBytes, payloadCrc } = readHeader(fd, expect);
    const n = header.tokens, { numKvHeads: G, headDim: d } = expect.shape, c = expect.config;
    if (!c) throw new Error('restoreSnapshot: the config to restore under is required');
    let pos = payloadAt, crc = 0;
    const stage = new Uint8Array(STAGE);
    const end = payloadAt + payloadBytes;
    const read = function* (view: ArrayBufferView): Generator<void, void, void> {
      const b = bytesOf(view);
      if (pos + b.length > end) throw new SnapshotError('garbled header: segments run past the payload');
      // In slices of 1 MiB through one staging buffer: read, checksummed while in cache, copied into place. Reading
      // straight into the fresh destination was slower here (1.3-1.9× for 128 MiB): the kernel's copy into
      // never-touched pages, then the checksum's first pass over them, cost more than one copy from a hot buffer.
      for (let at = 0; at < b.length; at += STAGE) {
        const m = Math.min(STAGE, b.length - at), part = stage.subarray(0, m);
        readFully(fd, part, pos + at);
        crc = crc32(part, crc);
        b.set(part, at);
        yield;
      }
      pos += b.length;
    };
    const tokens = new Int32Array(n);
    yield* read(tokens);
    const layers: LayerState[] = [];
    let codes: Uint16Array | null = null;
    for (let layer = 0; layer < header.layers.length; layer++) {
      const meta = header.layers[layer];
      const kv = new KvStore(G, d, c.kvDtype);
      kv.reserve(n + RESTORE_ROOM);
      for (let g = 0; g < G; g++) {
        const h = kv.heads[g];
        if ((h.stride === 2 * d) !== header.interleaved) throw new SnapshotError('K/V layout differs from this runtime (SIMD kernels on one side only)');
        if (header.interleaved) yield* read(kv.keys[g].subarray(0, n * h.stride));
        else { yield* read(kv.keys[g].subarray(0, n * d)); yield* read(kv.values[g].subarray(0, n * d)); }
      }
      kv.length = n;
      const heads = Array.from({ length: G }, (_, g) => new HeadIndex(g, d));
      const st: LayerState = { kv, heads, indexedEnd: c.sinks, kbarSpan: 0 };
      if (meta.heads) {
        if (meta.heads.length !== G || !(meta.indexedEnd > c.sinks && meta.indexedEnd <= n) || !(meta.kbarSpan > 0)) {
          throw new SnapshotError('garbled header: index bounds');
        }
        const count = meta.indexedEnd - c.sinks;
        if (!codes || codes.length < c.L * count) codes = new Uint16Array(c.L * count); // one scratch for every head
        const view = codes.subarray(0, c.L * count);
        for (let g = 0; g < G; g++) {
          const hi = heads[g];
          if (meta.heads[g].count !== count) throw new SnapshotError('garbled header: table sizes');
          hi.kbar = new Float32Array(d);
          yield* read(hi.kbar);
          hi.ensureNorms(meta.indexedEnd);
          yield* read(hi.norms.subarray(0, meta.indexedEnd));
          yield* read(view);
          yield;
          try { hi.tables = LshTables.fromCodes(c.K, c.L, c.sinks, view, count); } catch (e) {
            if (e instanceof RangeError) throw new SnapshotError(`garbled tables: ${e.message}`);
            throw e;
          }
        }
        st.indexedEnd = meta.indexedEnd;
        st.kbarSpan = meta.kbarSpan;
      }
      layers.push(st);
    }
    if (pos !== end) throw new SnapshotError(`garbled header: ${end - pos} payload bytes unaccounted for`);
    if (crc >>> 0 !== payloadCrc) throw new SnapshotError('payload checksum mismatch (damaged file)');
    seq.adoptState(layers, n);
    return tokens;
  } finally {
    closeSync(fd);
  }
}
