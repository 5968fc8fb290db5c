// GGUF tokenizer metadata (tokenizer.ggml.*) → a tokenizer.json-shaped object for @huggingface/tokenizers, plus the
// tokenizer_config-style fields HfTokenizer reads (BOS/EOS, add_bos_token, chat template).
//
// - tokenizer.ggml.model = "gpt2": byte-level BPE with the file's merges; the pre-tokenizer regex is chosen by
//   tokenizer.ggml.pre as llama.cpp does (unknown names are refused rather than tokenized differently).
// - tokenizer.ggml.model = "llama": SentencePiece vocabulary with byte fallback. llama.cpp tokenizes it as BPE that
//   merges the adjacent pair whose joined piece has the highest score; the same merge order is given to the BPE model
//   here (as transformers' SentencePiece converter does), so ids match llama.cpp and the original tokenizer.json.
// Control (and unknown) tokens become special added tokens, user-defined ones plain added tokens, so FIM and chat
// markers in a prompt map to their ids.
import type { GgufHeader } from './parse';
import { metaGetter } from './spec';

type Json = Record<string, unknown>;

const tokenTypes = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 };

// Pre-tokenizer regexes (as in the models' tokenizer.json files) by llama.cpp's tokenizer.ggml.pre names.
const gpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const qwen2Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const preTokenizers: Record<string, { regex: string; ignoreMerges: boolean }> = {
  default: { regex: gpt2Regex, ignoreMerges: false },
  gpt2: { regex: gpt2Regex, ignoreMerges: false },
  qwen2: { regex: qwen2Regex, ignoreMerges: false },
  'llama-bpe': { regex: llama3Regex, ignoreMerges: true },
  'llama3': { regex: llama3Regex, ignoreMerges: true },
};

export interface GgufTokenizer {
  json: Json;
  /** tokenizer_config.json-style fields for HfTokenizer. */
  config: Json;
  vocabSize: number;
  bosId?: number;
  eosIds: number[];
}

export function ggufTokenizer(h: GgufHeader, file: string): GgufTokenizer {
  const { fail, get, str } = metaGetter(h, file);
  const model = str('tokenizer.ggml.model');
  const tokens = get('tokenizer.ggml.tokens');
  if (model === undefined || tokens === undefined) {
    fail('has no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens are missing): convert it again with its tokenizer');
  }
  if (!Array.isArray(tokens) || tokens.length === 0 || typeof tokens[0] !== 'string') fail('tokenizer.ggml.tokens is not a list of strings');
  const toks = tokens as string[];
  const n = toks.length;
  const numbers = (key: string): Float64Array | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (!(v instanceof Float64Array) || v.length !== n) fail(`${key} must be a list of ${n} numbers (one per token)`);
    return v as Float64Array;
  };
  const types = numbers('tokenizer.ggml.token_type') ?? new Float64Array(n).fill(tokenTypes.normal);
  const id = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n) fail(`${key} ${JSON.stringify(v)} is not a token id (${n} tokens)`);
    return v as number;
  };
  const flag = (key: string): boolean | undefined => {
    const v = get(key);
    if (v !== undefined && typeof v !== 'boolean') fail(`${key} must be true or false`);
    return v as boolean | undefined;
  };

  const vocab: Record<string, number> = {};
  for (let i = 0; i < n; i++) if (!(toks[i] in vocab)) vocab[toks[i]] = i;
  const unk = id('tokenizer.ggml.unknown_token_id') ?? toks.findIndex((_, i) => types[i] === tokenTypes.unknown);
  const added = [];
  for (let i = 0; i < n; i++) {
    const t = types[i];
    if (t === tokenTypes.control || t === tokenTypes.userDefined || t === tokenTypes.unknown) {
      added.push({
        id: i, content: toks[i], single_word: false, lstrip: false, rstrip: false, normalized: false,
        special: t !== tokenTypes.userDefined,
      });
    }
  }

  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const addBos = flag('tokenizer.ggml.add_bos_token') ?? (model === 'llama' && bos !== undefined);
  const addEos = flag('tokenizer.ggml.add_eos_token') ?? false;
  const template: Json[] = [];
  const specials: Json = {};
  for (const [want, tid] of [[addBos, bos], [false, -1], [addEos, eos]] as Array<[boolean, number | undefined]>) {
    if (tid === -1) { template.push({ Sequence: { id: 'A', type_id: 0 } }); continue; }
    if (!want || tid === undefined) continue;
    template.push({ SpecialToken: { id: toks[tid], type_id: 0 } });
    specials[toks[tid]] = { id: toks[tid], ids: [tid], tokens: [toks[tid]] };
  }
  const postProcessor = template.length > 1 ? { type: 'TemplateProcessing', single: template, pair: template, special_tokens: specials } : null;

  let json: Json;
  if (model === 'gpt2') {
    const merges = get('tokenizer.ggml.merges');
    if (!Array.isArray(merges) || (merges.length > 0 && typeof merges[0] !== 'string')) fail('a gpt2 tokenizer needs tokenizer.ggml.merges (a list of strings)');
    const pre = str('tokenizer.ggml.pre') ?? 'default';
    const p = preTokenizers[pre];
    if (!p) fail(`tokenizer.ggml.pre "${pre}" is not supported (supported: ${Object.keys(preTokenizers).join(', ')})`);
    json = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      // Qwen2's tokenizer.json normalizes to NFC before splitting; the others do not normalize.
      normalizer: pre === 'qwen2' ? { type: 'NFC' } : null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: p.regex }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: postProcessor,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
        fuse_unk: false, byte_fallback: false, ignore_merges: p.ignoreMerges, vocab, merges: merges as string[],
      },
    };
  } else if (model === 'llama') {
    const scores = numbers('tokenizer.ggml.scores');
    if (!scores) fail('a llama (SentencePiece) tokenizer needs tokenizer.ggml.scores');
    const spacePrefix = flag('tokenizer.ggml.add_space_prefix') ?? true;
    const normalizers: Json[] = [{ type: 'Replace', pattern: { String: ' ' }, content: '▁' }];
    if (spacePrefix) normalizers.unshift({ type: 'Prepend', prepend: '▁' });
    const decoders: Json[] = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
    if (spacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
    json = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      normalizer: { type: 'Sequence', normalizers },
      pre_tokenizer: null,
      post_processor: postProcessor,
      decoder: { type: 'Sequence', decoders },
      model: {
        type: 'BPE', dropout: null, unk_token: unk >= 0 ? toks[unk] : null, continuing_subword_prefix: null,
        end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab,
        merges: mergesFromScores(toks, scores!, types),
      },
    };
  } else {
    return fail(`tokenizer model "${model}" is not supported (supported: gpt2, llama)`);
  }

  const eosIds = [eos, id('tokenizer.ggml.eot_token_id'), id('tokenizer.ggml.eom_token_id')].filter((x): x is number => x !== undefined);
  const config: Json = {
    bos_token: bos !== undefined ? toks[bos] : undefined,
    eos_token: eos !== undefined ? toks[eos] : undefined,
    add_bos_token: addBos,
    // llama.cpp decodes without transformers' legacy space clean-up ("a !" stays "a !").
    clean_up_tokenization_spaces: false,
    chat_template: str('tokenizer.chat_template'),
  };
  return { json, config, vocabSize: n, bosId: bos, eosIds: [...new Set(eosIds)] };
}

/**
 * SentencePiece BPE's merge order from piece scores: every normal piece that splits into two normal pieces gives a
 * merge, ranked by the joined piece's score (highest first), then by the joined piece's id and the halves' ids.
 */
function mergesFromScores(tokens: string[], scores: Float64Array, types: Float64Array): string[][] {
  const normal = new Map<string, number>();
  tokens.forEach((t, i) => { if (types[i] === tokenTypes.normal && !normal.has(t)) normal.set(t, i); });
  const found: Array<{ l: string; r: string; score: number; id: number; li: number; ri: number }> = [];
  for (const [t, id] of normal) {
    // Splits inside a surrogate pair give halves no vocabulary holds, so UTF-16 indexing is fine.
    for (let k = 1; k < t.length; k++) {
      const li = normal.get(t.slice(0, k)), ri = normal.get(t.slice(k));
      if (li !== undefined && ri !== undefined) found.push({ l: t.slice(0, k), r: t.slice(k), score: scores[id], id, li, ri });
    }
  }
  found.sort((a, b) => b.score - a.score || a.id - b.id || a.li - b.li || a.ri - b.ri);
  return found.map((m) => [m.l, m.r]);
}
