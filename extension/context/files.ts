// Reads workspace files for the prompt: unsaved editor text wins over disk, binary and secret content is refused,
// and texts are cached by (size, mtime) so re-packing after a save re-reads only what changed.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeText } from './decode';
import { looksLikeSecret } from './secrets';
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

  has(relPath: string): boolean {
    return this.byPath.has(relPath);
  }

  /** The file's text, or undefined if it is not a context file (ignored, binary, secret, huge, gone). */
  async read(relPath: string): Promise<string | undefined> {
    const entry = this.byPath.get(relPath);
    if (!entry) return undefined;
    const dirty = this.overlay.get(relPath);
    if (dirty !== undefined) return looksLikeSecret(dirty) ? undefined : dirty;
    const hit = this.cache.get(relPath);
    if (hit && hit.size === entry.size && hit.mtimeMs === entry.mtimeMs) return hit.text;
    let text: string | undefined;
    try {
      const bytes = await fs.readFile(path.join(this.root, relPath));
      text = decodeText(bytes);
      if (text !== undefined && looksLikeSecret(text)) text = undefined;
    } catch {
      text = undefined;
    }
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
