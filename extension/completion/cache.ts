// Recent completions, so typing through a suggestion reuses it: when the text typed since a completion was made is a
// prefix of that completion, the remainder is offered again without asking the engine.

interface Entry {
  doc: string;
  /** Length of the text before the cursor when the completion was made. */
  offset: number;
  /** The last `anchor` characters before the cursor then (enough to tell positions apart cheaply). */
  before: string;
  /** The first characters after the cursor then: typing must not have changed what follows. */
  after: string;
  completion: string;
}

export class CompletionCache {
  private entries: Entry[] = [];

  constructor(private readonly capacity = 64, private readonly anchor = 256) {}

  /** Remembers `completion` for the cursor at `before.length` in document `doc`. */
  put(doc: string, before: string, after: string, completion: string): void {
    if (!completion) return;
    const e: Entry = { doc, offset: before.length, before: before.slice(-this.anchor), after: after.slice(0, this.anchor), completion };
    this.entries = [e, ...this.entries.filter((x) => !(x.doc === doc && x.offset === e.offset && x.before === e.before))];
    if (this.entries.length > this.capacity) this.entries.length = this.capacity;
  }

  /**
   * The rest of a cached completion if the text before the cursor is (that completion's context + a prefix of the
   * completion); the most recent match wins and is moved to the front.
   */
  get(doc: string, before: string, after: string): string | undefined {
    const afterKey = after.slice(0, this.anchor);
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.doc !== doc || before.length < e.offset || e.after !== afterKey) continue;
      const typed = before.slice(e.offset);
      if (typed.length >= e.completion.length || !e.completion.startsWith(typed)) continue;
      if (before.slice(e.offset - e.before.length, e.offset) !== e.before) continue;
      this.entries.splice(i, 1);
      this.entries.unshift(e);
      return e.completion.slice(typed.length);
    }
    return undefined;
  }

  clear(doc?: string): void {
    this.entries = doc === undefined ? [] : this.entries.filter((e) => e.doc !== doc);
  }

  get size(): number {
    return this.entries.length;
  }
}
