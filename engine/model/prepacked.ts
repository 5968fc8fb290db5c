// A graph saved with onnxruntime's prepacked weights (`session.save_external_prepacked_constant_initializers`), its
// external data re-laid so every blob starts on an aligned offset.
//
// Why: MatMulNBits packs a matrix into MLAS's layout once per load (PrePack), copying every weight into fresh memory;
// saved, the packed blobs are read back mapped from the file instead (no packing, no anonymous copy:
// bench-results/prepacked-cache.md). But onnxruntime 1.30 aligns a blob in its data file only when it is over 1 MB
// (ModelSavingOptions.align_threshold, not a session option), and MLAS places the block sums inside a packed buffer
// by aligning their absolute address: a blob of a small matrix that lands at an offset of another residue mod 64
// than the buffer it was packed in is read with its sums and scales shifted (NaN or ~1e22 out of the small models'
// layer graphs; the 1.5B shape's blobs are all over 1 MB, so they were right). Re-laying every piece at a page
// boundary gives each the alignment of the buffer it was packed in (onnxruntime's allocator: 64 bytes), and lets
// onnxruntime map each tensor. The cache checks a saved graph against the session that saved it before trusting it.
//
// The external data references a saved model holds: per initializer, `offset` and `length` in `location`, and for a
// prepacked one `prepacked_<i>` = `<key>|<offset>;<length>;<checksum>` (one blob; MatMulNBits has one).
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ort, type CreatedSession, type SessionOptions } from '../runtime/session';

/**
 * Whether the graph cache keeps the saved prepacked form: only with SNOUT_PREPACKED=1. Measured on the 1.5B shape
 * (bench-results/prepacked-cache.md), it lowers peak RSS by 100-500 MB but decodes 5-20 % slower and prefills the
 * first prompt slower: the packed weights are then file pages mapped 4 KB at a time, where onnxruntime's own buffers
 * are heap blocks that glibc madvises into 2 MB pages (malloc-env.ts), and a token streams all of them. Speed comes
 * first, so it is an opt-in for memory-bound machines. Part of the cache key (load.ts).
 */
export const prepackedEnabled = () => process.env.SNOUT_PREPACKED === '1';

/** Offsets in the re-laid data file are multiples of this (a page: what mmap needs, and a multiple of MLAS's 64). */
export const PREPACKED_ALIGNMENT = 4096;

/** tensor: an initializer's bytes; original: those of one that has a packed blob (not read after load); blob: a packed blob. */
interface Piece { offset: number; length: number; kind: 'tensor' | 'original' | 'blob'; set: (offset: number) => void }

/** Every external piece of a model's initializers (with setters for their offsets) and the data file they live in. */
function externalPieces(model: onnx.IModelProto, file: string): { pieces: Piece[]; location?: string; locations: onnx.IStringStringEntryProto[] } {
  const pieces: Piece[] = [], locations: onnx.IStringStringEntryProto[] = [];
  let location: string | undefined;
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entries = t.externalData ?? [];
    const at = (key: string) => entries.find((e) => e.key === key);
    const loc = at('location');
    if (!loc?.value || (location && loc.value !== location)) throw new Error(`${file}: external data in no file or more than one`);
    location = loc.value;
    locations.push(loc);
    const off = at('offset'), len = at('length');
    const packed = entries.filter((e) => e.key?.startsWith('prepacked_'));
    pieces.push({ offset: Number(off?.value ?? 0), length: Number(len?.value), kind: packed.length ? 'original' : 'tensor', set: (o) => { if (off) off.value = String(o); else entries.push({ key: 'offset', value: String(o) }); } });
    for (const e of packed) {
      const [key, ...blobs] = (e.value ?? '').split('|');
      const parsed = blobs.map((b) => b.split(';'));
      parsed.forEach((fields, i) => pieces.push({
        offset: Number(fields[0]), length: Number(fields[1]), kind: 'blob',
        set: (o) => { parsed[i][0] = String(o); e.value = [key, ...parsed.map((f) => f.join(';'))].join('|'); },
      }));
    }
  }
  for (const p of pieces) {
    if (!Number.isSafeInteger(p.offset) || !Number.isSafeInteger(p.length) || p.offset < 0 || p.length < 0) throw new Error(`${file}: bad external data reference`);
  }
  return { pieces, location, locations };
}

/**
 * Copies the saved model `srcOnnx` (external data in its `location` beside it) to `dstOnnx` + `dstData` with every
 * external piece at an aligned offset. Returns the data file's size (0, and no file, for a model without external
 * data). Throws on a reference outside the data file.
 */
export function realignExternalData(srcOnnx: string, dstOnnx: string, dstData: string): number {
  const model = onnx.ModelProto.decode(readFileSync(srcOnnx));
  const { pieces, location, locations } = externalPieces(model, srcOnnx);
  for (const loc of locations) loc.value = path.basename(dstData);
  if (location === undefined) { writeFileSync(dstOnnx, onnx.ModelProto.encode(model).finish()); return 0; } // no data file
  const src = openSync(path.join(path.dirname(srcOnnx), location), 'r');
  const dst = openSync(dstData, 'w');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    let end = 0;
    for (const p of pieces) {
      const to = Math.ceil(end / PREPACKED_ALIGNMENT) * PREPACKED_ALIGNMENT;
      for (let done = 0; done < p.length;) {
        const n = readSync(src, buf, 0, Math.min(buf.length, p.length - done), p.offset + done);
        if (n <= 0) throw new Error(`${srcOnnx}: external data ends early`);
        writeSync(dst, buf, 0, n, to + done);
        done += n;
      }
      p.set(to);
      end = to + p.length;
    }
    writeFileSync(dstOnnx, onnx.ModelProto.encode(model).finish());
    return end;
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Above this size a graph file holds its weights inline (a plain graph): a saved one keeps them in its data file. */
const SAVED_GRAPH_MAX_BYTES = 16 << 20;

/**
 * Checks a cached graph file before a session maps it: a saved graph's data file must exist and hold every piece
 * (a mapped file cut short would fault at a run, not fail at load). Returns the bytes a session keeps resident: the
 * prepacked blobs and the initializers without one (a saved data file also holds the originals of prepacked
 * matrices, never read after load), or the file's size for a plain graph.
 */
export function checkGraphFile(file: string): number {
  const size = statSync(file).size;
  if (size > SAVED_GRAPH_MAX_BYTES) return size;
  const model = onnx.ModelProto.decode(readFileSync(file));
  const { pieces, location } = externalPieces(model, file);
  if (!location) return size;
  const data = path.join(path.dirname(file), location);
  let dataSize: number;
  try { dataSize = statSync(data).size; } catch { throw new Error(`${path.basename(file)}: its data file ${location} is missing`); }
  const end = pieces.reduce((m, p) => Math.max(m, p.offset + p.length), 0);
  if (dataSize < end) throw new Error(`${path.basename(file)}: its data file is truncated (${dataSize} bytes, needs ${end})`);
  return size + pieces.reduce((n, p) => n + (p.kind === 'original' ? 0 : p.length), 0);
}

/** Feeds for a check run of a graph: every symbolic dimension `rows`, floats in [-1, 1), integers (ids) 0. */
function probeFeeds(session: ort.InferenceSession, rows: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 12345;
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new Error(`graph input ${m.name} is not a tensor`);
    const dims = m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : rows));
    const n = dims.reduce((a, b) => a * b, 1);
    if (m.type === 'float32') {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; data[i] = seed / 2 ** 31 - 1; }
      feeds[m.name] = new ort.Tensor('float32', data, dims);
    } else if (m.type === 'int64') feeds[m.name] = new ort.Tensor('int64', new BigInt64Array(n), dims);
    else throw new Error(`graph input ${m.name}: no check feed for ${m.type}`);
  }
  return feeds;
}

/** Whether two sessions of one graph give the same outputs, bit for bit, at one row and at three. */
async function sameOutputs(a: ort.InferenceSession, b: ort.InferenceSession): Promise<boolean> {
  for (const rows of [1, 3]) {
    const feeds = probeFeeds(a, rows);
    const [x, y] = [await a.run(feeds), await b.run(feeds)];
    for (const name of a.outputNames) {
      const bytes = (t: ort.Tensor) => { const v = t.data as Float32Array; return new Uint8Array(v.buffer, v.byteOffset, v.byteLength); };
      const p = bytes(x[name]), q = bytes(y[name]);
      if (p.length !== q.length || !p.every((v, i) => v === q[i])) return false;
    }
  }
  return true;
}

export type OpenGraph = (graph: Uint8Array | string, savePrepacked?: SessionOptions['savePrepacked']) => Promise<CreatedSession>;

/**
 * Opens graph `bytes` and leaves it in `dir` as `<name>.onnx` + its data file in the saved prepacked form: a session
 * saves it (to a temporary folder), the save is re-laid (realignExternalData), and a session of the re-laid files is
 * checked against the saving one (same outputs, bit for bit) before it replaces it, so what runs now is what later
 * loads map. On cpu only (other providers pack nothing); `saved` false when the check failed or the provider is not
 * cpu, and then the caller keeps the plain graph. The data file's name is unique, so two processes building the same
 * folder never pair one's graph with the other's data.
 */
export async function openSavingPrepacked(bytes: Uint8Array, dir: string, name: string, open: OpenGraph, log: (line: string) => void): Promise<{ created: CreatedSession; saved: boolean }> {
  const tmp = mkdtempSync(path.join(dir, `.${name}-`));
  let saver: CreatedSession | undefined, reopened: CreatedSession | undefined;
  const unique = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const data = path.join(dir, `${name}.${unique}.data`), file = path.join(dir, `${name}.onnx`), staged = `${file}.${unique}.tmp`;
  try {
    saver = await open(bytes, { path: path.join(tmp, `${name}.onnx`), dataFile: `${name}.data` });
    if (saver.provider !== 'cpu') return { created: saver, saved: false };
    realignExternalData(path.join(tmp, `${name}.onnx`), staged, data);
    renameSync(staged, file);
    reopened = await open(file);
    if (!(await sameOutputs(saver.session, reopened.session))) {
      log(`snout: onnxruntime's saved prepacked weights of ${name} give other outputs than the packed ones; caching the plain graph`);
      await reopened.session.release();
      rmSync(file, { force: true });
      rmSync(data, { force: true });
      return { created: saver, saved: false };
    }
    await saver.session.release();
    return { created: reopened, saved: true };
  } catch (err) {
    await reopened?.session.release().catch(() => undefined);
    rmSync(file, { force: true });
    rmSync(staged, { force: true });
    rmSync(data, { force: true });
    if (!saver) throw err;
    log(`snout: cannot save ${name}'s prepacked weights (${(err as Error).message.split('\n')[0]}); caching the plain graph`);
    return { created: saver, saved: false };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
