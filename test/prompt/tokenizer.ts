// The shared models' real tokenizers as TokenizerLike, read straight from tokenizer.json with @huggingface/tokenizers
// (prompt tests need no ONNX model). Replace with the engine's own loader once every caller uses it.
import { Tokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TokenizerLike } from '../../engine/generate/types';

export const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(__dirname, '../../../shared');
export const modelDir = (name: string) => path.join(sharedDir, 'models', name);

export function loadTestTokenizer(dir: string, chatTemplate?: string): TokenizerLike {
  const json = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const t = new Tokenizer(json, config);
  const id = (s: unknown) => (typeof s === 'string' ? t.token_to_id(s) : undefined);
  const specialTokens: string[] = (json.added_tokens ?? []).filter((a: any) => a.special).map((a: any) => a.content);
  return {
    encode: (text, o) => t.encode(text, { add_special_tokens: o?.addSpecialTokens ?? false }).ids,
    decode: (ids, o) => t.decode([...ids], { skip_special_tokens: o?.skipSpecialTokens ?? false }),
    tokenToId: (s) => t.token_to_id(s),
    bosId: id(config.bos_token),
    eosIds: [id(config.eos_token)].filter((x): x is number => x !== undefined),
    addBos: !!config.add_bos_token,
    chatTemplate: chatTemplate ?? config.chat_template,
    specialTokens,
  };
}
