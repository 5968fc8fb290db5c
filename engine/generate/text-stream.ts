// Generated ids → streamed text. Two jobs: never emit half a UTF-8 character (byte-fallback tokens carry single bytes)
// and never emit text that may turn out to be the start of a stop string.
import type { TokenizerLike } from './types';

/**
 * Incremental detokenizer (the prefix/read-offset scheme of text-generation-inference): decode a short window that
 * starts a few tokens back, and emit only what it adds beyond the window's already-emitted part — so tokenizer
 * decoders that strip a leading space or merge bytes see the same context as a full decode. Text that ends in U+FFFD
 * (an incomplete byte sequence) is held until the next token completes it.
 */
export class StreamDecoder {
  private readonly ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(private readonly tokenizer: TokenizerLike, context: readonly number[] = [], contextTokens = 4) {
    this.ids = context.slice(-contextTokens);
    this.readOffset = this.ids.length;
  }

  /** Add one generated token; returns newly printable text ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decode(this.prefixOffset, this.readOffset);
    const newText = this.decode(this.prefixOffset, this.ids.length);
    if (newText.length > prefixText.length && !newText.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return newText.slice(prefixText.length);
    }
    return '';
  }

  /** Whatever is still held back (an incomplete character at the very end comes out as U+FFFD). */
  flush(): string {
    const prefixText = this.decode(this.prefixOffset, this.readOffset);
    const newText = this.decode(this.prefixOffset, this.ids.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return newText.length > prefixText.length ? newText.slice(prefixText.length) : '';
  }

  private decode(from: number, to: number): string {
    return this.tokenizer.decode(this.ids.slice(from, to), { skipSpecialTokens: false });
  }
}

/**
 * Cuts the text stream at the first stop string. Text that could still become a stop string is held back until it
 * cannot; emitted text therefore never contains (part of) a stop string.
 */
export class StopMatcher {
  private held = '';
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Feed new text; returns the part that is safe to emit. After a stop, `stopped` is true and nothing more comes. */
  push(text: string): string {
    if (this.stopped) return '';
    this.held += text;
    let cut = -1;
    for (const s of this.stops) {
      if (!s) continue;
      const at = this.held.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.held.slice(0, cut);
      this.held = '';
      return out;
    }
    // Hold the longest suffix that is a proper prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, this.held.length); len > keep; len--) {
        if (this.held.endsWith(s.slice(0, len))) { keep = len; break; }
      }
    }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** End of generation: release anything held (it never became a stop string). */
  flush(): string {
    const out = this.stopped ? '' : this.held;
    this.held = '';
    return out;
  }
}
