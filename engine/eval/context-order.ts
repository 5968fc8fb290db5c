// Does laying the context files out for prefix-cache stability (engine/code/order.ts) cost completion quality?
// RepoBench items carry no edit history, so one is simulated per repository: each file is "changed later" with
// probability `recent` (in a random slot of its own), the rest share one old checkout slot; the item's snippets are
// then laid out by stabilityOrder (all are imports of the current file in RepoBench) and compared, item by item,
// with the builder's order (importance). Deterministic: same seed, same layout.
import { CHANGE_QUANTUM_MS, stabilityOrder } from '../code/order';
import type { RepoBenchItem } from './repobench';

/** A 32-bit FNV-1a hash of the text with the seed mixed in, as a number in [0, 1). */
function unit(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}

/** The simulated last-change time of a repository file (epoch ms): 0 for the old checkout, later slots otherwise. */
export function simulatedChange(seed: number, repo: string, path: string, recent: number): number {
  if (unit(seed, `${repo}\u0000${path}`) >= recent) return 0;
  return (1 + Math.floor(unit(seed + 1, `${repo}\u0000${path}`) * 1000)) * CHANGE_QUANTUM_MS;
}

/** The item with its cross-file snippets in stability order under the simulated history (snippets of one file stay together in their order). */
export function stabilityOrdered(item: RepoBenchItem, seed: number, recent: number): RepoBenchItem {
  const perm = stabilityOrder(item.context.length, 0, () => true, (i) => simulatedChange(seed, item.repo_name, item.context[i].path, recent));
  const context = perm.map((i) => item.context[i]);
  const gold = item.gold_snippet_index === undefined ? undefined : perm.indexOf(item.gold_snippet_index);
  return { ...item, context, gold_snippet_index: gold };
}
