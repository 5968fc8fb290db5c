// Builds the three programs Snout ships: the extension host side, the engine process and the CLI.
// engine/ and extension/ are bundled separately so the extension bundle never pulls in onnxruntime.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');
const outdir = 'dist';
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // Native addons and the VS Code API are resolved at run time, never bundled.
  external: ['vscode', 'onnxruntime-node'],
  // web-tree-sitter's ESM build uses import.meta; the .cjs build bundles cleanly.
  alias: { 'web-tree-sitter': require.resolve('web-tree-sitter').replace(/web-tree-sitter\.(js|cjs)$/, 'web-tree-sitter.cjs') },
};

/** Entry points: [source, output name]. Helpers add theirs here (workers need their own bundle). */
export const entries = [
  ['extension/extension.ts', 'extension'],
  ['engine/main.ts', 'engine'],
  ['engine/cli.ts', 'cli'],
  ['engine/attention/worker.ts', 'attention-worker'],
  ['engine/prompt/template-worker.ts', 'template-worker'],
].filter(([src]) => existsSync(src));

const contexts = await Promise.all(entries.map(([src, name]) =>
  esbuild.context({ ...common, entryPoints: { [name]: src }, outdir,
    banner: name === 'cli' ? { js: '#!/usr/bin/env node' } : undefined })));

/** Browser bundles (webview scripts, no Node): [source, output name]. */
export const webEntries = [
  ['extension/ask/webview/main.ts', 'ask'],
].filter(([src]) => existsSync(src));
contexts.push(...await Promise.all(webEntries.map(([src, name]) => esbuild.context({
  bundle: true, platform: 'browser', format: 'iife', target: 'es2020', minify: true, sourcemap: false, logLevel: 'warning',
  entryPoints: { [name]: src }, outdir,
}))));

// Runtime assets that must sit next to the bundles.
const wasmDir = path.dirname(require.resolve('@vscode/tree-sitter-wasm/package.json'));
const assets = [
  [require.resolve('web-tree-sitter').replace(/web-tree-sitter\.(js|cjs)$/, 'web-tree-sitter.wasm'), 'web-tree-sitter.wasm'],
  ...['typescript', 'tsx', 'javascript', 'python'].map((g) => [path.join(wasmDir, 'wasm', `tree-sitter-${g}.wasm`), `tree-sitter-${g}.wasm`]),
];
for (const [from, to] of assets) if (existsSync(from)) copyFileSync(from, path.join(outdir, to));

if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
