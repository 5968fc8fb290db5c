// Which files the user touched lately (opened, edited, saved), most recent first. Bounded, deterministic.
export class Recency {
  private order: string[] = [];

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
