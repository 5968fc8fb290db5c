// A prompt as a list of segments: special tokens (inserted by id) and text. Adjacent text is encoded as one chunk, the
// way Hugging Face tokenizers split a string at its special tokens, so rendering a layout here gives the same ids as
// encoding the equivalent string — and the same inputs always give the same ids (the prefix cache depends on that).
import type { TokenizerLike } from '../generate/types';

export type Segment = { special: string } | { text: string };

export function encodeSegments(tok: TokenizerLike, segments: Segment[], withBos: boolean): number[] {
  const ids: number[] = [];
  if (withBos && tok.addBos && tok.bosId !== undefined) ids.push(tok.bosId);
  let text = '';
  const flush = () => {
    if (text) for (const id of tok.encode(text, { addSpecialTokens: false })) ids.push(id);
    text = '';
  };
  for (const s of segments) {
    if ('text' in s) { text += s.text; continue; }
    flush();
    const id = tok.tokenToId(s.special);
    if (id === undefined) throw new Error(`tokenizer has no token ${s.special}`);
    ids.push(id);
  }
  flush();
  return ids;
}

/** Token count of a text on its own (an estimate of its share of a chunk; exact for chunk-aligned parts). */
export const countTokens = (tok: TokenizerLike, text: string) => (text ? tok.encode(text, { addSpecialTokens: false }).length : 0);
