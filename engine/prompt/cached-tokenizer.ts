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

export class CachedTokenizer implements TokenizerLike {
  /** Encoding line by line gives the same ids as encoding the whole text. */
  readonly lineSeparable: boolean;
  private cache = new Map<string, number[]>();
  private cachedChars = 0;

  constructor(private readonly inner: TokenizerLike, private readonly maxCachedChars = 32 * 1024 * 1024) {
    const enc = (s: string) => inner.encode(s, { addSpecialTokens: false });
    this.lineSeparable = PROBES.every((p) => JSON.stringify(enc(p)) === JSON.stringify(concat(splitLines(p).map(enc))));
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
    if (!this.lineSeparable || text.indexOf('\n') < 0) return [...this.piece(text)];
    return concat(splitLines(text).map((l) => this.piece(l)));
  }

  private piece(text: string): number[] {
    let ids = this.cache.get(text);
    if (ids) return ids;
    ids = this.inner.encode(text, { addSpecialTokens: false });
    if (this.cachedChars + text.length > this.maxCachedChars) { this.cache.clear(); this.cachedChars = 0; }
    this.cache.set(text, ids);
    this.cachedChars += text.length;
    return ids;
  }
}
