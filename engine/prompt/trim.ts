// Cutting text to a token budget at line boundaries. Cuts are quantised (whole blocks of tokens) so that while the user
// types at the end of the prefix the cut point — and so the prompt's start, which the prefix cache keys on — stays put.
import type { TokenizerLike } from '../generate/types';

/** Drops at least `dropTokens` tokens from the start of `text`, cutting after a newline when one is near. */
export function trimStart(tok: TokenizerLike, text: string, dropTokens: number): string {
  if (dropTokens <= 0) return text;
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (dropTokens >= ids.length) return '';
  let cut = Math.min(text.length, tok.decode(ids.slice(0, dropTokens), { skipSpecialTokens: false }).length);
  const nl = text.indexOf('\n', cut > 0 ? cut - 1 : 0);
  // Snap forward to the end of the cut line unless that line is absurdly long (minified code).
  if (nl >= 0 && nl - cut < 400) cut = nl + 1;
  return text.slice(cut);
}

/** Keeps at most about `keepTokens` tokens from the start of `text`, cutting after the last whole line. */
export function trimEnd(tok: TokenizerLike, text: string, keepTokens: number): string {
  if (keepTokens <= 0) return '';
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (keepTokens >= ids.length) return text;
  let keep = Math.min(text.length, tok.decode(ids.slice(0, keepTokens), { skipSpecialTokens: false }).length);
  const nl = text.lastIndexOf('\n', keep - 1);
  if (nl >= 0 && keep - nl < 400) keep = nl + 1;
  return text.slice(0, keep);
}

/** Rounds a number of tokens to drop up to a whole block, so small edits do not move the cut. */
export const quantise = (tokens: number, block: number) => (tokens <= 0 ? 0 : Math.ceil(tokens / block) * block);
