// Long packed-repository prompts in the model's own layout (<|repo_name|>name\n<|file_sep|>path\ntext …), the
// sequence format tiny-coder-hf was trained on, cut to a token count. Used by the fidelity run.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { TokenizerLike } from '../generate/types';
import { detectPromptFormat } from '../prompt';
import { encodeSegments, type Segment } from '../prompt/segments';
import { repoFiles } from './build';

export interface PackedPrompt {
  name: string;
  ids: number[];
}

/**
 * `count` prompts of exactly `tokens` tokens, cycling over the repositories; prompt i of a repository starts at a
 * different file (files sorted, rotated by i · 7) so prompts of one repository differ. Deterministic.
 */
export function packedPrompts(tok: TokenizerLike, repoDirs: string[], count: number, tokens: number): PackedPrompt[] {
  const fmt = detectPromptFormat(tok);
  const out: PackedPrompt[] = [];
  for (let i = 0; i < count; i++) {
    const dir = repoDirs[i % repoDirs.length];
    const { root, repoName, files } = repoFiles(dir);
    if (!files.length) throw new Error(`no source files in ${dir}`);
    const round = Math.floor(i / repoDirs.length);
    const start = (round * 7) % files.length;
    const order = [...files.slice(start), ...files.slice(0, start)];
    const seg: Segment[] = [];
    if (fmt.repoName) seg.push({ special: fmt.repoName }, { text: `${repoName}\n` });
    let chars = 0;
    for (const f of order) {
      const text = readFileSync(path.join(root, f), 'utf8');
      if (fmt.fileSep) seg.push({ special: fmt.fileSep }, { text: `${f}\n${text.endsWith('\n') ? text : text + '\n'}` });
      else seg.push({ text: `# Path: ${f}\n${text}\n` });
      chars += text.length;
      if (chars > tokens * 8) break; // far more than enough: no token is shorter than a character
    }
    const ids = encodeSegments(tok, seg, true).slice(0, tokens);
    if (ids.length < tokens) throw new Error(`${dir}: only ${ids.length} tokens of source, need ${tokens}`);
    out.push({ name: `${repoName}#${round}`, ids });
  }
  return out;
}

/** The model's held-out Python packages on this machine (tiny-coder-hf never saw json, email, asyncio). */
export function heldOutStdlib(): string[] {
  const roots = ['/usr/lib', '/usr/local/lib'].flatMap((r) => (existsSync(r) ? readdirSync(r).filter((d) => /^python3\.\d+$/.test(d)).sort().reverse().map((d) => path.join(r, d)) : []));
  for (const r of roots) {
    const pk = ['json', 'email', 'asyncio'].map((p) => path.join(r, p));
    if (pk.every((p) => existsSync(path.join(p, '__init__.py')))) return pk;
  }
  return [];
}
