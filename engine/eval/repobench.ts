// RepoBench v1.1 next-line completion: read the JSONL, build the prompt the way RepoBench's construct_prompt does
// (or in the model's own repository format), greedy-decode, keep the first non-comment line, and score it.
//
// construct_prompt (Leolty/repobench, data/utils.py, v1.1; checked against several public copies of it):
//   cross   = "# Repo Name: {repo_name}\n" + for each snippet "# Path: {path}\n{snippet}\n\n"
//   in_file = "# Path: {file_path}\n{import_statement}\n{cropped_code}\n"
//   over the token limit: drop cross-file lines from the END (subtracting each line's token count until the excess is
//   negative; the line where it turns negative goes too), cross = kept lines joined + "\n\n"
//   prompt  = re.sub(r'\n{4,}', '\n\n', cross + in_file)
// Deviation: when the in-file part alone exceeds the limit (upstream then overruns the model), we keep the LAST
// tokens (left truncation). Token counts use the model's tokenizer without special tokens, as tokenizer.encode does
// for a model with no BOS (tiny-coder-hf adds none).
import { readFileSync } from 'node:fs';
import type { AttentionConfig, AttentionMethod } from '../attention/types';
import type { LoadedModel, Sequence, TokenizerLike } from '../generate/types';
import { ModelSequence } from '../generate/sequence';
import { detectPromptFormat, renderCompletion } from '../prompt';
import { encodeSegments } from '../prompt/segments';
import { codeSim, completionDecided, editSimilarity, exactMatch, firstLineNotComment } from './metrics';

export interface RepoBenchSnippet {
  path: string;
  identifier: string;
  snippet: string;
}

export interface RepoBenchItem {
  repo_name: string;
  file_path: string;
  context: RepoBenchSnippet[];
  import_statement: string;
  cropped_code: string;
  next_line: string;
  /** v1.1: prompt-length bucket ("2k", "4k", …). */
  level: string;
  gold_snippet_index?: number;
  all_code?: string;
  token_num?: number;
  created_at?: string;
  /** Not in the HF rows (there the split name says it): cross_file_first | cross_file_random | in_file. */
  setting?: string;
}

export function readRepoBenchJsonl(file: string): RepoBenchItem[] {
  const items: RepoBenchItem[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: RepoBenchItem;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    for (const k of ['repo_name', 'file_path', 'import_statement', 'cropped_code', 'next_line'] as const) {
      if (typeof row[k] !== 'string') throw new Error(`${file}:${i + 1}: missing string field "${k}"`);
    }
    if (!Array.isArray(row.context)) throw new Error(`${file}:${i + 1}: missing list field "context"`);
    row.level = String(row.level ?? '');
    items.push(row);
  });
  return items;
}

export type PromptStyle = 'repobench' | 'native';

const countTokens = (tok: TokenizerLike, text: string) => (text ? tok.encode(text, { addSpecialTokens: false }).length : 0);

/** The RepoBench prompt text for `maxTokens` (upstream's cross-file truncation; see the header). */
export function repoBenchPromptText(item: RepoBenchItem, tok: TokenizerLike | undefined, maxTokens: number | undefined): string {
  let cross = `# Repo Name: ${item.repo_name}\n`;
  for (const s of item.context) cross += `# Path: ${s.path}\n${s.snippet}` + '\n\n';
  const inFile = `# Path: ${item.file_path}\n${item.import_statement}\n${item.cropped_code}\n`;
  if (tok && maxTokens !== undefined) {
    let exceed = countTokens(tok, cross) + countTokens(tok, inFile) - maxTokens;
    if (exceed > 0) {
      const lines = cross.split('\n');
      let i = lines.length - 1;
      for (; i >= 0; i--) {
        exceed -= countTokens(tok, lines[i]);
        if (exceed < 0) break;
      }
      // Python leaves i at 0 when the loop runs out; lines[:0] is empty either way.
      cross = lines.slice(0, Math.max(0, i)).join('\n') + '\n\n';
    }
  }
  return (cross + inFile).replace(/\n{4,}/g, '\n\n');
}

/** Prompt token ids for an item, at most maxTokens long. */
export function repoBenchPrompt(item: RepoBenchItem, tok: TokenizerLike, maxTokens: number, style: PromptStyle): number[] {
  if (style === 'native') {
    // Snout's own renderer: <|repo_name|>repo <|file_sep|>path\nsnippet … <|file_sep|>file\nimports\ncode; over
    // budget it drops whole snippets from the end, then trims the current file from its start.
    const fmt = detectPromptFormat(tok);
    const prefix = `${item.import_statement}\n${item.cropped_code}\n`.replace(/\n{4,}/g, '\n\n');
    const files = item.context.map((s) => ({ path: s.path, text: s.snippet }));
    return renderCompletion(tok, fmt, { repoName: item.repo_name, files, path: item.file_path, prefix }, maxTokens).ids;
  }
  const ids = encodeSegments(tok, [{ text: repoBenchPromptText(item, tok, maxTokens) }], true);
  return ids.length > maxTokens ? ids.slice(ids.length - maxTokens) : ids;
}

export interface MethodSpec {
  name: string;
  attention: Partial<AttentionConfig>;
}

export interface ItemResult {
  index: number;
  method: string;
  level: string;
  setting?: string;
  prediction: string;
  raw: string;
  nextLine: string;
  em: number;
  es: number;
  codeSim: number;
  sampledFraction: number;
  promptTokens: number;
  decodeMs: number;
}

export interface MethodScores {
  n: number;
  em: number;
  es: number;
  code_sim: number;
  sampled_fraction: number;
}

export interface RunOptions {
  maxTokens: number;
  style: PromptStyle;
  /** Context length of the model; prompts get contextLength - maxTokens tokens. */
  contextLength: number;
  onItem?: (r: ItemResult) => void;
  /** Prefill each item once and reuse it for every method (default true). */
  sharePrefill?: boolean;
}

/**
 * Greedy-decodes every item with every method. Prefill is exact for every method, so by default one sequence per
 * item is prefilled once and reused: before each further method the sequence is rewound to all but the last two
 * prompt tokens, which are then prefilled again as one exact chunk (a 1-token chunk would be a sparse decode step).
 * `sharePrefill: false` uses a fresh sequence per method instead (the test checks both give the same text).
 */
export async function runRepoBench(model: LoadedModel, items: RepoBenchItem[], methods: MethodSpec[], opts: RunOptions): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  const budget = Math.max(16, opts.contextLength - opts.maxTokens);
  const share = opts.sharePrefill ?? true;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const ids = repoBenchPrompt(item, model.tokenizer, budget, opts.style);
    let seq: Sequence | undefined;
    try {
      for (const m of methods) {
        if (!share || !seq) {
          seq?.dispose();
          seq = model.newSequence(m.attention);
        } else if (seq instanceof ModelSequence) {
          seq.tokens = ids.slice(0, Math.max(0, ids.length - 2));
        }
        const abort = new AbortController();
        let raw = '';
        const res = await model.generate(seq, {
          ids,
          maxTokens: opts.maxTokens,
          sampling: { temperature: 0, topP: 1, seed: 0 },
          attention: m.attention,
          signal: abort.signal,
          onText: (t) => {
            raw += t;
            if (completionDecided(raw)) abort.abort();
          },
        });
        // The streamed text is authoritative up to the abort; fall back to the result when nothing streamed.
        if (!raw) raw = res.text;
        const prediction = firstLineNotComment(raw);
        const r: ItemResult = {
          index, method: m.name, level: item.level, setting: item.setting, prediction, raw, nextLine: item.next_line,
          em: exactMatch(prediction, item.next_line),
          es: editSimilarity(prediction, item.next_line),
          codeSim: codeSim(raw, item.next_line),
          sampledFraction: res.stats.sampledFraction,
          promptTokens: ids.length,
          decodeMs: res.stats.decodeMs,
        };
        results.push(r);
        opts.onItem?.(r);
      }
    } finally {
      seq?.dispose();
    }
  }
  return results;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const round2 = (x: number) => Math.round(x * 100) / 100;

/** Mean scores of a set of results (0-100; sampled fraction 0-1). */
export function aggregate(rs: ItemResult[]): MethodScores {
  return {
    n: rs.length,
    em: round2(mean(rs.map((r) => r.em))),
    es: round2(mean(rs.map((r) => r.es))),
    code_sim: round2(mean(rs.map((r) => r.codeSim))),
    sampled_fraction: Math.round(mean(rs.map((r) => r.sampledFraction)) * 1e4) / 1e4,
  };
}

/** { method: scores } plus breakdowns by setting and by level. */
export function summarise(rs: ItemResult[], methods: string[]) {
  const by = (key: (r: ItemResult) => string | undefined) => {
    const out: Record<string, Record<string, MethodScores>> = {};
    for (const m of methods) {
      const mine = rs.filter((r) => r.method === m);
      const groups = [...new Set(mine.map(key).filter((k): k is string => !!k))].sort();
      out[m] = Object.fromEntries(groups.map((g) => [g, aggregate(mine.filter((r) => key(r) === g))]));
    }
    return out;
  };
  return {
    methods: Object.fromEntries(methods.map((m) => [m, aggregate(rs.filter((r) => r.method === m))])) as Record<string, MethodScores>,
    bySetting: by((r) => r.setting),
    byLevel: by((r) => r.level),
  };
}

/** The attention overrides for a method name at a given (K, L) and TopK/Quest budget. */
export function methodSpec(name: AttentionMethod, K: number, L: number, budget: number | 'auto', label?: string): MethodSpec {
  const attention: Partial<AttentionConfig> = { method: name };
  // minIndexed 0: the eval compares the methods themselves, so they index even the short prompts the engine's
  // default attends exactly (types.ts SHORT_CONTEXT_MIN_INDEXED).
  if (name !== 'dense') Object.assign(attention, { K, L, budget, minIndexed: 0 });
  return { name: label ?? name, attention };
}
