// engine/code: imports and definitions read by tree-sitter from the fixture repository, resolved to its files.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  extractImports, languageOfPath, relevantDefinitions, resolvedImports, topLevelDefinitions,
} from '../../engine/code/imports';

const repo = path.resolve(__dirname, '../fixtures/repo-mixed');
const read = (rel: string) => readFileSync(path.join(repo, rel), 'utf8');
const exists = (rel: string) => existsSync(path.join(repo, rel)) && statSync(path.join(repo, rel)).isFile();

async function importsOf(rel: string) {
  const lang = languageOfPath(rel)!;
  return resolvedImports(rel, read(rel), lang, exists);
}

test('TypeScript: relative, index, .js→.ts, default, require and dynamic imports resolve; packages do not', async () => {
  const refs = await extractImports(read('src/app.ts'), 'typescript');
  assert.deepEqual(refs.map((r) => r.module),
    ['./util', './models', './lib.js', './greeter', 'node:events', 'lodash', './legacy', './lazy']);
  assert.deepEqual(refs[0].names, ['formatPrice', 'sum']);
  assert.deepEqual(refs[1].names, ['User', 'Role']);
  assert.deepEqual(refs[2].names, ['*']);
  assert.deepEqual(refs[3].names, ['default']);
  const resolved = await importsOf('src/app.ts');
  assert.deepEqual(resolved.map((r) => r.files), [
    ['src/util.ts'], ['src/models/index.ts'], ['src/lib.ts'], ['src/greeter.tsx'], ['src/legacy.js'], ['src/lazy.ts'],
  ]);
});

test('TypeScript: imports inside strings and comments are not imports; re-exports are', async () => {
  assert.deepEqual(await extractImports(read('src/strings.ts'), 'typescript'), []);
  const resolved = await importsOf('src/models/index.ts');
  assert.deepEqual(resolved.map((r) => [r.module, r.files, r.names]), [['./user', ['src/models/user.ts'], ['User', 'Role']]]);
  assert.deepEqual((await importsOf('src/greeter.tsx')).map((r) => r.files), [['src/util.ts']]);
});

test('Python: packages, submodules, __init__.py and relative imports (from . / from ..) resolve', async () => {
  const main = await importsOf('py/main.py');
  assert.deepEqual(main.map((r) => [r.module, r.files]), [
    ['pkg.helpers', ['py/pkg/helpers.py']],
    // `from pkg import core`: core is a submodule, so pkg/__init__.py itself is not needed.
    ['pkg', ['py/pkg/core.py']],
    ['pkg.sub.deep', ['py/pkg/sub/deep.py']],
  ]);
  const deep = await importsOf('py/pkg/sub/deep.py');
  assert.deepEqual(deep.map((r) => [r.module, r.files]), [
    // helpers is a submodule of the parent package, DEFAULT_NAME a name in its __init__.py.
    ['..', ['py/pkg/__init__.py', 'py/pkg/helpers.py']],
    ['..core', ['py/pkg/core.py']],
    // `from . import missing_module`: the name is not a file, so it lives in the package's __init__.py.
    ['.', ['py/pkg/sub/__init__.py']],
  ]);
  const core = await importsOf('py/pkg/core.py');
  assert.deepEqual(core.map((r) => r.files), [['py/pkg/helpers.py']]); // the second import of helpers is merged away
});

test('relative imports never climb out of the workspace', async () => {
  const r = await resolvedImports('a.ts', "import x from '../outside/a';\nimport y from '../../etc/passwd';\n", 'typescript', () => true);
  assert.deepEqual(r, []);
  const p = await resolvedImports('pkg/m.py', 'from ... import x\n', 'python', () => true);
  assert.deepEqual(p, []);
  const up = await resolvedImports('pkg/m.py', 'from .. import x\n', 'python', () => true);
  assert.deepEqual(up.map((r) => r.files), [['x.py']]);
});

test('top-level definitions: names, kinds, line ranges with doc comments and decorators', async () => {
  const util = read('src/util.ts');
  const defs = await topLevelDefinitions(util, 'typescript');
  assert.deepEqual(defs.map((d) => [d.name, d.kind]), [
    ['sum', 'function'], ['formatPrice', 'function'], ['clamp', 'function'], ['Stopwatch', 'class'], ['Range', 'interface'],
    ['Pair', 'type'], ['Level', 'enum'], ['internalHelper', 'function'], ['slugify', 'function'],
  ]);
  const lines = util.split('\n');
  for (const d of defs) {
    // Each range starts at its doc comment or declaration and ends on a line that closes it.
    assert.match(lines[d.startLine], /^(\/\*\*|export|function)/, d.name);
    assert.match(lines[d.endLine], /(\}|;)\s*$/, d.name);
  }
  const sum = defs[0];
  assert.equal(lines[sum.startLine], '/** Sums a list of numbers. */');
  assert.equal(sum.exported, true);
  assert.equal(defs.find((d) => d.name === 'internalHelper')!.exported, false);
  const greeter = await topLevelDefinitions(read('src/greeter.tsx'), 'tsx');
  assert.deepEqual(greeter.map((d) => [d.name, d.isDefault]), [['greet', true]]);

  const py = await topLevelDefinitions(read('py/pkg/helpers.py'), 'python');
  assert.deepEqual(py.map((d) => [d.name, d.kind, d.startLine, d.endLine]), [
    ['Options', 'class', 3, 5], ['parse', 'function', 8, 9], ['describe', 'function', 12, 13], ['LIMIT', 'variable', 16, 16],
  ]);
});

test('a too-large file shrinks to the wanted definitions whole and the others as signatures', async () => {
  const util = read('src/util.ts');
  const shrunk = await relevantDefinitions(util, 'typescript', ['slugify'], 700);
  assert.ok(shrunk.length <= 700, `${shrunk.length} chars`);
  // slugify whole (its body is there), sum only as a signature (its body is not).
  assert.ok(shrunk.includes("return internalHelper(title).replace(/[^a-z0-9]+/g, '-');"));
  assert.ok(shrunk.includes('export function sum(xs: number[]): number {'));
  assert.ok(!shrunk.includes('for (const x of xs) total += x;'));
  assert.ok(shrunk.includes('  // ...'));
  // Types keep their body (they are the API).
  assert.ok(shrunk.includes('  lo: number;'));
  // Fits unchanged when under budget.
  assert.equal(await relevantDefinitions(util, 'typescript', ['slugify'], 100_000), util);
  // A tiny budget keeps the wanted definition before any unwanted signature.
  const tiny = await relevantDefinitions(util, 'typescript', ['formatPrice'], 150);
  assert.ok(tiny.length <= 150);
  assert.ok(tiny.includes('export function formatPrice('), tiny);
  assert.ok(!tiny.includes('Stopwatch') && !tiny.includes('sum('), tiny);

  const py = await relevantDefinitions(read('py/pkg/core.py'), 'python', ['Engine'], 250);
  assert.ok(py.includes('    def start(self, thing):'), py);
  assert.ok(py.length <= 250, py);
  assert.ok(!py.includes('return None'), py);
  // An unwanted class keeps its methods' signatures (valid Python: each body is `...`).
  const sigs = await relevantDefinitions(read('py/pkg/core.py'), 'python', ['_private'], 240);
  assert.ok(sigs.includes('def _private():\n    return None'), sigs);
  assert.ok(sigs.includes('class Engine:\n    """Runs things."""\n    def __init__(self, options):\n        ...\n    def start(self, thing):\n        ...\n'), sigs);
  assert.ok(!sigs.includes('self.options = options'), sigs);
  const ts = await relevantDefinitions(read('src/util.ts'), 'typescript', ['slugify'], 900);
  assert.ok(ts.includes('export class Stopwatch {\n  private start = Date.now();\n  elapsed(): number {\n    // ...\n  }\n  reset(): void {\n    // ...\n  }\n}'), ts);
});
