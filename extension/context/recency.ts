// Which files the user touched lately (opened, edited, saved), most recent first, and when this session last edited
// each (for the packer's stability order: an unsaved edit is newer than any mtime on disk). Bounded, deterministic.
export class Recency {
  private order: string[] = [];
  private edits = new Map<string, number>();

  constructor(private readonly capacity = 64) {}

  touch(relPath: string): void {
    const i = this.order.indexOf(relPath);
    if (i === 0) return;
    if (i > 0) this.order.splice(i, 1);
    this.order.unshift(relPath);
    if (this.order.length > this.capacity) this.order.length = this.capacity;
  }

  forget(relPath: string): void {
    const i = this.order.indexOf(relPath);
    if (i >= 0) this.order.splice(i, 1);
    this.edits.delete(relPath);
  }

  /** The file's text changed in this session at `atMs` (epoch ms, like an mtime). */
  edited(relPath: string, atMs: number): void {
    this.touch(relPath);
    this.edits.delete(relPath);
    this.edits.set(relPath, atMs);
    if (this.edits.size > this.capacity) this.edits.delete(this.edits.keys().next().value!);
  }

  /** When this session last edited the file (epoch ms), if it did. */
  editedAt(relPath: string): number | undefined {
    return this.edits.get(relPath);
  }

  /** 0 = most recent; undefined = not recently touched. */
  rank(relPath: string): number | undefined {
    const i = this.order.indexOf(relPath);
    return i < 0 ? undefined : i;
  }

  snapshot(): readonly string[] {
    return [...this.order];
  }
}
