// Cheap token estimates for budgeting. The engine enforces the exact budget (and reports truncatedTokens); the
// packer only needs to land close, and under rather than over, so the front of the context is not cut.

/** Characters per token; learned from the engine's real counts (promptTokens per prompt character). */
export class TokenEstimator {
  constructor(private charsPerToken = 3.5) {}

  estimate(text: string | number): number {
    const chars = typeof text === 'number' ? text : text.length;
    return Math.ceil(chars / this.charsPerToken);
  }

  chars(tokens: number): number {
    return Math.floor(tokens * this.charsPerToken);
  }

  /** Starts over from a prior (e.g. by the model's vocabulary size: small vocabularies spend more tokens per char). */
  reset(charsPerToken: number): void {
    this.charsPerToken = charsPerToken;
  }

  get ratio(): number {
    return this.charsPerToken;
  }

  /**
   * Folds in one observation (a prompt of `chars` characters was `tokens` tokens). Moves slowly (EMA) and is clamped
   * to sane bounds; the packer reads the ratio only when it re-ranks, so the prompt does not change between keys.
   */
  observe(chars: number, tokens: number): void {
    if (chars < 200 || tokens <= 0) return;
    const r = Math.min(6, Math.max(1.5, chars / tokens));
    this.charsPerToken = 0.7 * this.charsPerToken + 0.3 * r;
  }
}

/**
 * A prior before the engine has reported any counts: small vocabularies (demo models) spend a token on every couple
 * of characters of code; 32K-150K vocabularies (Qwen, StarCoder, Llama 3) about 3.5.
 */
export function initialCharsPerToken(vocabSize: number): number {
  return vocabSize <= 4096 ? 2.2 : vocabSize <= 32_768 ? 3 : 3.5;
}
