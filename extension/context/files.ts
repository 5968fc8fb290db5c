// Reads workspace files for the prompt: unsaved editor text wins over disk, binary content and key material are
// refused, tokens are masked (secrets.ts), and texts are cached by (size, mtime) so re-packing after a save re-reads
// only what changed. A file is read only if it is, at the moment of reading, a regular file with one link whose real
// folder is inside the workspace (the scan checked that too, but a file can be swapped for a link since).
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeText } from './decode';
import { redactSecrets } from './secrets';

/** The bytes of `rel` under `root` if it is a plain file of the workspace, at most maxBytes long; else undefined. */
export async function readWorkspaceFile(root: string, rel: string, maxBytes: number): Promise<Buffer | undefined> {
  const abs = path.join(root, rel);
  const [realRoot, realDir] = await Promise.all([fs.realpath(root), fs.realpath(path.dirname(abs))]).catch(() => [undefined, undefined]);
  if (!realRoot || !realDir || (realDir !== realRoot && !realDir.startsWith(realRoot + path.sep))) return undefined;
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(abs, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
    const st = await fh.stat();
    if (!st.isFile() || st.nlink > 1 || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    return buf.subarray(0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}
import type { ScannedFile } from './scan';

export class WorkspaceFiles {
  private files: ScannedFile[] = [];
  private byPath = new Map<string, ScannedFile>();
  private cache = new Map<string, { size: number; mtimeMs: number; text: string | undefined }>();
  /** Text of open documents with unsaved changes, by workspace path (set by the editor adapter). */
  readonly overlay = new Map<string, string>();

  constructor(readonly root: string, readonly maxFileBytes = 256 * 1024) {}

  setFiles(files: ScannedFile[]): void {
    this.files = files;
    this.byPath = new Map(files.map((f) => [f.path, f]));
  }

  list(): readonly ScannedFile[] {
    return this.files;
  }

  /** Size on disk in bytes, as scanned. */
  size(relPath: string): number | undefined {
    return this.byPath.get(relPath)?.size;
  }

  /** Last modification time on disk (epoch ms), as scanned or refreshed after a save. */
  mtime(relPath: string): number | undefined {
    return this.byPath.get(relPath)?.mtimeMs;
  }

  has(relPath: string): boolean {
    return this.byPath.has(relPath);
  }

  /** The file's text, or undefined if it is not a context file (ignored, binary, secret, huge, gone). */
  async read(relPath: string): Promise<string | undefined> {
    const entry = this.byPath.get(relPath);
    if (!entry) return undefined;
    const dirty = this.overlay.get(relPath);
    if (dirty !== undefined) return redactSecrets(dirty);
    const hit = this.cache.get(relPath);
    if (hit && hit.size === entry.size && hit.mtimeMs === entry.mtimeMs) return hit.text;
    let text: string | undefined;
    const bytes = await readWorkspaceFile(this.root, relPath, this.maxFileBytes);
    text = bytes && decodeText(bytes);
    if (text !== undefined) text = redactSecrets(text);
    this.cache.set(relPath, { size: entry.size, mtimeMs: entry.mtimeMs, text });
    return text;
  }

  /** Marks a file as changed on disk (after a save): its stat is refreshed so the next read sees the new text. */
  async refresh(relPath: string): Promise<void> {
    const entry = this.byPath.get(relPath);
    if (!entry) return;
    try {
      const st = await fs.stat(path.join(this.root, relPath));
      if (st.size > this.maxFileBytes) throw new Error('now too large');
      entry.size = st.size;
      entry.mtimeMs = st.mtimeMs;
    } catch {
      this.byPath.delete(relPath);
      this.files = this.files.filter((f) => f.path !== relPath);
    }
  }
}
