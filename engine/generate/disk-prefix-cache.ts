// The prefix cache's disk tier: sequences worth keeping (a long prompt's exact prefix) are written to
// `<cacheDir>/prefix/` as snapshots (engine/attention/snapshot.ts) and read back when a prompt shares a longer prefix
// with a file than with anything in RAM — after an engine or VS Code restart, the first completion reuses the
// repository's KV cache and index instead of prefilling it again.
//
// - Names: `<model key>-<settings key>-<tokens hash>.snoutkv`. The model key hashes the model's identity and the
//   engine and format versions, so another model's files (another window, another model) are never opened, only
//   counted against the byte cap; a file under our name whose header disagrees is deleted, with the reason logged.
// - Writes: on release, only when the sequence holds at least minTokens exact tokens of which at least minTokens and
//   an eighth are on no file yet (typing at the end of a prompt writes rarely; an edit in an early file or a longer
//   index does).
//   One write at a time, in chunks of CHUNK bytes with the event loop free between them, into a temp file with a
//   unique name, renamed into place when complete: two engines on one folder never see each other's partial files,
//   and the last rename wins with a whole file. The chunks are views of the live sequence: if a request takes the
//   sequence before the write is done, the rest is copied first (when at most DETACH_COPY_MAX bytes) or the write is
//   dropped and tried again at a later release.
// - Reads: a folder index (token ids of our files, read at open and kept up to date) picks the file with the longest
//   common prefix; the read verifies sizes and checksums and any failure deletes the file (logged), never throws.
// - Cap: past maxBytes, least recently used files go first (mtime, touched on every use), whoever wrote them.
// - A folder that cannot be written (read-only, full, no permission) turns the tier off with one log line; the RAM
//   cache goes on alone.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import path from 'node:path';
import {
  SNAPSHOT_VERSION, SnapshotAborted, SnapshotError, crc32, encodeHead, materialize, restoreSnapshot, restoreSnapshotAsync, readTokens, segmentBytes,
  shapingConfig, snapshotLength, snapshotParts, type Segment, type SnapshotExpect,
} from '../attention/snapshot';
import { Sequence as AttentionSequence } from '../attention/sequence';
import type { AttentionConfig, AttentionShape } from '../attention/types';
import { commonPrefix, ModelSequence } from './sequence';
import type { Sequence } from './types';

/**
 * Sequences under this many exact tokens are never written. Low, because what a token costs to prefill grows with the
 * model (a 1.5B model takes 5-20 s for 1024 tokens here, tiny-coder 0.3 s).
 */
export const DISK_MIN_TOKENS = 256;
/**
 * A sequence is written when at least 1/NEW_PART of it (and DISK_MIN_TOKENS) is on no file yet, and a file is read
 * when it adds at least 1/NEW_PART of its length (and DISK_MIN_TOKENS) to what RAM holds: writing and reading cost in
 * proportion to the whole file, and reading a token back is 20× (tiny-coder) to 30× (a 1.5B shape) cheaper than
 * prefilling it (bench-results/restart.md). Typing at the end of a 32K prompt writes again after ~4K new tokens.
 */
export const NEW_PART = 8;
export const DEFAULT_DISK_MAX_BYTES = 4 * 2 ** 30;
/** Bytes written (and checksummed) per event-loop turn: well under a decode step (bench restart reports the longest turn). */
const CHUNK = 1 << 20;
/** A request taking a sequence mid-write copies at most this much of what is left (else the write is dropped). */
const DETACH_COPY_MAX = 64 << 20;
/** Files whose token ids the index keeps (newest first); older ones are only counted against the cap. */
const MAX_INDEXED = 64;
/** Temp files older than this belong to no live writer (a killed engine's); they are deleted. */
const STALE_TMP_MS = 10 * 60_000;
const EXT = '.snoutkv';

export interface DiskModel {
  /** The model and how its K/V are computed (load.ts). */
  readonly identity: unknown;
  readonly shape: AttentionShape;
  /** The full attention config a sequence made with these overrides has. */
  attentionFor(attention?: Partial<AttentionConfig>): AttentionConfig;
}

export interface DiskOptions {
  maxBytes?: number;
  minTokens?: number;
  /** Most bytes a request taking a sequence mid-write copies to let the write finish (tests lower it). */
  detachCopyMaxBytes?: number;
  log?: (line: string) => void;
}

interface IndexEntry {
  file: string;
  settings: string;
  tokens: Int32Array;
}

interface Write {
  seq: Sequence;
  /** Segments still to write (views of live memory, or codes still to make from live tables, until detached). */
  segments: Segment[];
  index: number;
  offset: number;
  cancelled: boolean;
  done: Promise<void>;
}

const hash = (x: unknown, len: number) => createHash('sha256').update(typeof x === 'string' ? x : JSON.stringify(x)).digest('hex').slice(0, len);
const ioError = (e: unknown) => ['ENOSPC', 'EACCES', 'EROFS', 'EPERM', 'EDQUOT'].includes((e as NodeJS.ErrnoException)?.code ?? '');

export class DiskPrefixCache {
  readonly dir: string;
  private readonly modelKey: string;
  private readonly maxBytes: number;
  readonly minTokens: number;
  private readonly detachCopyMax: number;
  private readonly log: (line: string) => void;
  private entries: IndexEntry[] = [];
  /** False once the folder failed us (read-only, full): RAM only from then on. */
  private writable = true;
  private writing: Write | null = null;
  /** Stats for tests and benches: the last write's time and size. */
  lastWrite: { ms: number; bytes: number; tokens: number; maxChunkMs: number } | null = null;

  constructor(cacheDir: string, private readonly model: DiskModel, options: DiskOptions = {}) {
    this.dir = path.join(cacheDir, 'prefix');
    this.modelKey = hash({ v: SNAPSHOT_VERSION, identity: model.identity, shape: model.shape }, 16);
    this.maxBytes = options.maxBytes ?? DEFAULT_DISK_MAX_BYTES;
    this.minTokens = Math.max(1, options.minTokens ?? DISK_MIN_TOKENS);
    this.detachCopyMax = options.detachCopyMaxBytes ?? DETACH_COPY_MAX;
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'));
    this.scan();
  }

  private settingsKey(config: AttentionConfig): string {
    return hash(shapingConfig(config), 8);
  }

  private expect(config: AttentionConfig): SnapshotExpect {
    return { identity: this.model.identity, config, shape: this.model.shape };
  }

  /** Reads the token ids of our newest files (bounded) and deletes stale temp files. */
  private scan(): void {
    let names: string[];
    try { names = readdirSync(this.dir); } catch { return; }
    const now = Date.now();
    const ours: { file: string; mtime: number }[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        if (name.endsWith('.tmp')) { if (now - statSync(file).mtimeMs > STALE_TMP_MS) rmSync(file, { force: true }); continue; }
        if (name.startsWith(this.modelKey + '-') && name.endsWith(EXT)) ours.push({ file, mtime: statSync(file).mtimeMs });
      } catch { /* gone meanwhile (another engine) */ }
    }
    ours.sort((a, b) => b.mtime - a.mtime);
    for (const { file } of ours.slice(0, MAX_INDEXED)) {
      try {
        const { header, tokens } = readTokens(file, { identity: this.model.identity, shape: this.model.shape });
        this.entries.push({ file, settings: this.settingsKey(header.config as AttentionConfig), tokens });
      } catch (e) {
        this.drop(file, e);
      }
    }
  }

  /**
   * The file sharing the longest prefix with `ids` under these settings, if it adds enough to `than` (what RAM offers)
   * to pay for reading it (NEW_PART).
   */
  best(ids: readonly number[], attention: Partial<AttentionConfig> | undefined, than: number): { file: string; common: number } | null {
    if (this.entries.length === 0 || ids.length - than < this.minTokens) return null;
    const settings = this.settingsKey(this.model.attentionFor(attention));
    let best: IndexEntry | null = null, bestLen = than;
    for (const e of this.entries) {
      if (e.settings !== settings) continue;
      const n = commonPrefix(e.tokens as unknown as number[], ids);
      if (n > bestLen && n - than >= Math.max(this.minTokens, e.tokens.length / NEW_PART)) { best = e; bestLen = n; }
    }
    return best ? { file: best.file, common: bestLen } : null;
  }

  /**
   * Restores `file` into `seq` (a fresh sequence made with `attention`); false (file deleted, reason logged) when it
   * cannot be used.
   */
  load(file: string, seq: Sequence, attention?: Partial<AttentionConfig>): boolean {
    if (!(seq instanceof ModelSequence) || !(seq.attention instanceof AttentionSequence)) return false;
    try {
      const tokens = restoreSnapshot(file, seq.attention, this.expect(this.model.attentionFor(attention)));
      return this.loaded(file, seq, tokens);
    } catch (e) {
      this.drop(file, e);
      return false;
    }
  }

  /** load(), a slice at a time (the event loop keeps turning); false also when `signal` stopped it (file kept). */
  async loadAsync(file: string, seq: Sequence, attention?: Partial<AttentionConfig>, signal?: AbortSignal): Promise<boolean> {
    if (!(seq instanceof ModelSequence) || !(seq.attention instanceof AttentionSequence)) return false;
    try {
      const tokens = await restoreSnapshotAsync(file, seq.attention, this.expect(this.model.attentionFor(attention)), signal);
      return this.loaded(file, seq, tokens);
    } catch (e) {
      if (!(e instanceof SnapshotAborted)) this.drop(file, e);
      return false;
    }
  }

  private loaded(file: string, seq: ModelSequence, tokens: Int32Array): boolean {
    seq.tokens = Array.from(tokens);
    try { const now = new Date(); utimesSync(file, now, now); } catch { /* LRU order only */ }
    return true;
  }

  /** Deletes an unusable file and forgets it, logging why. */
  private drop(file: string, e: unknown): void {
    const why = e instanceof SnapshotError ? e.message : (e as NodeJS.ErrnoException)?.code === 'ENOENT' ? null : String((e as Error)?.message ?? e);
    this.entries = this.entries.filter((x) => x.file !== file);
    if (why === null) return; // deleted by another engine meanwhile: nothing wrong
    this.log(`snout: prefix cache file ${path.basename(file)} unusable (${why}); deleted, it will be rebuilt`);
    try { rmSync(file, { force: true }); } catch { /* read-only: it stays unused */ }
  }

  /**
   * After a request released `seq`: write its exact prefix if it is long enough and not on disk already. Returns at
   * once; the write goes on in chunks (flush() waits for it).
   */
  persist(seq: Sequence): void {
    if (!this.writable || this.writing) return;
    if (!(seq instanceof ModelSequence) || seq.isDisposed || !(seq.attention instanceof AttentionSequence)) return;
    const att = seq.attention, n = snapshotLength(att, seq.tokens.length);
    if (n < this.minTokens) return;
    const config = att.persistState().config as AttentionConfig;
    const settings = this.settingsKey(config);
    let covered = 0;
    for (const e of this.entries) if (e.settings === settings) covered = Math.max(covered, commonPrefix(e.tokens as unknown as number[], seq.tokens));
    if (n - Math.min(covered, n) < Math.max(this.minTokens, n / NEW_PART)) return;
    const tokens = seq.tokens.slice(0, n);
    const file = path.join(this.dir, `${this.modelKey}-${settings}-${hash(tokens.join(','), 16)}${EXT}`);
    const { header, segments } = snapshotParts(att, tokens, n, this.model.identity);
    const w: Write = { seq, segments, index: 0, offset: 0, cancelled: false, done: Promise.resolve() };
    this.writing = w;
    w.done = this.write(w, file, header, tokens).finally(() => { if (this.writing === w) this.writing = null; });
  }

  private async write(w: Write, file: string, header: ReturnType<typeof snapshotParts>['header'], tokens: number[]): Promise<void> {
    const t0 = performance.now();
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    let fd = -1;
    try {
      mkdirSync(this.dir, { recursive: true });
      const json = Buffer.byteLength(JSON.stringify(header));
      const payloadAt = 32 + json;
      fd = openSync(tmp, 'wx');
      let pos = payloadAt, crc = 0, maxChunkMs = 0, turn = performance.now();
      for (; w.index < w.segments.length; w.index++, w.offset = 0) {
        if (w.cancelled) throw new Error('cancelled'); // before making codes from tables a request now owns
        w.segments[w.index] = materialize(w.segments[w.index]);
        while (w.offset < segmentBytes(w.segments[w.index])) {
          if (w.cancelled) throw new Error('cancelled');
          // Looked up again each turn: detach() may have swapped the live view for a copy meanwhile.
          const seg = w.segments[w.index] as Uint8Array;
          const part = seg.subarray(w.offset, Math.min(seg.length, w.offset + CHUNK));
          crc = crc32(part, crc);
          for (let at = 0; at < part.length;) at += writeSync(fd, part, at, part.length - at, pos + at);
          pos += part.length;
          w.offset += part.length;
          maxChunkMs = Math.max(maxChunkMs, performance.now() - turn);
          await new Promise<void>((r) => setImmediate(r)); // requests run between chunks
          turn = performance.now();
        }
      }
      const head = encodeHead(header, pos - payloadAt, crc);
      if (head.length !== payloadAt) throw new Error('header length changed while writing');
      for (let at = 0; at < head.length;) at += writeSync(fd, head, at, head.length - at, at);
      closeSync(fd);
      fd = -1;
      renameSync(tmp, file);
      this.entries = this.entries.filter((e) => e.file !== file);
      this.entries.unshift({ file, settings: this.settingsKey(header.config as AttentionConfig), tokens: Int32Array.from(tokens) });
      this.forgetSubsumed(file);
      this.lastWrite = { ms: performance.now() - t0, bytes: pos, tokens: tokens.length, maxChunkMs };
      this.trim(file);
    } catch (e) {
      if (fd >= 0) try { closeSync(fd); } catch { /* already failing */ }
      try { rmSync(tmp, { force: true }); } catch { /* read-only */ }
      if ((e as Error)?.message === 'cancelled') return;
      this.writable = false;
      const code = (e as NodeJS.ErrnoException)?.code;
      this.log(`snout: cannot write the prefix cache in ${this.dir} (${ioError(e) ? code : (e as Error)?.message ?? e}); using the RAM cache only`);
    } finally {
      w.segments = [];
    }
  }

  /** Files whose tokens are a prefix of `file`'s (same settings) hold nothing it lacks: deleted. */
  private forgetSubsumed(file: string): void {
    const top = this.entries.find((e) => e.file === file)!;
    for (const e of this.entries.slice()) {
      if (e === top || e.settings !== top.settings || e.tokens.length > top.tokens.length) continue;
      if (commonPrefix(e.tokens as unknown as number[], top.tokens as unknown as number[]) === e.tokens.length) {
        this.entries = this.entries.filter((x) => x !== e);
        try { rmSync(e.file, { force: true }); } catch { /* best effort */ }
      }
    }
  }

  /**
   * A request is taking `seq`: a write still reading its memory must not see it change. The rest is copied now when
   * small, else the write is dropped (a later release writes it again).
   */
  detach(seq: Sequence): void {
    const w = this.writing;
    if (!w || w.seq !== seq || w.cancelled) return;
    let rest = 0;
    for (let i = w.index; i < w.segments.length; i++) rest += segmentBytes(w.segments[i]) - (i === w.index ? w.offset : 0);
    if (rest > this.detachCopyMax) { w.cancelled = true; return; }
    for (let i = w.index; i < w.segments.length; i++) {
      const s = w.segments[i];
      w.segments[i] = s instanceof Uint8Array ? s.slice() : s.make(); // made codes are already a private copy
    }
  }

  /** Waits for the write in progress, if any (tests, benches, shutdown). */
  async flush(): Promise<void> {
    await this.writing?.done;
  }

  /** Deletes least recently used files (any model's) until the folder holds at most maxBytes; keeps `keep`. */
  private trim(keep: string): void {
    let files: { file: string; bytes: number; used: number }[] = [];
    try {
      for (const name of readdirSync(this.dir)) {
        if (!name.endsWith(EXT)) continue;
        const file = path.join(this.dir, name);
        try { const st = statSync(file); files.push({ file, bytes: st.size, used: st.mtimeMs }); } catch { /* gone */ }
      }
    } catch { return; }
    files = files.sort((a, b) => a.used - b.used);
    let total = files.reduce((s, f) => s + f.bytes, 0);
    for (const f of files) {
      if (total <= this.maxBytes) break;
      if (f.file === keep) continue;
      try { rmSync(f.file, { force: true }); } catch { continue; }
      total -= f.bytes;
      this.entries = this.entries.filter((e) => e.file !== f.file);
    }
  }

  /** Bytes of snapshot files in the folder (tests). */
  folderBytes(): number {
    let total = 0;
    try { for (const n of readdirSync(this.dir)) if (n.endsWith(EXT)) total += statSync(path.join(this.dir, n)).size; } catch { /* none */ }
    return total;
  }
}
