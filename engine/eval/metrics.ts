// Completion metrics as the benchmarks define them, on a 0-100 scale:
// - Exact Match (RepoBench): Python's pred.split() == gt.split().
// - Edit Similarity (RepoBench): fuzzywuzzy fuzz.ratio(pred, gt) = round(100 · difflib ratio), with its shortcuts
//   (equal strings → 100, an empty string → 0) and Python 3's round-half-to-even.
// - code_sim (LongBench): fuzz.ratio of the prediction's first line containing none of ` # // against the ground
//   truth. LongBench divides by 100; we keep 0-100 for reporting.
import { SequenceMatcher, codePoints } from './difflib';

/** Characters Python's str.split() (and str.isspace()) treats as whitespace. JS \s differs (\ufeff, \x1c-\x1f, \x85). */
const pyWs = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const pyWhitespace = new RegExp(`[${pyWs}]+`);
const pyStripRe = new RegExp(`^[${pyWs}]+|[${pyWs}]+$`, 'g');

/** Python's str.strip() with no arguments. */
export function pyStrip(s: string): string {
  return s.replace(pyStripRe, '');
}

/** Python's str.split() with no arguments. */
export function pySplit(s: string): string[] {
  return s.split(pyWhitespace).filter((t) => t.length > 0);
}

/** Python 3 round() of a float to an integer: ties go to the even neighbour. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** RepoBench exact match: 100 when the whitespace-split tokens are equal, else 0. */
export function exactMatch(pred: string, gt: string): number {
  const a = pySplit(pred), b = pySplit(gt);
  return a.length === b.length && a.every((t, i) => t === b[i]) ? 100 : 0;
}

/** fuzzywuzzy fuzz.ratio (pure-Python path: difflib.SequenceMatcher(None, a, b) with autojunk). */
export function fuzzRatio(a: string, b: string): number {
  if (a === b) return 100;
  if (a.length === 0 || b.length === 0) return 0;
  // Same float operations as Python: 2.0 * matches / total, then 100 * that, then round-half-even.
  return pyRound(100 * new SequenceMatcher(codePoints(a), codePoints(b)).ratio());
}

/** RepoBench edit similarity (0-100). */
export const editSimilarity = fuzzRatio;

/** LongBench's candidate line: after stripping leading newlines, the first line with no backtick, '#' or '//'. */
export function codeSimLine(prediction: string): string {
  for (const line of prediction.replace(/^\n+/, '').split('\n')) {
    if (!line.includes('`') && !line.includes('#') && !line.includes('//')) return line;
  }
  return '';
}

/** LongBench code_sim_score × 100. */
export function codeSim(prediction: string, gt: string): number {
  return fuzzRatio(codeSimLine(prediction), gt);
}

/**
 * Index of the line RepoBench's get_first_line_not_comment (Python branch) picks: skip blank lines, '#' comments and
 * triple-quoted blocks (a line starting a block opens it even if it also closes it, as upstream does); -1 if none.
 */
export function firstNonCommentIndex(lines: string[], language: 'python' | 'java' = 'python'): number {
  let inComment = false;
  const [open, close, single] = language === 'python' ? [['"""', "'''"], ['"""', "'''"], '#'] : [['/*'], ['*/'], '//'];
  for (let i = 0; i < lines.length; i++) {
    const t = pyStrip(lines[i]);
    if (!t) continue;
    if (!inComment && open.some((o) => t.startsWith(o))) { inComment = true; continue; }
    if (inComment && close.some((c) => t.endsWith(c))) { inComment = false; continue; }
    if (inComment) continue;
    if (t.startsWith(single)) continue;
    return i;
  }
  return -1;
}

/** RepoBench's get_first_line_not_comment: that line, or the first line when there is none. */
export function firstLineNotComment(code: string, language: 'python' | 'java' = 'python'): string {
  const lines = code.replace(/^\n+/, '').split('\n');
  const i = firstNonCommentIndex(lines, language);
  return i >= 0 ? lines[i] : lines[0];
}

/**
 * True once a streamed completion decides both the RepoBench line and LongBench's code_sim line among its complete
 * lines, so decoding can stop early without changing either score.
 */
export function completionDecided(text: string): boolean {
  const complete = text.replace(/^\n+/, '').split('\n').slice(0, -1);
  return firstNonCommentIndex(complete) >= 0 && complete.some((l) => !/`|#|\/\//.test(l));
}
