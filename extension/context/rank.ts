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


// The prompt order (imports first, then least recently changed first) lives with the eval that measures it.
export { CHANGE_QUANTUM_MS, stabilityOrder } from '../../engine/code/order';
