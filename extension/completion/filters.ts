// Post-processing of a raw model continuation into ghost text. Each rule is a small pure function; `shapeCompletion`
// applies them in order. The rules follow what makes inline completion feel right in practice (Copilot, Continue,
// llama.vscode): one line when code sits right of the cursor, stop at a blank line or at the end of the block, never
// repeat what already follows the cursor, never show a special token.

/** Special/control tokens of the prompt formats Snout renders (Qwen, StarCoder, DeepSeek, CodeLlama, chat). */
const specialToken = /<\|[a-z_]+\|>|<(fim_[a-z]+|file_sep|repo_name|filename|gh_stars|issue_[a-z]+|jupyter_[a-z]+|empty_output|commit_[a-z]+|reponame)>|<｜[^｜]*｜>|<(PRE|SUF|MID|EOT)>|<\/?s>|<unk>|<pad>/;

/** Text up to the first special token: anything after one belongs to another document or turn. */
export function cutAtSpecialToken(text: string): string {
  const m = specialToken.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/** A partial special token at the very end of a stream chunk ("<|fim_"), cut so it never flashes up. */
export function cutPartialSpecialToken(text: string): string {
  const i = text.lastIndexOf('<');
  if (i < 0) return text;
  const tail = text.slice(i);
  return /^<[|｜]?[A-Za-z_▁]*[|｜]?$/.test(tail) && tail.length < 24 ? text.slice(0, i) : text;
}

const indentOf = (line: string) => /^[ \t]*/.exec(line)![0].replace(/\t/g, '    ').length;

/**
 * Anything right of the cursor (code, or just the closers of `def reset(self|)`) → the completion must fit one line:
 * a mid-line suggestion that spills onto new lines would push the rest of the line down below it.
 */
export function wantsSingleLine(lineSuffix: string): boolean {
  return lineSuffix.trim() !== '';
}

/**
 * The raw stream's first complete line (up to the first line break after some content), or undefined while that line
 * is still being written: what can be shown before the rest of a multi-line completion arrives.
 */
export function completeFirstLine(raw: string): string | undefined {
  const text = cutAtSpecialToken(raw).replace(/\r\n/g, '\n');
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
    if (text.slice(0, i).trim() !== '') return text.slice(0, i);
  }
  return undefined;
}

/** Stops at the first blank line after some content: a blank line ends a thought (and usually a statement group). */
export function stopAtBlankLine(text: string): string {
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '' && lines.slice(0, i).some((l) => l.trim() !== '')) return lines.slice(0, i).join('\n');
  }
  return text;
}

/**
 * Stops where the current block ends. `linePrefix` is the cursor line's text before the cursor. When the cursor line
 * opens a block (ends with `{`, `(`, `[` or `:`), the block ends at the first line back at that line's indentation:
 * a closer there (`}`, `)`, `end`) is kept, anything else is dropped. Otherwise the block ends at the first line
 * indented less than the cursor line.
 */
export function stopAtBlockEnd(text: string, linePrefix: string): string {
  const lines = text.split('\n');
  if (lines.length === 1) return text;
  const firstLine = linePrefix + lines[0];
  // On an empty line the block level is where the first real line of the completion starts.
  const base = firstLine.trim() === '' ? indentOf(lines.find((l, i) => i > 0 && l.trim() !== '') ?? firstLine) : indentOf(firstLine);
  const opens = /[({[:]\s*$/.test(firstLine);
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    const ind = indentOf(l);
    if (ind < base) return lines.slice(0, i).join('\n');
    if (opens && ind === base) {
      return /^\s*([)\]}]|end\b)/.test(l) ? lines.slice(0, i + 1).join('\n') : lines.slice(0, i).join('\n');
    }
  }
  return text;
}

/**
 * Stops before the completion starts repeating what already follows the cursor: a completion line equal to the next
 * non-empty line of the document after the cursor's line.
 */
export function stopAtExistingCode(text: string, suffixAfterLine: string): string {
  const next = suffixAfterLine.split('\n').map((l) => l.trim()).find((l) => l !== '');
  if (!next || next.length < 2) return text;
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) if (lines[i].trim() === next) return lines.slice(0, i).join('\n');
  return text;
}

/**
 * In single-line mode, drops the end of the completion that duplicates the rest of the line (the model often writes
 * `foo)` when `)` already follows the cursor).
 */
export function dropLineSuffixOverlap(text: string, lineSuffix: string): string {
  const rest = lineSuffix.trimEnd();
  if (!rest) return text;
  for (let k = Math.min(rest.length, text.length); k > 0; k--) {
    if (text.endsWith(rest.slice(0, k)) && rest.slice(0, k).trim() !== '') return text.slice(0, text.length - k);
  }
  return text;
}

export interface ShapeContext {
  /** The cursor line's text before the cursor. */
  linePrefix: string;
  /** The cursor line's text after the cursor. */
  lineSuffix: string;
  /** Document text after the cursor's line. */
  suffixAfterLine: string;
}

/** Raw continuation → ghost text ('' when nothing useful remains). */
export function shapeCompletion(raw: string, ctx: ShapeContext): string {
  let text = cutAtSpecialToken(raw).replace(/\r\n/g, '\n');
  if (wantsSingleLine(ctx.lineSuffix)) {
    text = dropLineSuffixOverlap(text.split('\n')[0], ctx.lineSuffix);
  } else {
    // A completion that starts with a newline (cursor at the end of a line) keeps it: it moves to the next line.
    text = stopAtBlankLine(text);
    text = stopAtBlockEnd(text, ctx.linePrefix);
    text = stopAtExistingCode(text, ctx.suffixAfterLine);
  }
  text = text.replace(/[ \t]+$/gm, '').replace(/\n+$/, '');
  return text.trim() === '' ? '' : text;
}

/** The stop sequences sent to the engine: it can stop early instead of generating what shapeCompletion drops. */
export function stopSequences(lineSuffix: string): string[] {
  return wantsSingleLine(lineSuffix) ? ['\n'] : ['\n\n', '\r\n\r\n'];
}
