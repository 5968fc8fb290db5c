// Ranks the non-imported files for the context: recently touched files first, then files near the current one in
// the folder tree. Deterministic (ties break by path) so the same inputs give the same prompt prefix.

/** Folder steps from a's folder to b's folder: up to the common ancestor, then down. Siblings are 0. */
export function pathDistance(a: string, b: string): number {
  const da = a.split('/').slice(0, -1);
  const db = b.split('/').slice(0, -1);
  let common = 0;
  while (common < da.length && common < db.length && da[common] === db[common]) common++;
  return da.length - common + (db.length - common);
}

/** Same base name, different extension (foo.ts ↔ foo.test.ts ↔ test_foo.py): a strong hint of relatedness. */
function stem(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1).toLowerCase();
  return base.replace(/^test_/, '').replace(/(\.(test|spec))?\.[^.]+$/, '').replace(/_test$/, '');
}

export interface RankInput {
  current: string;
  candidates: readonly string[];
  /** 0 = most recently touched; undefined = not recent. */
  recency: (path: string) => number | undefined;
}

/** File type family, so code in the current file's language ranks above config and docs at the same distance. */
function family(p: string): string {
  const ext = p.slice(p.lastIndexOf('/') + 1).split('.').slice(1).pop()?.toLowerCase() ?? '';
  if (/^(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/.test(ext)) return 'js';
  if (/^(py|pyi)$/.test(ext)) return 'py';
  if (/^(c|h|cc|cpp|cxx|hpp|hh)$/.test(ext)) return 'c';
  return ext;
}

/**
 * Score = recency (1 for the most recent file, decaying as 1/(1+rank)) × 3 + proximity 1/(1+distance)
 * + 0.5 for a shared stem + 0.3 for the same language family. Recency dominates: a file the user just looked at
 * beats a quiet neighbour.
 */
export function scoreFile(current: string, candidate: string, recencyRank: number | undefined): number {
  const recency = recencyRank === undefined ? 0 : 1 / (1 + recencyRank);
  const proximity = 1 / (1 + pathDistance(current, candidate));
  const related = stem(current) === stem(candidate) ? 0.5 : 0;
  const sameLanguage = family(current) !== '' && family(current) === family(candidate) ? 0.3 : 0;
  return 3 * recency + proximity + related + sameLanguage;
}

export function rankFiles({ current, candidates, recency }: RankInput): string[] {
  return candidates
    .filter((c) => c !== current)
    .map((c) => ({ c, s: scoreFile(current, c, recency(c)) }))
    .sort((x, y) => y.s - x.s || (x.c < y.c ? -1 : x.c > y.c ? 1 : 0))
    .map((x) => x.c);
}

/**
 * Change times are compared in slots of this size (fixed slots of epoch time, not relative to now): files checked
 * out or saved together keep their importance order, so a fresh clone is laid out exactly as by importance, and only
 * files changed later move behind them.
 */
export const CHANGE_QUANTUM_MS = 10 * 60 * 1000;

/**
 * The prompt order of the selected context files: the first `fixed` stay where they are (kept from the epoch being
 * refreshed, so the prompt stays byte-identical up to the first changed file); after them the current file's imports,
 * then the rest, each group from the file unchanged longest to the one changed last (`lastChange`: mtime or this
 * session's last edit, in CHANGE_QUANTUM_MS slots). An edit then invalidates the engine's cache only from the edited file on, and the files most
 * likely to change again sit at the end. Ties keep the selection order (importance); the order depends only on the
 * inputs, never on the clock, so a restart with the same files and mtimes renders the same prompt.
 */
export function stabilityOrder(count: number, fixed: number, isImport: (i: number) => boolean, lastChange: (i: number) => number): number[] {
  const head = Array.from({ length: Math.min(fixed, count) }, (_, i) => i);
  const rest = Array.from({ length: Math.max(0, count - fixed) }, (_, i) => fixed + i)
    .map((i) => ({ i, group: isImport(i) ? 0 : 1, t: Math.floor(lastChange(i) / CHANGE_QUANTUM_MS) }))
    .sort((a, b) => a.group - b.group || a.t - b.t || a.i - b.i)
    .map((x) => x.i);
  return [...head, ...rest];
}
