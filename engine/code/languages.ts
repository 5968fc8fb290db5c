// Which tree-sitter grammar reads which file. Pure data, shared by the extension and the engine's evaluation code.

/** Grammars Snout ships (esbuild.mjs copies exactly these wasm files next to the bundles). */
export type CodeLanguage = 'typescript' | 'tsx' | 'javascript' | 'python';

const byExtension: Record<string, CodeLanguage> = {
  '.ts': 'typescript', '.mts': 'typescript', '.cts': 'typescript',
  '.tsx': 'tsx',
  '.js': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript', '.jsx': 'javascript',
  '.py': 'python', '.pyi': 'python',
};

/** VS Code language ids → grammar (used when a document has no telling extension, e.g. untitled). */
const byLanguageId: Record<string, CodeLanguage> = {
  typescript: 'typescript', typescriptreact: 'tsx', javascript: 'javascript', javascriptreact: 'javascript',
  python: 'python',
};

export function languageOfPath(filePath: string): CodeLanguage | undefined {
  const dot = filePath.lastIndexOf('.');
  if (dot < 0 || dot < filePath.lastIndexOf('/')) return undefined;
  return byExtension[filePath.slice(dot).toLowerCase()];
}

export function languageOfId(languageId: string): CodeLanguage | undefined {
  return byLanguageId[languageId];
}

/** The comment a line of elided code is replaced by when a file is shrunk to its definitions. */
export function lineComment(lang: CodeLanguage): string {
  return lang === 'python' ? '#' : '//';
}
