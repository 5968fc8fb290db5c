// Which prompt layout a model was trained on, read off its tokenizer's special tokens. Each layout names the exact
// token strings; rendering inserts them by id, so a model never sees them spelled out as ordinary text.
import type { TokenizerLike } from '../generate/types';

export type PromptFormatName = 'qwen' | 'starcoder' | 'deepseek' | 'codellama' | 'plain';

export interface PromptFormat {
  name: PromptFormatName;
  /** Repository header token (`<|repo_name|>name\n`); absent → no header. */
  repoName?: string;
  /** File separator token (`<|file_sep|>path\ncode`); absent → files are written as `# Path: …` comments. */
  fileSep?: string;
  /** FIM tokens in prefix-suffix-middle order; absent → the suffix is ignored and the prefix is completed plainly. */
  fim?: { prefix: string; suffix: string; middle: string };
  /** CodeLlama puts a space after <PRE> and before <SUF>/<MID> (its tokens are spelled `▁<PRE>` …). */
  fimSpaced?: boolean;
}

const first = (tok: TokenizerLike, names: string[]) => names.find((n) => tok.tokenToId(n) !== undefined);

/** Detects the layout from the vocabulary; 'plain' when the model has no FIM tokens of a known family. */
export function detectPromptFormat(tok: TokenizerLike): PromptFormat {
  const has = (n: string) => tok.tokenToId(n) !== undefined;
  if (has('<|fim_prefix|>') && has('<|fim_suffix|>') && has('<|fim_middle|>')) {
    return {
      name: 'qwen',
      repoName: first(tok, ['<|repo_name|>']),
      fileSep: first(tok, ['<|file_sep|>']),
      fim: { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' },
    };
  }
  if (has('<fim_prefix>') && has('<fim_suffix>') && has('<fim_middle>')) {
    return {
      name: 'starcoder',
      repoName: first(tok, ['<repo_name>', '<reponame>']),
      fileSep: first(tok, ['<file_sep>', '<filename>']),
      fim: { prefix: '<fim_prefix>', suffix: '<fim_suffix>', middle: '<fim_middle>' },
    };
  }
  if (has('<｜fim▁begin｜>') && has('<｜fim▁hole｜>') && has('<｜fim▁end｜>')) {
    return { name: 'deepseek', fim: { prefix: '<｜fim▁begin｜>', suffix: '<｜fim▁hole｜>', middle: '<｜fim▁end｜>' } };
  }
  const pre = first(tok, ['▁<PRE>', '<PRE>']);
  const suf = first(tok, ['▁<SUF>', '<SUF>']);
  const mid = first(tok, ['▁<MID>', '<MID>']);
  if (pre && suf && mid) return { name: 'codellama', fim: { prefix: pre, suffix: suf, middle: mid }, fimSpaced: !pre.startsWith('▁') };
  return { name: 'plain' };
}

/**
 * Stop strings that end a structured completion: the layout's own markers (a next file, a repository header, any FIM
 * token). A completion is one code span inside one file; the model writing a marker means it has left that span.
 */
export function layoutStops(fmt: PromptFormat): string[] {
  return [fmt.fileSep, fmt.repoName, fmt.fim?.prefix, fmt.fim?.suffix, fmt.fim?.middle].filter((x): x is string => !!x);
}
