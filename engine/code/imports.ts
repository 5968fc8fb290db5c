// What a source file imports, and which workspace files those imports are.
// Extraction reads the tree-sitter tree (so strings and comments never look like imports); resolution is pure path
// logic over an `exists` callback, so it runs the same over a real workspace, a fixture or an in-memory file list.
import path from 'node:path';
import type { Node } from 'web-tree-sitter';
import type { CodeLanguage } from './languages';
import { withTree } from './parser';

export { languageOfPath, languageOfId, type CodeLanguage } from './languages';
export { topLevelDefinitions, shrinkToDefinitions, relevantDefinitions, type Definition } from './definitions';
export { setWasmDir } from './parser';

export interface ImportRef {
  /**
   * The module as written: './x', '../y/z', 'pkg/sub' (JS/TS); 'a.b', '.', '..pkg.mod' (Python: leading dots are
   * the relative level).
   */
  module: string;
  /** Names taken from it: 'default' for a default import, '*' for namespace/wildcard; empty = the whole module. */
  names: string[];
  /** 0-based line of the first occurrence. */
  line: number;
}

export interface ResolvedImport extends ImportRef {
  /** Workspace-relative, '/'-separated paths of the files this import reads (usually one). */
  files: string[];
}

const unquote = (n: Node | null): string | undefined => {
  if (!n) return undefined;
  if (n.type === 'string') {
    const frag = n.namedChildren.find((c) => c?.type === 'string_fragment');
    return frag ? frag.text : '';
  }
  if (n.type === 'template_string' && n.namedChildCount === 0) return n.text.slice(1, -1);
  return undefined;
};

function jsImports(root: Node): ImportRef[] {
  const out: ImportRef[] = [];
  for (const node of root.descendantsOfType(['import_statement', 'export_statement', 'call_expression'])) {
    if (!node) continue;
    if (node.type === 'call_expression') {
      const fn = node.childForFieldName('function');
      const isRequire = fn?.type === 'identifier' && fn.text === 'require';
      if (!isRequire && fn?.type !== 'import') continue;
      const arg = node.childForFieldName('arguments')?.namedChildren[0] ?? null;
      const module = unquote(arg);
      if (module) out.push({ module, names: [], line: node.startPosition.row });
      continue;
    }
    const module = unquote(node.childForFieldName('source'));
    if (module === undefined) continue; // a plain `export function ...`
    const names: string[] = [];
    for (const c of node.descendantsOfType(['import_specifier', 'export_specifier', 'namespace_import', 'namespace_export'])) {
      if (!c) continue;
      if (c.type === 'namespace_import' || c.type === 'namespace_export') names.push('*');
      else names.push(c.childForFieldName('name')?.text ?? c.text);
    }
    const clause = node.namedChildren.find((c) => c?.type === 'import_clause');
    if (clause?.namedChildren.some((c) => c?.type === 'identifier')) names.push('default');
    // `export * from './x'` has no specifier node: the whole module is re-exported.
    if (node.type === 'export_statement' && node.children.some((c) => c?.type === '*') && !names.includes('*')) names.push('*');
    out.push({ module, names, line: node.startPosition.row });
  }
  return out;
}

function pythonImports(root: Node): ImportRef[] {
  const out: ImportRef[] = [];
  for (const node of root.descendantsOfType(['import_statement', 'import_from_statement'])) {
    if (!node) continue;
    const line = node.startPosition.row;
    if (node.type === 'import_statement') {
      // `import a.b as c, d`: each is a whole-module import.
      for (const n of node.childrenForFieldName('name')) {
        if (!n) continue;
        const dotted = n.type === 'aliased_import' ? n.childForFieldName('name') : n;
        if (dotted) out.push({ module: dotted.text, names: [], line });
      }
      continue;
    }
    const module = node.childForFieldName('module_name')?.text.replace(/\s+/g, '');
    if (!module) continue;
    const names: string[] = [];
    for (const n of node.childrenForFieldName('name')) {
      if (!n) continue;
      names.push((n.type === 'aliased_import' ? n.childForFieldName('name') : n)?.text ?? n.text);
    }
    if (node.namedChildren.some((c) => c?.type === 'wildcard_import')) names.push('*');
    out.push({ module, names, line });
  }
  return out;
}

/** Merges repeated imports of one module (first line wins, names united, order kept). */
function merge(refs: ImportRef[]): ImportRef[] {
  const byModule = new Map<string, ImportRef>();
  for (const r of refs) {
    const seen = byModule.get(r.module);
    if (!seen) byModule.set(r.module, { ...r, names: [...new Set(r.names)] });
    else for (const n of r.names) if (!seen.names.includes(n)) seen.names.push(n);
  }
  return [...byModule.values()].sort((a, b) => a.line - b.line);
}

/** The imports written in `text`, in order of first appearance. */
export function extractImports(text: string, lang: CodeLanguage): Promise<ImportRef[]> {
  return withTree(text, lang, (tree) => merge(lang === 'python' ? pythonImports(tree.rootNode) : jsImports(tree.rootNode)));
}

const posix = path.posix;
const jsExtensions = ['.ts', '.tsx', '.d.ts', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs'];
// TypeScript's ESM convention: `import './x.js'` names the output of x.ts.
const emittedFrom: Record<string, string[]> = { '.js': ['.ts', '.tsx'], '.jsx': ['.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] };

/** A workspace-relative path, or undefined when `p` climbs out of the workspace. */
function inside(p: string): string | undefined {
  const n = posix.normalize(p);
  return n.startsWith('../') || n === '..' || posix.isAbsolute(n) ? undefined : n.replace(/^\.\//, '');
}

function resolveJsPath(base: string, exists: (p: string) => boolean): string | undefined {
  const candidates: string[] = [base];
  const ext = posix.extname(base);
  for (const e of emittedFrom[ext] ?? []) candidates.push(base.slice(0, -ext.length) + e);
  for (const e of jsExtensions) candidates.push(base + e);
  for (const e of jsExtensions) candidates.push(posix.join(base, 'index' + e));
  return candidates.find((c) => c !== '' && posix.extname(c) !== '' && exists(c));
}

function resolveJs(ref: ImportRef, fromPath: string, exists: (p: string) => boolean): string[] {
  const m = ref.module;
  if (m.startsWith('./') || m.startsWith('../') || m === '.' || m === '..') {
    const base = inside(posix.join(posix.dirname(fromPath), m));
    const hit = base !== undefined ? resolveJsPath(base, exists) : undefined;
    return hit ? [hit] : [];
  }
  // Bare specifiers are packages (node_modules never enters the context), except path-like ones that projects map
  // to their own folders (tsconfig baseUrl/paths): try them from the root and from src/.
  if (m.startsWith('@') || !m.includes('/') || m.includes(':')) return [];
  for (const root of ['', 'src/']) {
    const base = inside(root + m);
    const hit = base !== undefined ? resolveJsPath(base, exists) : undefined;
    if (hit) return [hit];
  }
  return [];
}

function pythonModuleFile(dir: string, parts: string[], exists: (p: string) => boolean): string | undefined {
  const base = inside(posix.join(dir, ...parts));
  if (base === undefined) return undefined;
  if (parts.length === 0) return [posix.join(base, '__init__.py')].find(exists);
  return [`${base}.py`, `${base}.pyi`, posix.join(base, '__init__.py')].find(exists);
}

function resolvePython(ref: ImportRef, fromPath: string, exists: (p: string) => boolean): string[] {
  const level = /^\.*/.exec(ref.module)![0].length;
  const parts = ref.module.slice(level).split('.').filter(Boolean);
  let roots: string[];
  if (level > 0) {
    // One dot is the file's own package; each further dot climbs one folder, never above the workspace.
    const segments = posix.dirname(fromPath).split('/').filter((s) => s !== '.' && s !== '');
    if (level - 1 > segments.length) return [];
    roots = [segments.slice(0, segments.length - (level - 1)).join('/') || '.'];
  } else {
    // Absolute imports resolve against sys.path; in a repository that is the folder of the script, one of its
    // ancestors (the package root), or src/. Nearest first.
    roots = [];
    for (let dir = posix.dirname(fromPath); ; dir = posix.dirname(dir)) {
      roots.push(dir);
      if (dir === '.' || dir === '/' || dir === '') break;
    }
    roots.push('src');
  }
  for (const root of roots) {
    const files: string[] = [];
    // `from pkg import mod` may name submodules; names that are not submodules live in pkg itself.
    let needsModule = ref.names.length === 0 || ref.names.includes('*');
    for (const name of ref.names) {
      if (name === '*') continue;
      const sub = pythonModuleFile(root, [...parts, name], exists);
      if (sub) files.push(sub);
      else needsModule = true;
    }
    if (needsModule) {
      const own = pythonModuleFile(root, parts, exists);
      if (own) files.unshift(own);
      else if (files.length === 0) continue;
    }
    if (files.length) return files.filter((f) => f !== fromPath);
  }
  return [];
}

/** The workspace files `ref` (written in `fromPath`) reads; [] for packages outside the workspace. */
export function resolveImport(ref: ImportRef, fromPath: string, lang: CodeLanguage, exists: (p: string) => boolean): string[] {
  const from = fromPath.replace(/\\/g, '/');
  return lang === 'python' ? resolvePython(ref, from, exists) : resolveJs(ref, from, exists);
}

/**
 * The current file's imports resolved to workspace files, in import order, each file listed once (at its first
 * import) and never the file itself.
 */
export async function resolvedImports(fromPath: string, text: string, lang: CodeLanguage,
  exists: (p: string) => boolean): Promise<ResolvedImport[]> {
  const seen = new Set<string>([fromPath]);
  const out: ResolvedImport[] = [];
  for (const ref of await extractImports(text, lang)) {
    const files = resolveImport(ref, fromPath, lang, exists).filter((f) => !seen.has(f));
    files.forEach((f) => seen.add(f));
    if (files.length) out.push({ ...ref, files });
  }
  return out;
}
