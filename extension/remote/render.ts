// The packed repository prompt as text for a remote OpenAI-compatible server, in the served model's FIM layout. The
// engine's own renderer (engine/prompt) does the layout and the budget; here it runs over a character "tokenizer"
// (one id per character, the layout's special tokens as their own ids), so the budget is in characters and the
// server tokenizes the text, special-token strings included, the way vLLM, llama.cpp's server and TGI do.
import { detectPromptFormat, type PromptFormat, type PromptFormatName } from '../../engine/prompt/format';
import { renderCompletion, DEFAULT_MAX_SUFFIX_TOKENS, type CompletionParts } from '../../engine/prompt/completion';
import type { TokenizerLike } from '../../engine/generate/types';

export type FormatSetting = 'auto' | PromptFormatName;

/** Special tokens of each family, as their vocabularies spell them (detectPromptFormat reads them back). */
const vocab: Record<PromptFormatName, string[]> = {
  qwen: ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|repo_name|>', '<|file_sep|>'],
  starcoder: ['<fim_prefix>', '<fim_suffix>', '<fim_middle>', '<repo_name>', '<file_sep>'],
  deepseek: ['<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>'],
  codellama: ['▁<PRE>', '▁<SUF>', '▁<MID>'],
  plain: [],
};

const firstId = 1 << 21; // above every code point

/** A TokenizerLike whose tokens are single characters, plus `specials` as whole tokens. */
export class CharTokenizer implements TokenizerLike {
  private readonly ids = new Map<string, number>();
  readonly eosIds: number[] = [];
  readonly addBos = false;
  constructor(readonly specialTokens: string[]) {
    specialTokens.forEach((t, i) => this.ids.set(t, firstId + i));
  }
  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) out.push(ch.codePointAt(0)!);
    return out;
  }
  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) s += id >= firstId ? this.specialTokens[id - firstId] : String.fromCodePoint(id);
    return s;
  }
  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }
}

/** The layout a served model was trained on, from its name (Qwen, StarCoder, DeepSeek-Coder, CodeLlama). */
export function formatFromModelName(name: string): PromptFormatName {
  const n = name.toLowerCase();
  if (/qwen/.test(n)) return 'qwen';
  if (/starcoder|santacoder|stable-code|granite/.test(n)) return 'starcoder';
  if (/deepseek/.test(n)) return 'deepseek';
  if (/codellama|code-llama/.test(n)) return 'codellama';
  return 'plain';
}

export function promptFormat(name: PromptFormatName): PromptFormat {
  return detectPromptFormat(new CharTokenizer(vocab[name]));
}

/**
 * `parts` as one prompt string within `budgetChars` characters: the same layout the local engine renders, files
 * dropped from the end first, then the prefix trimmed from its start.
 */
export function renderRemotePrompt(fmt: PromptFormat, parts: CompletionParts, budgetChars: number, charsPerToken: number): { prompt: string; filesKept: number; truncatedChars: number } {
  const tok = new CharTokenizer(vocab[fmt.name]);
  const r = renderCompletion(tok, fmt, parts, budgetChars, Math.round(DEFAULT_MAX_SUFFIX_TOKENS * charsPerToken));
  return { prompt: tok.decode(r.ids), filesKept: r.filesKept, truncatedChars: r.truncatedTokens };
}
