// A memoising TokenizerLike for prompt rendering. tokenizers.js runs at roughly 25K tokens/s here, so re-encoding a
// 16K-token repository context on every keystroke would cost more than the prefix cache saves. Text is encoded line by
// line, each line remembered, when the tokenizer provably splits at newlines the same way (probe below: SentencePiece
// BPE whose "\n" is a byte-fallback token never merges across a newline); otherwise whole chunks are remembered.
import type { TokenizerLike } from '../generate/types';

const PROBES = [
  'def f(x):\n    return x + 1\n',
  'a\nb',
  '  \n  x',
  'import { a } from "b";\n\nexport const c = a;\n',
  'é\n中文\n😀 x\n',
  '\n\n\n',
  'x = 1\n\ty = 2\r\nz',
];

function concat(parts: number[][]): number[] {
  const out: number[] = [];
  for (const p of parts) for (const id of p) out.push(id);
  return out;
}

const splitLines = (text: string) => text.split(/(?<=\n)/);

/** Lines longer than this are encoded in word-aligned pieces where that is exact (one line can be megabytes). */
const LONG_LINE = 4096;

/** Probes for splitting inside a line right before " word" (a space after a non-space, then a letter). */
const WORD_PROBES = [
  'hello world foo bar',
  'x; y = z.w(a, b) + c',
  'café naïve 中文 test ünïcode',
  '  indented  words here and there',
  "it's a don't we'll THEY",
  '123 abc 4.5 def 0x1f ghi',
  'a.b c_d e-f g/h i',
];

/** Offsets (after the first) where `line` may be split before " <letter>" preceded by a non-space, ~every `every` chars. */
function wordCuts(line: string, every: number): number[] {
  const cuts: number[] = [];
  let from = every;
  while (from < line.length) {
    const re = /(?<=\S) (?=\p{L})/gu;
    re.lastIndex = from;
    const m = re.exec(line);
    if (!m) break;
    cuts.push(m.index);
    from = m.index + every;
  }
  return cuts;
}

function splitAt(text: string, cuts: number[]): string[] {
  const out: string[] = [];
  let at = 0;
  for (const c of cuts) { out.push(text.slice(at, c)); at = c; }
  out.push(text.slice(at));
  return out;
}

export class CachedTokenizer implements TokenizerLike {
  /** Encoding line by line gives the same ids as encoding the whole text. */
  readonly lineSeparable: boolean;
  /** Encoding a line in pieces cut before " word" gives the same ids as encoding it whole. */
  readonly wordSeparable: boolean;
  private cache = new Map<string, number[]>();
  /** Whole texts warm() has put in the cache (bounded with it: cleared when it is). */
  private readonly warmed = new Set<string>();
  private generation = 0;
  private cachedChars = 0;

  constructor(private readonly inner: TokenizerLike, private readonly maxCachedChars = 32 * 1024 * 1024, private readonly sliceMs = 10) {
    const enc = (s: string) => inner.encode(s, { addSpecialTokens: false });
    this.lineSeparable = PROBES.every((p) => JSON.stringify(enc(p)) === JSON.stringify(concat(splitLines(p).map(enc))));
    this.wordSeparable = this.lineSeparable
      && WORD_PROBES.every((p) => JSON.stringify(enc(p)) === JSON.stringify(concat(splitAt(p, wordCuts(p, 1)).map(enc))));
  }

  get bosId() { return this.inner.bosId; }
  get eosIds() { return this.inner.eosIds; }
  get addBos() { return this.inner.addBos; }
  get chatTemplate() { return this.inner.chatTemplate; }
  get specialTokens() { return this.inner.specialTokens; }
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }) { return this.inner.decode(ids, options); }
  tokenToId(token: string) { return this.inner.tokenToId(token); }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    if (options?.addSpecialTokens) return this.inner.encode(text, options);
    if (!this.lineSeparable) return [...this.piece(text)];
    return concat(this.pieces(text).map((l) => this.piece(l)));
  }

  /** The pieces encode() caches: lines, and long lines cut before words where that is exact. */
  private pieces(text: string): string[] {
    const lines = text.indexOf('\n') < 0 ? [text] : splitLines(text);
    if (!this.wordSeparable || !lines.some((l) => l.length > LONG_LINE)) return lines;
    return lines.flatMap((l) => (l.length > LONG_LINE ? splitAt(l, wordCuts(l, LONG_LINE)) : [l]));
  }

  /**
   * Tokenizes texts into the cache a slice of at most ~`sliceMs` at a time, giving the event loop a turn between
   * slices, so that the first tokenization of a long prompt (up to budget × 32 characters, a second or more) does not
   * hold the stdio reader, cancellations and other requests for longer than a decode step. The synchronous render
   * that follows finds every piece cached. Stops early when `signal` aborts. A tokenizer that is not line-separable
   * (SentencePiece with a ▁ prepended per call) has nothing to slice: its prompts are encoded whole, as before.
   */
  warm(texts: readonly string[], signal?: AbortSignal, sliceMs = this.sliceMs): Promise<void> | undefined {
    if (!this.lineSeparable) return undefined;
    let total = 0;
    for (const t of texts) total += t.length;
    if (total > this.maxCachedChars) return undefined; // could not all stay cached; cannot happen within the request limits
    if (this.cachedChars + total > this.maxCachedChars) this.clear();
    // Texts warmed before (a keystroke resends every unchanged context file) are skipped whole: one hash of each
    // instead of splitting it into lines again, which the render then does anyway.
    const fresh = texts.filter((t) => !this.warmed.has(t));
    const pieces = fresh.map((t) => this.pieces(t)).flat();
    // The common case (a keystroke: almost every line cached) finishes within the first slice and returns nothing to
    // await, so a small request reaches the scheduler synchronously, as it did before slicing.
    const at = this.warmSlice(pieces, 0, sliceMs);
    if (at < pieces.length) return this.warmRest(pieces, at, signal, sliceMs, fresh);
    for (const t of fresh) this.warmed.add(t);
    return undefined;
  }

  /** Tokenizes pieces from `at` until `sliceMs` has passed; returns where it stopped. */
  private warmSlice(pieces: string[], at: number, sliceMs: number): number {
    const t0 = performance.now();
    while (at < pieces.length) {
      this.piece(pieces[at++]);
      if (performance.now() - t0 >= sliceMs) break;
    }
    return at;
  }

  private async warmRest(pieces: string[], at: number, signal: AbortSignal | undefined, sliceMs: number, texts: string[]): Promise<void> {
    const generation = this.generation;
    while (at < pieces.length) {
      await new Promise((r) => setImmediate(r));
      if (signal?.aborted) return;
      at = this.warmSlice(pieces, at, sliceMs);
    }
    // Whole only if the cache was not cleared meanwhile (another request's text can fill it between slices).
    if (this.generation === generation) for (const t of texts) this.warmed.add(t);
  }

  private clear(): void {
    this.cache.clear();
    this.warmed.clear(); // their lines are gone with the cache
    this.cachedChars = 0;
    this.generation++;
  }

  private piece(text: string): number[] {
    let ids = this.cache.get(text);
    if (ids) return ids;
    ids = this.inner.encode(text, { addSpecialTokens: false });
    if (this.cachedChars + text.length > this.maxCachedChars) this.clear();
    this.cache.set(text, ids);
    this.cachedChars += text.length;
    return ids;
  }
}
