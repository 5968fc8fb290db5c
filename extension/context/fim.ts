// The current file as fill-in-the-middle prefix and suffix, cut to a character budget.
// The prefix is cut at a line boundary that only moves in steps of `lineQuantum` lines, so while the user types the
// prompt's start stays put and the engine's prefix cache keeps hitting.

export interface FimWindow {
  prefix: string;
  suffix: string;
  /** Characters dropped before the prefix / after the suffix. */
  droppedBefore: number;
  droppedAfter: number;
}

export interface FimOptions {
  /** Largest share of the budget the suffix may take when both sides do not fit. */
  suffixShare?: number;
  lineQuantum?: number;
}

export function fimWindow(text: string, offset: number, budgetChars: number, options: FimOptions = {}): FimWindow {
  const suffixShare = options.suffixShare ?? 0.25;
  const quantum = Math.max(1, options.lineQuantum ?? 16);
  const before = text.slice(0, offset);
  const after = text.slice(offset);
  if (before.length + after.length <= budgetChars) return { prefix: before, suffix: after, droppedBefore: 0, droppedAfter: 0 };

  // The suffix gets its share (or less if it is short); the prefix gets the rest.
  const suffixBudget = Math.min(after.length, Math.max(Math.floor(budgetChars * suffixShare), budgetChars - before.length));
  let suffixEnd = suffixBudget;
  if (suffixEnd < after.length) {
    const lastBreak = after.lastIndexOf('\n', suffixEnd - 1);
    suffixEnd = lastBreak >= 0 ? lastBreak + 1 : suffixEnd;
  }
  const suffix = after.slice(0, suffixEnd);
  const prefixBudget = budgetChars - suffix.length;
  if (before.length <= prefixBudget) return { prefix: before, suffix, droppedBefore: 0, droppedAfter: after.length - suffix.length };

  // Line starts of the prefix; keep the earliest quantum-aligned line whose start leaves the prefix within budget.
  const lineStarts = [0];
  for (let i = before.indexOf('\n'); i >= 0; i = before.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  let start = -1;
  for (let line = 0; line < lineStarts.length; line += quantum) {
    if (before.length - lineStarts[line] <= prefixBudget) {
      start = lineStarts[line];
      break;
    }
  }
  // No aligned line fits (a very long last line): fall back to a plain cut.
  if (start < 0) start = before.length - prefixBudget;
  return { prefix: before.slice(start), suffix, droppedBefore: start, droppedAfter: after.length - suffix.length };
}
