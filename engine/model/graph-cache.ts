// A packed model's graphs on disk, so the second load hands onnxruntime files instead of quantizing, converting and
// serializing the weights again (each of those touches every byte once more, and fresh memory is what a load pays
// for: bench-results/peer.md). One folder per model identity:
//
//   <cacheDir>/graphs/<key>/head.onnx, layer-<i>.onnx   the serialized graphs, as built; with SNOUT_PREPACKED=1,
//                                                     onnxruntime's saved form with MatMulNBits' weights prepacked
//                                                     in a data file beside each, where that checks out (prepacked.ts)
//                          embed.snoutw                 the packed embedding table (weight-cache.ts format)
//                          complete                     written last: a folder without it is never used
//
// key = hash(source fingerprint, weights format, graph options, GRAPH_CACHE_VERSION, onnxruntime's version, the CPU),
// so another model, weights setting, engine or onnxruntime version never reads these files, nor another CPU (MLAS
// packs for the kernels it picks on this one: AVX2, AVX-512, VNNI). Files are written to temp names and renamed; two processes
// building the same folder each rename whole files. A folder that fails to load is deleted and rebuilt.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileEmbedding } from './embedding-rows';
import type { QuantMatrix } from './quant';
import { WeightCacheReader, WeightCacheWriter } from './weight-cache';

/** Bump whenever graphs.ts changes what it builds. */
export const GRAPH_CACHE_VERSION = 3;

/** What the packed layout depends on besides the graph: onnxruntime's version and the CPU (model and feature flags). */
export function runtimeIdentity(): { ort: string; arch: string; cpu: string; flags: string } {
  let ortVersion = 'unknown', flags = '';
  try { ortVersion = (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version; } catch { /* bundled without it */ }
  try { flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? ''; } catch { /* not Linux */ }
  return { ort: ortVersion, arch: process.arch, cpu: os.cpus()[0]?.model ?? '', flags: createHash('sha256').update(flags).digest('hex').slice(0, 16) };
}

export class GraphCache {
  readonly dir: string;

  constructor(cacheDir: string, identity: unknown, private readonly log: (line: string) => void) {
    const key = createHash('sha256').update(JSON.stringify({ v: GRAPH_CACHE_VERSION, identity, runtime: runtimeIdentity() })).digest('hex').slice(0, 32);
    this.dir = path.join(cacheDir, 'graphs', key);
  }

  /** A complete folder from an earlier load. */
  get complete(): boolean {
    return existsSync(path.join(this.dir, 'complete'));
  }

  graphFile(name: string): string {
    return path.join(this.dir, `${name}.onnx`);
  }

  /** The packed embedding table, left in its file and read a row at a time (embedding-rows.ts). */
  embeddingRows(): FileEmbedding {
    const reader = WeightCacheReader.open(path.join(this.dir, 'embed.snoutw'));
    try {
      return reader.rows('embed');
    } finally {
      reader.close();
    }
  }

  /** Marks the folder used now (least recently used folders go first when the cache is trimmed). */
  touch(): void {
    try { const now = new Date(); utimesSync(path.join(this.dir, 'complete'), now, now); } catch { /* best effort */ }
  }

  /** Starts a fresh folder; returns false (with one log line) when the disk cannot take it. */
  begin(): boolean {
    try {
      rmSync(this.dir, { recursive: true, force: true });
      mkdirSync(this.dir, { recursive: true });
      return true;
    } catch (err) {
      this.log(`snout: cannot write the model cache in ${this.dir} (${(err as Error).message}); this load is not cached`);
      return false;
    }
  }

  /** Writes one file atomically; false after a failure (full disk, read-only folder), which ends caching. */
  writeGraph(name: string, bytes: Uint8Array): boolean {
    return this.atomic(this.graphFile(name), (tmp) => writeFileSync(tmp, bytes));
  }

  writeEmbedding(table: QuantMatrix): boolean {
    return this.atomic(path.join(this.dir, 'embed.snoutw'), (tmp) => {
      const w = new WeightCacheWriter(tmp);
      w.add('embed', table);
      w.finish();
    });
  }

  finish(): void {
    this.atomic(path.join(this.dir, 'complete'), (tmp) => writeFileSync(tmp, new Date().toISOString()));
  }

  /** Deletes the folder (a damaged cache). */
  drop(why: string): void {
    this.log(`snout: model cache ${this.dir} unusable (${why}); rebuilding it`);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private atomic(file: string, write: (tmp: string) => void): boolean {
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      write(tmp);
      renameSync(tmp, file);
      return true;
    } catch (err) {
      rmSync(tmp, { force: true });
      this.log(`snout: cannot write the model cache (${(err as Error).message}); continuing without it`);
      return false;
    }
  }
}

/**
 * Deletes the least recently used model folders until the cache holds at most `maxBytes` (the folder in use is
 * kept). Returns the bytes removed.
 */
export function trimGraphCache(cacheDir: string, maxBytes: number, keep: string): number {
  const root = path.join(cacheDir, 'graphs');
  if (!existsSync(root)) return 0;
  const folders = readdirSync(root).map((name) => {
    const dir = path.join(root, name);
    let bytes = 0, used = 0;
    try {
      for (const f of readdirSync(dir)) bytes += statSync(path.join(dir, f)).size;
      used = statSync(path.join(dir, 'complete')).mtimeMs;
    } catch { /* incomplete: oldest */ }
    return { dir, bytes, used };
  }).sort((a, b) => a.used - b.used);
  let total = folders.reduce((n, f) => n + f.bytes, 0);
  let removed = 0;
  for (const f of folders) {
    if (total <= maxBytes) break;
    if (path.resolve(f.dir) === path.resolve(keep)) continue;
    rmSync(f.dir, { recursive: true, force: true });
    total -= f.bytes;
    removed += f.bytes;
  }
  return removed;
}
