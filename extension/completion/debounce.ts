// How long to wait after a keystroke before asking the engine, as pure functions of the keystroke times.
//
// Someone typing faster than the base delay is mid-word: their next key usually comes before the wait ends, and the
// few slower gaps would start a request the next key cancels at once. So the wait grows as their mean gap shrinks
// below the base, by the difference: base + (base - gap), never more than 2 × base. Typing at or slower than the base
// gets the base. A gap over PAUSE_MS is thinking, not typing: it resets the rhythm, so the first key after a pause
// waits the base again. Long gaps under PAUSE_MS are averaged in and can only pull the wait down, never up.

/** The typing rhythm so far: the last keystroke's time and the mean gap between recent keystrokes (ms). */
export interface Rhythm {
  readonly last: number;
  /** Undefined until two keystrokes less than PAUSE_MS apart were seen (or after a pause). */
  readonly meanGap: number | undefined;
}

export const PAUSE_MS = 2000;

export const noRhythm: Rhythm = { last: -Infinity, meanGap: undefined };

/** The rhythm after a keystroke at `now` (ms). */
export function nextRhythm(r: Rhythm, now: number): Rhythm {
  const gap = now - r.last;
  if (!(gap > 0)) return { last: Math.max(r.last, now), meanGap: r.meanGap }; // same millisecond (or a clock step back)
  if (gap > PAUSE_MS) return { last: now, meanGap: undefined };
  return { last: now, meanGap: r.meanGap === undefined ? gap : 0.7 * r.meanGap + 0.3 * gap };
}

/** The rhythm after keystrokes at `times` (ms, in order), from none. */
export function rhythmOf(times: readonly number[]): Rhythm {
  return times.reduce(nextRhythm, noRhythm);
}

/** The wait: `baseMs` plus how much faster than it the user types, so always within [baseMs, 2 × baseMs]. */
export function debounceDelay(baseMs: number, meanGap: number | undefined, adaptive = true): number {
  const base = Math.max(0, baseMs);
  if (!adaptive || meanGap === undefined) return base;
  return base + Math.min(base, Math.max(0, Math.round(base - meanGap)));
}
