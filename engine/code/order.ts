// The context files' prompt order for prefix-cache stability (used by the extension's packer and by the eval that
// measures it): pure, deterministic, no clock.

/**
 * Change times are compared in slots of this size (fixed slots of epoch time, not relative to now): files checked
 * out or saved together keep their importance order, so a fresh clone is laid out exactly as by importance, and only
 * files changed later move behind them.
 */
export const CHANGE_QUANTUM_MS = 10 * 60 * 1000;

/**
 * The prompt order of `count` selected context files (indices in selection order = importance): the first `fixed`
 * stay where they are (kept from the epoch being refreshed, so the prompt stays byte-identical up to the first
 * changed file); after them the current file's imports, then the rest, each group from the file unchanged longest to
 * the one changed last (`lastChange`: mtime or this session's last edit, in CHANGE_QUANTUM_MS slots). An edit then
 * invalidates the engine's cache only from the edited file on, and the files most likely to change again sit at the
 * end. Ties keep the selection order; the order depends only on the inputs, so a restart with the same files and
 * mtimes renders the same prompt.
 */
export function stabilityOrder(count: number, fixed: number, isImport: (i: number) => boolean, lastChange: (i: number) => number): number[] {
  const head = Array.from({ length: Math.min(fixed, count) }, (_, i) => i);
  const rest = Array.from({ length: Math.max(0, count - fixed) }, (_, i) => fixed + i)
    .map((i) => ({ i, group: isImport(i) ? 0 : 1, t: Math.floor(lastChange(i) / CHANGE_QUANTUM_MS) }))
    .sort((a, b) => a.group - b.group || a.t - b.t || a.i - b.i)
    .map((x) => x.i);
  return [...head, ...rest];
}
