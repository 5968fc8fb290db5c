// How long to wait after a keystroke before asking the engine. Fast typists are mid-word most of the time, so the
// wait grows with typing speed (a request per keystroke would only be cancelled by the next one); after a pause,
// the base delay applies.

export class TypingRhythm {
  private last = -Infinity;
  private ema: number | undefined;

  /** Records a keystroke at time `now` (ms). Pauses over 2 s are thinking, not typing, and are not averaged in. */
  keystroke(now: number): void {
    const gap = now - this.last;
    this.last = now;
    if (gap > 2000 || gap <= 0) return;
    this.ema = this.ema === undefined ? gap : 0.7 * this.ema + 0.3 * gap;
  }

  /** Mean gap between recent keystrokes, ms (undefined until two keystrokes were seen). */
  get meanGap(): number | undefined {
    return this.ema;
  }
}

/**
 * The delay: about two of the user's own keystroke gaps (a pause that long means they stopped), never below the base
 * and never above 3 × base. Without a rhythm yet (or adaptive off) it is the base.
 */
export function debounceDelay(baseMs: number, meanGap: number | undefined, adaptive = true): number {
  if (!adaptive || meanGap === undefined) return baseMs;
  return Math.min(3 * baseMs, Math.max(baseMs, Math.round(2 * meanGap)));
}
