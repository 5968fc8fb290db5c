// Loads web-tree-sitter and the grammars once per process and hands out parse trees.
// The wasm files sit next to the bundle in dist/ (esbuild.mjs copies them); under tsx (tests, development) they are
// read from node_modules. SNOUT_WASM_DIR overrides both.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Language, Parser, type Tree } from 'web-tree-sitter';
import type { CodeLanguage } from './languages';

let wasmDirOverride: string | undefined;
let ready: Promise<void> | undefined;
const languages = new Map<CodeLanguage, Promise<Language>>();
let parser: Parser | undefined;

/** Point the loader at a folder holding web-tree-sitter.wasm and tree-sitter-<lang>.wasm (call before first parse). */
export function setWasmDir(dir: string): void {
  wasmDirOverride = dir;
}

function findWasm(file: string, packageDirs: string[]): string {
  const roots = [wasmDirOverride, process.env.SNOUT_WASM_DIR, __dirname].filter((d): d is string => !!d);
  // Development layout: <repo>/engine/code/ → <repo>/node_modules/<package>/...
  const repo = path.resolve(__dirname, '..', '..');
  const candidates = [...roots.map((r) => path.join(r, file)), ...packageDirs.map((d) => path.join(repo, 'node_modules', d, file))];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`tree-sitter: cannot find ${file} (looked in ${candidates.join(', ')})`);
  return found;
}

function init(): Promise<void> {
  ready ??= Parser.init({ locateFile: () => findWasm('web-tree-sitter.wasm', ['web-tree-sitter']) });
  return ready;
}

function loadLanguage(lang: CodeLanguage): Promise<Language> {
  let l = languages.get(lang);
  if (!l) {
    l = init().then(() => Language.load(findWasm(`tree-sitter-${lang}.wasm`, ['@vscode/tree-sitter-wasm/wasm'])));
    languages.set(lang, l);
  }
  return l;
}

/**
 * Parses `text` and passes the tree to `use`; the tree is freed afterwards (wasm memory is not garbage collected).
 * Parsing is synchronous once the grammar is loaded, so one shared parser is safe in a single-threaded process.
 */
export async function withTree<T>(text: string, lang: CodeLanguage, use: (tree: Tree) => T): Promise<T> {
  const language = await loadLanguage(lang);
  parser ??= new Parser();
  parser.setLanguage(language);
  const tree = parser.parse(text);
  if (!tree) throw new Error(`tree-sitter: parse failed (${lang})`);
  try {
    return use(tree);
  } finally {
    tree.delete();
  }
}
