// Builds RepoBench-style next-line items from a local repository, deterministically (same tree → same JSONL).
//
// Per source file (sorted paths): the top-level import statements become `import_statement` and are removed from the
// code; imports that resolve to files of the repository (engine/code/imports.ts, tree-sitter) give the cross-file
// identifiers, each with a snippet (its definition, or a module's signatures) in `context`. Target lines:
//   cross_file_first  – the first line using a cross-file identifier (per identifier; one picked per file)
//   cross_file_random – a later line using one (not that identifier's first use)
//   in_file           – a line using none of them
// Lines that are blank, comments or inside multi-line strings are never targets. `cropped_code` is the import-free code
// before the target, at most 120 lines (RepoBench v1.1). The pick among candidates is a seeded hash of the path, so
// adding a file never changes the items of another.
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Node } from 'web-tree-sitter';
import { extractImports, languageOfPath, resolveImport, topLevelDefinitions, shrinkToDefinitions, type CodeLanguage } from '../code/imports';
import { withTree } from '../code/parser';
import type { RepoBenchItem, RepoBenchSnippet } from './repobench';
import { mulberry32 } from '../random';

export type Setting = 'cross_file_first' | 'cross_file_random' | 'in_file';
export const settings: Setting[] = ['cross_file_first', 'cross_file_random', 'in_file'];

export interface BuildOptions {
  seed: number;
  /** Items per file and setting. */
  perFile: number;
  /** Lines of current-file code kept before the target (RepoBench v1.1: 120). */
  cropLines: number;
  /** Largest snippet per identifier, in characters. */
  snippetChars: number;
  /** Shortest target line (trimmed), so targets carry some content. */
  minLineChars: number;
  /** Write v1.1's all_code (the whole import-free file) into every item; off by default, it dominates the size. */
  includeAllCode: boolean;
}

export const defaultBuildOptions: BuildOptions = { seed: 0, perFile: 1, cropLines: 120, snippetChars: 1200, minLineChars: 6, includeAllCode: false };

const skipDirs = new Set(['.git', 'node_modules', '__pycache__', 'dist', 'out', 'build', '.venv']);

/** A repository's source files (workspace-relative '/' paths), sorted. A Python package dir counts from its parent. */
export function repoFiles(repoDir: string): { root: string; repoName: string; files: string[] } {
  const abs = path.resolve(repoDir);
  const isPackage = existsSync(path.join(abs, '__init__.py'));
  const root = isPackage ? path.dirname(abs) : abs;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) { if (!skipDirs.has(name) && !name.startsWith('.')) walk(p); continue; }
      if (languageOfPath(name) && st.size < 300_000) files.push(path.relative(root, p).split(path.sep).join('/'));
    }
  };
  walk(abs);
  return { root, repoName: path.basename(abs), files: files.sort() };
}

/** FNV-1a 32-bit: a stable hash for seeding. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

const rng = mulberry32;

/** k distinct picks from xs (order of xs kept), seeded. */
function pick<T>(xs: T[], k: number, rand: () => number): T[] {
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [idx[i], idx[j]] = [idx[j], idx[i]]; }
  return idx.slice(0, k).sort((a, b) => a - b).map((i) => xs[i]);
}

interface FileShape {
  /** Rows (0-based) of top-level import statements. */
  importRows: Set<number>;
  /** Rows that are comments or inside multi-line strings/docstrings. */
  quietRows: Set<number>;
}

const importTypes: Record<CodeLanguage, string[]> = {
  python: ['import_statement', 'import_from_statement', 'future_import_statement'],
  typescript: ['import_statement'], tsx: ['import_statement'], javascript: ['import_statement'],
};

function fileShape(text: string, lang: CodeLanguage): Promise<FileShape> {
  return withTree(text, lang, (tree) => {
    const importRows = new Set<number>();
    const quietRows = new Set<number>();
    for (const node of tree.rootNode.namedChildren) {
      if (node && importTypes[lang].includes(node.type)) {
        for (let r = node.startPosition.row; r <= node.endPosition.row; r++) importRows.add(r);
      }
    }
    const quiet = (n: Node) => {
      const multi = n.endPosition.row > n.startPosition.row;
      if (n.type === 'comment') for (let r = n.startPosition.row; r <= n.endPosition.row; r++) quietRows.add(r);
      else if ((n.type === 'string' || n.type === 'template_string') && multi) {
        // Every row the string touches is part of it (the opening row of a docstring included).
        for (let r = n.startPosition.row; r <= n.endPosition.row; r++) quietRows.add(r);
      }
    };
    for (const n of tree.rootNode.descendantsOfType(['comment', 'string', 'template_string'])) if (n) quiet(n);
    return { importRows, quietRows };
  });
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface CrossIdent {
  identifier: string;
  snippet: RepoBenchSnippet;
  /** Matches a use of the identifier (not as an attribute of something else). */
  re: RegExp;
}

async function crossIdentifiers(filePath: string, text: string, lang: CodeLanguage, exists: (p: string) => boolean,
  read: (p: string) => string, opts: BuildOptions): Promise<CrossIdent[]> {
  const out: CrossIdent[] = [];
  const seen = new Set<string>();
  const add = (identifier: string, snippetPath: string, snippet: string) => {
    if (seen.has(identifier) || !/^[A-Za-z_$][\w$]*$/.test(identifier)) return;
    seen.add(identifier);
    out.push({ identifier, snippet: { path: snippetPath, identifier, snippet }, re: new RegExp(`(?<![\\w$.])${escapeRe(identifier)}(?![\\w$])`) });
  };
  for (const ref of await extractImports(text, lang)) {
    const files = resolveImport(ref, filePath, lang, exists);
    if (!files.length) continue;
    const names = ref.names.filter((n) => n !== '*' && n !== 'default');
    if (names.length === 0) {
      // `import pkg.mod` (Python) or a side-effect import: the module is used through its last dotted name.
      if (lang === 'python' && !ref.module.startsWith('.')) {
        const f = files[0];
        add(ref.module.split('.')[0], f, await moduleSnippet(read(f), languageOfPath(f)!, opts));
      }
      continue;
    }
    for (const name of names) {
      // A name that is itself a module file (`from . import events`) is used as `events.x`: show its signatures.
      const sub = files.find((f) => path.posix.basename(f).replace(/\.(py|pyi|tsx?|jsx?|mjs|cjs)$/, '') === name || f.endsWith(`/${name}/__init__.py`));
      if (sub) { add(name, sub, await moduleSnippet(read(sub), languageOfPath(sub)!, opts)); continue; }
      for (const f of files) {
        const src = read(f);
        const flang = languageOfPath(f)!;
        const def = (await topLevelDefinitions(src, flang)).find((d) => d.name === name);
        if (!def) continue;
        const body = src.split('\n').slice(def.startLine, def.endLine + 1).join('\n');
        add(name, f, cutAtLine(body, opts.snippetChars));
        break;
      }
    }
  }
  return out;
}

/** At most `chars` characters, cut at a line end. */
const cutAtLine = (s: string, chars: number) => (s.length <= chars ? s : s.slice(0, Math.max(0, s.lastIndexOf('\n', chars))));

async function moduleSnippet(src: string, lang: CodeLanguage, opts: BuildOptions): Promise<string> {
  if (src.length <= opts.snippetChars) return src;
  const shrunk = shrinkToDefinitions(src, lang, await topLevelDefinitions(src, lang), [], opts.snippetChars);
  return cutAtLine(shrunk, opts.snippetChars);
}

/** Every item of one repository, in file order then setting order. */
export async function buildRepoItems(repoDir: string, options: Partial<BuildOptions> = {}): Promise<RepoBenchItem[]> {
  const opts = { ...defaultBuildOptions, ...options };
  const { root, repoName, files } = repoFiles(repoDir);
  const fileSet = new Set(files);
  const cache = new Map<string, string>();
  const read = (p: string) => {
    let t = cache.get(p);
    if (t === undefined) { t = readFileSync(path.join(root, p), 'utf8').replace(/\r\n/g, '\n'); cache.set(p, t); }
    return t;
  };
  const items: RepoBenchItem[] = [];
  for (const filePath of files) {
    const lang = languageOfPath(filePath)!;
    const text = read(filePath);
    const idents = await crossIdentifiers(filePath, text, lang, (p) => fileSet.has(p), read, opts);
    const shape = await fileShape(text, lang);
    const allLines = text.split('\n');
    const importLines = allLines.filter((_, r) => shape.importRows.has(r));
    // Code without its import statements; remember which original row each code line came from.
    const codeRows = allLines.map((_, r) => r).filter((r) => !shape.importRows.has(r));
    const code = codeRows.map((r) => allLines[r]);
    const firstUse = new Map<string, number>();
    const candidates: Record<Setting, Array<{ line: number; used: CrossIdent[] }>> = { cross_file_first: [], cross_file_random: [], in_file: [] };
    code.forEach((line, i) => {
      const trimmed = line.trim();
      if (shape.quietRows.has(codeRows[i]) || trimmed.length < opts.minLineChars || trimmed.startsWith('#') || trimmed.startsWith('//')) return;
      const used = idents.filter((d) => d.re.test(line.replace(/(["'`]).*?\1/g, '""')));
      const fresh = used.filter((d) => !firstUse.has(d.identifier));
      for (const d of fresh) firstUse.set(d.identifier, i);
      if (i < 3) return; // leave some in-file context
      if (used.length === 0) { candidates.in_file.push({ line: i, used }); return; }
      (fresh.length ? candidates.cross_file_first : candidates.cross_file_random).push({ line: i, used: fresh.length ? fresh : used });
    });
    if (!idents.length && !candidates.in_file.length) continue;
    const context = idents.map((d) => d.snippet);
    for (const setting of settings) {
      const rand = rng(fnv1a(`${opts.seed}:${repoName}:${filePath}:${setting}`));
      for (const c of pick(candidates[setting], opts.perFile, rand)) {
        const cropped = code.slice(Math.max(0, c.line - opts.cropLines), c.line).join('\n');
        const gold = c.used.length ? idents.indexOf(c.used[0]) : -1;
        const item: RepoBenchItem = {
          repo_name: repoName,
          file_path: filePath,
          context,
          import_statement: importLines.join('\n'),
          token_num: 0,
          cropped_code: cropped,
          ...(opts.includeAllCode ? { all_code: code.join('\n') } : {}),
          next_line: code[c.line],
          gold_snippet_index: gold,
          level: '',
          setting,
        };
        // Prompt-length bucket like v1.1's level, from an estimate of 3 characters per token (tiny-coder-hf averages
        // 2.9 on its corpus) so that building needs no model.
        const chars = context.reduce((s, x) => s + x.path.length + x.snippet.length + 12, 0) + item.import_statement.length + cropped.length;
        item.token_num = Math.ceil(chars / 3);
        item.level = levelOf(item.token_num);
        items.push(item);
      }
    }
  }
  return items;
}

export function levelOf(tokens: number): string {
  for (const k of [1, 2, 4, 8, 12, 16, 24, 32, 64, 128]) if (tokens <= k * 1024) return `${k}k`;
  return '128k+';
}

/** Items of several repositories, as JSONL text (one object per line, trailing newline). */
export async function buildJsonl(repoDirs: string[], options: Partial<BuildOptions> = {}): Promise<{ text: string; items: RepoBenchItem[] }> {
  const items: RepoBenchItem[] = [];
  for (const dir of repoDirs) items.push(...(await buildRepoItems(dir, options)));
  return { text: items.map((it) => JSON.stringify(it)).join('\n') + (items.length ? '\n' : ''), items };
}
