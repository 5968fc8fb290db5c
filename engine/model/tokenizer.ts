// tokenizer.json through @huggingface/tokenizers, plus tokenizer_config.json for BOS/EOS, add_bos_token, special tokens
// and the chat template. Encoding with special tokens follows the tokenizer's own post-processor (stories260K's adds
// <s>; tiny-coder's adds nothing), exactly as transformers' fast tokenizers do.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors';
import type { TokenizerLike } from '../generate/types';

type Json = Record<string, unknown>;

function readJson(file: string, what: string): Json {
  if (!existsSync(file)) throw new UserError(`not found (the model folder needs ${what})`, file);
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as Json;
  } catch (err) {
    throw new UserError(`not valid JSON (${(err as Error).message})`, file);
  }
}

/** A token named in tokenizer_config.json: a string or an AddedToken object {content, ...}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

export class HfTokenizer implements TokenizerLike {
  readonly bosId?: number;
  readonly eosIds: number[];
  readonly addBos: boolean;
  readonly chatTemplate?: string;
  readonly specialTokens: string[];

  private constructor(private readonly tok: Tokenizer, config: Json, extraEosIds: number[]) {
    const bos = tokenText(config.bos_token);
    this.bosId = bos !== undefined ? tok.token_to_id(bos) : undefined;
    const eos = tokenText(config.eos_token);
    const eosId = eos !== undefined ? tok.token_to_id(eos) : undefined;
    this.eosIds = [...new Set([...(eosId !== undefined ? [eosId] : []), ...extraEosIds])];
    // add_bos_token when stated; otherwise whatever the post-processor does (probe with an empty string).
    this.addBos = typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token
      : this.bosId !== undefined && tok.encode('').ids[0] === this.bosId;
    this.chatTemplate = chatTemplateOf(config.chat_template);
    this.specialTokens = [...tok.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.content);
  }

  /** Load from a model folder; `extraEosIds` are config.json's eos ids (generation stops on any of them). */
  static load(modelDir: string, extraEosIds: number[] = []): HfTokenizer {
    const tokFile = path.join(modelDir, 'tokenizer.json');
    const tokJson = readJson(tokFile, 'tokenizer.json');
    const cfgFile = path.join(modelDir, 'tokenizer_config.json');
    const config = existsSync(cfgFile) ? readJson(cfgFile, 'tokenizer_config.json') : {};
    return HfTokenizer.fromJson(tokJson, config, extraEosIds, tokFile);
  }

  /**
   * From a tokenizer.json-shaped object and tokenizer_config.json-style fields (a GGUF file's tokenizer metadata
   * arrives this way); `source` names the file in errors.
   */
  static fromJson(json: Json, config: Json = {}, extraEosIds: number[] = [], source = 'tokenizer.json'): HfTokenizer {
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json, config);
    } catch (err) {
      throw new UserError(`cannot build a tokenizer from it (${(err as Error).message})`, source);
    }
    return new HfTokenizer(tok, config, extraEosIds);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const ids = this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
    // tokenizer_config says add BOS but the tokenizer.json post-processor does not: add it (transformers does too).
    if (addSpecial && this.addBos && this.bosId !== undefined && ids[0] !== this.bosId) ids.unshift(this.bosId);
    return ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

function chatTemplateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  // Newer configs: a list of named templates; the unnamed/"default" one is the chat template.
  if (Array.isArray(v)) {
    const named = v.find((t) => t && typeof t === 'object' && (t as Json).name === 'default') ?? v[0];
    return tokenText({ content: (named as Json | undefined)?.template });
  }
  return undefined;
}

export function loadTokenizer(modelDir: string, extraEosIds: number[] = []): HfTokenizer {
  return HfTokenizer.load(modelDir, extraEosIds);
}
