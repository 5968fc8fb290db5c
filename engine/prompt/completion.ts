// Renders a structured completion request (repository files + the current file's prefix and suffix) in the model's
// own layout, within a token budget:
//   qwen/starcoder: <|repo_name|>repo\n <|file_sep|>path\ncode … <|file_sep|>path\n <|fim_prefix|>pre<|fim_suffix|>suf<|fim_middle|>
//                   (no suffix → the current file is written plainly after its header, like every other file)
//   deepseek/codellama: FIM tokens around "# Path: file" comment blocks; plain: the comment blocks only.
// Over budget: drop whole context files from the END of the list (the client orders them by importance), then trim the
// prefix from its start and the suffix from its end (quantised, see trim.ts).
import type { TokenizerLike } from '../generate/types';
import type { RepoFile } from '../protocol';
import type { PromptFormat } from './format';
import { countTokens, encodeSegments, type Segment } from './segments';
import { quantise, trimEnd, trimStart } from './trim';

export interface CompletionParts {
  repoName?: string;
  files?: RepoFile[];
  path?: string;
  prefix: string;
  suffix?: string;
}

export interface RenderedPrompt {
  ids: number[];
  /** Tokens of context left out to fit the budget (files dropped without tokenizing are estimated at 4 chars/token). */
  truncatedTokens: number;
  /** The part of truncatedTokens cut because the prompt overflowed the budget: all of it but the suffix's fixed cap. */
  overflowTokens: number;
  /** Context files kept (a prefix of the files list). */
  filesKept: number;
}

const withNewline = (s: string) => (s === '' || s.endsWith('\n') ? s : s + '\n');
const pathComment = (p: string) => `# Path: ${p}\n`;

/** Text of one context file block (after its separator token, if the format has one). */
function fileBlock(fmt: PromptFormat, f: RepoFile): string {
  return fmt.fileSep ? `${f.path}\n${withNewline(f.text)}` : `${pathComment(f.path)}${withNewline(f.text)}\n`;
}

function layout(fmt: PromptFormat, parts: CompletionParts, files: RepoFile[], prefix: string, suffix: string): Segment[] {
  const seg: Segment[] = [];
  if (fmt.fileSep) {
    if (fmt.repoName && parts.repoName) seg.push({ special: fmt.repoName }, { text: `${parts.repoName}\n` });
    for (const f of files) seg.push({ special: fmt.fileSep }, { text: fileBlock(fmt, f) });
    if (parts.path) seg.push({ special: fmt.fileSep }, { text: `${parts.path}\n` });
    if (fmt.fim && suffix) {
      seg.push({ special: fmt.fim.prefix }, { text: prefix }, { special: fmt.fim.suffix }, { text: suffix }, { special: fmt.fim.middle });
    } else {
      seg.push({ text: prefix });
    }
    return seg;
  }
  // No file separator: repository context as comment blocks in front of the current file, all inside the FIM prefix.
  const context = files.map((f) => fileBlock(fmt, f)).join('') + (parts.path ? pathComment(parts.path) : '');
  if (fmt.fim && suffix) {
    const sp = fmt.fimSpaced ? ' ' : '';
    seg.push({ special: fmt.fim.prefix }, { text: sp + context + prefix + sp }, { special: fmt.fim.suffix }, { text: suffix + sp }, { special: fmt.fim.middle });
  } else {
    seg.push({ text: context + prefix });
  }
  return seg;
}

/**
 * Renders `parts` into at most `budget` tokens. Deterministic: the same inputs give the same ids.
 * Throws if even an empty prefix does not fit (budget smaller than the fixed tokens of the layout).
 */
/**
 * Suffix tokens kept by default. In PSM order every token after the cursor is re-prefilled on each keystroke (the
 * prefix cache only reuses what precedes the edit), so a long suffix costs TTFT on every request.
 */
export const DEFAULT_MAX_SUFFIX_TOKENS = 64;

/**
 * The texts renderCompletion will tokenize, each cut as it cuts them (by characters, bounded by the budget), for
 * warming a memoising tokenizer in slices before the synchronous render (CachedTokenizer.warm). An approximation is
 * enough: the render's ids never depend on it, only how much of its work is already cached.
 */
export function completionTexts(fmt: PromptFormat, parts: CompletionParts, budget: number): string[] {
  const maxChars = budget * 32;
  const prefix = parts.prefix.length > maxChars ? parts.prefix.slice(parts.prefix.length - maxChars) : parts.prefix;
  const texts = [prefix, (parts.suffix ?? '').slice(0, maxChars)];
  // Files are tokenized while they fit, then up to 64K characters of the dropped ones are counted.
  let chars = 0;
  for (const f of parts.files ?? []) {
    const text = fileBlock(fmt, f);
    if ((chars += text.length) > maxChars + 64 * 1024) break;
    texts.push(text);
  }
  return texts;
}

export function renderCompletion(tok: TokenizerLike, fmt: PromptFormat, parts: CompletionParts, budget: number, maxSuffixTokens = DEFAULT_MAX_SUFFIX_TOKENS): RenderedPrompt {
  const files = parts.files ?? [];
  const block = Math.max(16, budget >> 4);
  let prefix = parts.prefix;
  let suffix = fmt.fim && parts.suffix && parts.suffix.trim() !== '' ? parts.suffix : '';
  let truncated = 0;

  // A prefix far longer than any budget is pre-cut by characters (no token has more than ~32 characters), at a
  // quantised offset so the cut does not move with every keystroke.
  const maxChars = budget * 32;
  if (prefix.length > maxChars) {
    const blockChars = block * 32;
    const cut = Math.ceil((prefix.length - maxChars) / blockChars) * blockChars;
    const nl = prefix.indexOf('\n', cut);
    const at = nl >= 0 && nl - cut < 400 ? nl + 1 : cut;
    truncated += Math.ceil(at / 4);
    prefix = prefix.slice(at);
  }
  if (suffix.length > maxChars) { truncated += Math.ceil((suffix.length - maxChars) / 4); suffix = suffix.slice(0, maxChars); }

  const fixed = encodeSegments(tok, layout(fmt, parts, [], '', suffix ? ' ' : ''), true).length + 2;
  let prefixTokens = countTokens(tok, prefix);
  let suffixTokens = countTokens(tok, suffix);
  let capped = 0;
  if (suffixTokens > maxSuffixTokens) {
    suffix = trimEnd(tok, suffix, maxSuffixTokens);
    const n = countTokens(tok, suffix);
    capped = suffixTokens - n;
    truncated += capped;
    suffixTokens = n;
  }
  if (fixed > budget) throw new Error(`the prompt layout alone needs ${fixed} tokens, more than the budget of ${budget}`);

  // Files in order while they fit; the first that does not fit and everything after it are dropped.
  let used = fixed + prefixTokens + suffixTokens;
  let kept = 0;
  for (; kept < files.length; kept++) {
    const text = fileBlock(fmt, files[kept]);
    if (text.length > (budget - used) * 32) break; // cannot fit: skip tokenizing it
    const n = countTokens(tok, text) + 1;
    if (used + n > budget) break;
    used += n;
  }
  // Dropped files are counted exactly while that is cheap (tokenizing is slow), then estimated at 4 chars/token.
  let countedChars = 0;
  for (let i = kept; i < files.length; i++) {
    const text = fileBlock(fmt, files[i]);
    countedChars += text.length;
    truncated += countedChars <= 64 * 1024 ? countTokens(tok, text) + 1 : Math.ceil(text.length / 4) + 1;
  }

  // Still over: the suffix keeps at most a quarter of what is left (or all it needs), the prefix the rest.
  const room = budget - (used - prefixTokens - suffixTokens);
  if (prefixTokens + suffixTokens > room) {
    const suffixKeep = Math.min(suffixTokens, Math.max(room >> 2, room - prefixTokens));
    if (suffixKeep < suffixTokens) { suffix = trimEnd(tok, suffix, suffixKeep); }
    const prefixKeep = room - countTokens(tok, suffix);
    if (prefixKeep < prefixTokens) prefix = trimStart(tok, prefix, quantise(prefixTokens - prefixKeep, block));
    const after = countTokens(tok, prefix) + countTokens(tok, suffix);
    truncated += prefixTokens + suffixTokens - after;
    prefixTokens = countTokens(tok, prefix);
    suffixTokens = countTokens(tok, suffix);
  }

  const kept_ = files.slice(0, kept);
  let ids = encodeSegments(tok, layout(fmt, parts, kept_, prefix, suffix), true);
  // Chunk boundaries can shift counts by a token or two; shave the prefix until the whole prompt fits.
  for (let tries = 0; ids.length > budget && prefix && tries < 4; tries++) {
    const before = countTokens(tok, prefix);
    prefix = trimStart(tok, prefix, ids.length - budget + tries * 4 + 1);
    truncated += before - countTokens(tok, prefix);
    ids = encodeSegments(tok, layout(fmt, parts, kept_, prefix, suffix), true);
  }
  if (ids.length > budget) throw new Error(`prompt of ${ids.length} tokens does not fit the budget of ${budget}`);
  return { ids, truncatedTokens: truncated, overflowTokens: truncated - capped, filesKept: kept };
}

export interface RepositoryPrefix {
  /** The token prefix that the completion prompt for `parts` starts with, up to the current file's code. */
  ids: number[];
  /** Tokens of the whole completion prompt for `parts`. */
  promptTokens: number;
  filesKept: number;
}

/**
 * What background indexing prefills: the longest token prefix shared by the completion prompt for `parts` (rendered
 * exactly as renderCompletion does, so the same files are kept within the same budget) and the same layout with an
 * empty current-file window. The common prefix, not the shorter render: text merges across the boundary (a file
 * header's newline and the first code may form one token), and only tokens the completion will really send are
 * worth prefilling.
 */
export function renderRepositoryPrefix(tok: TokenizerLike, fmt: PromptFormat, parts: CompletionParts, budget: number, maxSuffixTokens = DEFAULT_MAX_SUFFIX_TOKENS): RepositoryPrefix {
  const full = renderCompletion(tok, fmt, parts, budget, maxSuffixTokens);
  const hasSuffix = !!(fmt.fim && parts.suffix && parts.suffix.trim() !== '');
  // Any non-empty suffix picks the same FIM layout; the shared prefix ends before the current file's code anyway.
  const repo = encodeSegments(tok, layout(fmt, parts, (parts.files ?? []).slice(0, full.filesKept), '', hasSuffix ? ' ' : ''), true);
  let n = 0;
  const m = Math.min(repo.length, full.ids.length);
  while (n < m && repo[n] === full.ids[n]) n++;
  return { ids: full.ids.slice(0, n), promptTokens: full.ids.length, filesKept: full.filesKept };
}
