// extension/context: workspace scan (checked against git's own ignore rules), secret/binary filters, ranking, the
// FIM window, and the packer's RepoBench order, budget and keystroke stability on the fixture repository.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeText } from '../../extension/context/decode';
import { fimWindow } from '../../extension/context/fim';
import { WorkspaceFiles } from '../../extension/context/files';
import { ContextPacker } from '../../extension/context/packer';
import { pathDistance, rankFiles } from '../../extension/context/rank';
import { Recency } from '../../extension/context/recency';
import { inSkippedDir, scanWorkspace } from '../../extension/context/scan';
import { isSecretPath, looksLikeSecret } from '../../extension/context/secrets';
import { TokenEstimator } from '../../extension/context/tokens';

const fixture = path.resolve(__dirname, '../fixtures/repo-mixed');
let repo: string;

before(() => {
  // A scratch copy with the things a real checkout has and a fixture cannot commit: dependencies, build output, a
  // nested .gitignore, a huge file.
  repo = mkdtempSync(path.join(os.tmpdir(), 'snout-repo-'));
  cpSync(fixture, repo, { recursive: true });
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true });
    writeFileSync(path.join(repo, rel), text);
  };
  put('node_modules/leftpad/index.js', 'module.exports = (s) => s;\n');
  put('build/app.js', 'console.log(1);\n');
  put('generated/schema.ts', 'export const x = 1;\n');
  put('scratch.tmp', 'tmp\n');
  put('src/.gitignore', '*.gen.ts\n!keep.gen.ts\n');
  put('src/api.gen.ts', 'export const gen = 1;\n');
  put('src/keep.gen.ts', 'export const keep = 1;\n');
  put('src/big.ts', `export const big = [${'1, '.repeat(2000)}];\n`);
  put('tmp/scratch.ts', 'export const scratch = 1;\n');
});

after(() => rmSync(repo, { recursive: true, force: true }));

test('scan honours .gitignore exactly as git does, plus files.exclude, size, secrets and binaries', async () => {
  const scanned = (await scanWorkspace(repo, { exclude: ['**/tmp/**', '{docs,config}/deploy.md'], maxFileBytes: 4000 })).map((f) => f.path);
  // Independent reference: git's own view of the untracked, non-ignored files of the same tree.
  execFileSync('git', ['init', '-q'], { cwd: repo });
  const gitSees = execFileSync('git', ['ls-files', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8' })
    .split('\n').filter(Boolean).filter((p) => !p.startsWith('node_modules/'));
  rmSync(path.join(repo, '.git'), { recursive: true, force: true });
  const expectedDropped = new Set([
    '.env', '.env.local', 'keys/server.pem', 'keys/deploy.key', 'keys/id_rsa.pub', 'config/credentials.json', // secrets by name
    'assets/logo.png', // binary by extension
    'src/big.ts', // over maxFileBytes
    'tmp/scratch.ts', 'docs/deploy.md', // files.exclude (with a brace pattern)
  ]);
  for (const p of expectedDropped) assert.ok(gitSees.includes(p), `git lists ${p}`);
  assert.deepEqual(scanned, gitSees.filter((p) => !expectedDropped.has(p)).sort());
  assert.ok(scanned.includes('src/keep.gen.ts') && !scanned.includes('src/api.gen.ts'), 'nested .gitignore with negation');
  assert.ok(!scanned.some(inSkippedDir));
  assert.ok(inSkippedDir('node_modules/leftpad/index.js') && inSkippedDir('a/.git/HEAD') && !inSkippedDir('src/git.ts'));
});

test('secret names and contents, binary and non-UTF-8 bytes are recognised', () => {
  for (const p of ['.env', 'app/.env.production', 'a/b.pem', 'tls.key', 'id_rsa', 'home/id_ed25519.pub', 'c.p12',
    'credentials', 'aws/credentials.json', '.npmrc', 'x/.ssh/config']) assert.ok(isSecretPath(p), p);
  for (const p of ['src/env.ts', 'keyboard.ts', 'docs/credentials-guide.md', 'pem.py', 'src/keys.ts']) assert.ok(!isSecretPath(p), p);
  assert.ok(looksLikeSecret(readFileSync(path.join(fixture, 'docs/notes.txt'), 'utf8')));
  assert.ok(looksLikeSecret('x = "AKIAABCDEFGHIJKLMNOP"'));
  assert.ok(!looksLikeSecret(readFileSync(path.join(fixture, 'src/util.ts'), 'utf8')));
  assert.equal(decodeText(readFileSync(path.join(fixture, 'assets/logo.png'))), undefined);
  assert.equal(decodeText(readFileSync(path.join(fixture, 'docs/latin1.txt'))), undefined);
  assert.equal(decodeText(Buffer.from('naïve ✓\n')), 'naïve ✓\n');
});

test('workspace reads refuse secret contents and prefer unsaved editor text', async () => {
  const store = new WorkspaceFiles(repo);
  store.setFiles(await scanWorkspace(repo));
  assert.ok(store.has('docs/notes.txt'));
  assert.equal(await store.read('docs/notes.txt'), undefined); // private key inside
  assert.equal(await store.read('docs/latin1.txt'), undefined); // not UTF-8
  assert.equal(await store.read('.env'), undefined); // never scanned
  store.overlay.set('src/lib.ts', 'export const VERSION = "dirty";\n');
  assert.equal(await store.read('src/lib.ts'), 'export const VERSION = "dirty";\n');
});

test('ranking: recency first, then folder distance and language, ties by path', () => {
  assert.equal(pathDistance('src/a.ts', 'src/b.ts'), 0);
  assert.equal(pathDistance('src/a.ts', 'src/models/user.ts'), 1);
  assert.equal(pathDistance('src/a.ts', 'py/pkg/core.py'), 3);
  const candidates = ['py/pkg/core.py', 'src/z.ts', 'src/models/user.ts', 'README.md', 'src/b.ts', 'src/a.test.ts'];
  const recency = new Recency();
  assert.deepEqual(rankFiles({ current: 'src/a.ts', candidates, recency: (p) => recency.rank(p) }),
    ['src/a.test.ts', 'src/b.ts', 'src/z.ts', 'src/models/user.ts', 'README.md', 'py/pkg/core.py']);
  // Same distance, same language first: the sibling .md after the sibling .ts, a nearby .js before a nearby .md.
  assert.deepEqual(rankFiles({ current: 'src/a.ts', candidates: ['src/notes.md', 'src/b.js', 'src/c.ts'], recency: () => undefined }),
    ['src/b.js', 'src/c.ts', 'src/notes.md']);
  recency.touch('src/z.ts');
  recency.touch('py/pkg/core.py'); // most recent
  assert.deepEqual(rankFiles({ current: 'src/a.ts', candidates, recency: (p) => recency.rank(p) }).slice(0, 3),
    ['py/pkg/core.py', 'src/z.ts', 'src/a.test.ts']);
});

test('FIM window: whole file when it fits; otherwise a line-aligned prefix start that stays put while typing', () => {
  const text = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(20)}`).join('\n');
  const whole = fimWindow(text, 100, 100_000);
  assert.equal(whole.prefix + whole.suffix, text);
  const cursor = text.indexOf('line 150');
  const w = fimWindow(text, cursor, 2000);
  assert.ok(w.prefix.length + w.suffix.length <= 2000);
  assert.ok(text.slice(0, cursor).endsWith(w.prefix) && text.slice(cursor).startsWith(w.suffix));
  assert.match(w.prefix, /^line \d+ /); // starts on a line start
  assert.equal(Number(/^line (\d+)/.exec(w.prefix)![1]) % 16, 0); // on the quantum
  // Typing 40 characters at the cursor moves the prefix start only by whole quanta, never by the typed amount.
  let typed = text;
  let c = cursor;
  const starts = new Set<string>();
  for (let k = 0; k < 40; k++) {
    typed = typed.slice(0, c) + 'y' + typed.slice(c);
    c++;
    starts.add(fimWindow(typed, c, 2000).prefix.slice(0, 12));
  }
  assert.ok(starts.size <= 2, [...starts].join('|'));
});

// The selection tests read the importance order (the fixture's mtimes are whatever the checkout wrote); the
// stability order has its own tests in context-order.test.ts.
async function packerFor(contextTokens = 32768) {
  const store = new WorkspaceFiles(repo);
  store.setFiles(await scanWorkspace(repo));
  const packer = new ContextPacker(store, new Recency(), new TokenEstimator(3.5), 'repo-mixed', 'importance');
  return { store, packer, budget: { contextTokens, maxTokens: 64 } };
}

const appText = () => readFileSync(path.join(repo, 'src/app.ts'), 'utf8');

test('packer: imports first in import order, then ranked files, never secrets, the current file as FIM', async () => {
  const { packer, budget } = await packerFor();
  const text = appText();
  const offset = text.indexOf('  lazy.run();');
  const p = await packer.pack({ path: 'src/app.ts', text, offset }, budget);
  const paths = p.files.map((f) => f.path);
  assert.deepEqual(paths.slice(0, 6), ['src/util.ts', 'src/models/index.ts', 'src/lib.ts', 'src/greeter.tsx', 'src/legacy.js', 'src/lazy.ts']);
  assert.ok(p.sources.slice(0, 6).every((s) => s.kind === 'import' && !s.shrunk));
  // models/index.ts re-exports user.ts: two hops away, so it leads the ranked files.
  assert.equal(paths[6], 'src/models/user.ts');
  assert.ok(!paths.includes('src/app.ts'));
  for (const bad of ['.env', 'docs/notes.txt', 'keys/server.pem', 'assets/logo.png', 'docs/latin1.txt', 'build/app.js']) assert.ok(!paths.includes(bad), bad);
  assert.equal(p.prefix + p.suffix, text);
  assert.equal(p.prefix, text.slice(0, offset));
  // Everything fits: every scanned text file made it in.
  assert.ok(paths.includes('py/pkg/core.py') && paths.includes('README.md'));
  assert.ok(p.estimatedTokens <= budget.contextTokens);
});

test('packer: the file list is identical across keystrokes and only re-ranks on invalidate or file switch', async () => {
  const { packer, budget } = await packerFor(1500);
  let text = appText();
  let offset = text.indexOf('  lazy.run();');
  const first = await packer.pack({ path: 'src/app.ts', text, offset }, budget);
  assert.equal(first.reused, false);
  for (const ch of 'const extra = 42;\n') {
    text = text.slice(0, offset) + ch + text.slice(offset);
    offset++;
    const next = await packer.pack({ path: 'src/app.ts', text, offset }, budget);
    assert.equal(next.reused, true);
    assert.equal(next.files, first.files); // same array: the prompt before the current file is byte-identical
    assert.ok(next.prefix.endsWith(text.slice(0, offset).slice(-20)));
  }
  packer.invalidate();
  const again = await packer.pack({ path: 'src/app.ts', text, offset }, budget);
  assert.equal(again.reused, false);
  assert.deepEqual(again.files, first.files); // deterministic re-rank
  const other = await packer.pack({ path: 'py/main.py', text: readFileSync(path.join(repo, 'py/main.py'), 'utf8'), offset: 0 }, budget);
  assert.equal(other.reused, false);
  assert.deepEqual(other.files.slice(0, 3).map((f) => f.path), ['py/pkg/helpers.py', 'py/pkg/core.py', 'py/pkg/sub/deep.py']);
});

test('packer: a too-large import is shrunk to the definitions the file uses; the budget holds', async () => {
  // 600 tokens: the repository half gets ~250, an import at most a quarter of that, far less than util.ts needs.
  const { packer, budget } = await packerFor(600);
  const text = appText();
  const p = await packer.pack({ path: 'src/app.ts', text, offset: text.length }, budget);
  const util = p.files.find((f) => f.path === 'src/util.ts');
  assert.ok(util, p.files.map((f) => f.path).join(','));
  assert.ok(p.sources.find((s) => s.path === 'src/util.ts')!.shrunk);
  // app.ts imports formatPrice and sum: their bodies are kept, other bodies are elided.
  assert.ok(util.text.includes('for (const x of xs) total += x;'), util.text);
  assert.ok(!util.text.includes("replace(/[^a-z0-9]+/g, '-')"), util.text);
  const est = new TokenEstimator(3.5);
  const real = p.files.reduce((s, f) => s + est.estimate(f.path.length + f.text.length + 1) + 3, 0) + est.estimate(p.prefix.length + p.suffix.length);
  assert.ok(real <= 600 - 64, `packed ~${real} tokens`);
  assert.ok(p.estimatedTokens <= 600);
});

test('packer: recently touched files move ahead; questions get the active file last', async () => {
  const { packer, budget } = await packerFor();
  packer.recency.touch('py/pkg/helpers.py');
  const text = appText();
  const p = await packer.pack({ path: 'src/app.ts', text, offset: 0 }, budget);
  const ranked = p.sources.filter((s) => s.kind === 'ranked').map((s) => s.path);
  assert.equal(ranked[1], 'py/pkg/helpers.py'); // after the two-hop import src/models/user.ts
  const q = await packer.packForQuestion({ path: 'src/app.ts', text }, budget);
  assert.equal(q.files[q.files.length - 1].path, 'src/app.ts');
  assert.equal(q.files[0].path, 'src/util.ts');
  // An open secret never joins the question's context, whatever its name.
  const secret = await packer.packForQuestion({ path: 'notes/todo.md', text: '-----BEGIN RSA PRIVATE KEY-----\nx\n' }, budget);
  assert.ok(!secret.files.some((f) => f.path === 'notes/todo.md' || f.text.includes('PRIVATE KEY')));
  const env = await packer.packForQuestion({ path: '.env', text: 'TOKEN=1\n' }, budget);
  assert.ok(!env.files.some((f) => f.path === '.env'));
});

test('token estimator calibrates slowly towards the engine count and stays bounded', () => {
  const e = new TokenEstimator(3.5);
  e.observe(3000, 1000); // 3 chars/token
  assert.ok(e.ratio < 3.5 && e.ratio > 3);
  for (let i = 0; i < 50; i++) e.observe(3000, 1000);
  assert.ok(Math.abs(e.ratio - 3) < 0.01);
  e.observe(100, 1); // too small to learn from
  assert.ok(Math.abs(e.ratio - 3) < 0.01);
  e.observe(1e6, 1);
  assert.ok(e.ratio <= 6);
});

test('packer: re-ranking a file keeps its previous order while its imports are unchanged; a new import re-ranks', async () => {
  const { packer, budget } = await packerFor(1500);
  const text = appText();
  const first = await packer.pack({ path: 'src/app.ts', text, offset: 10 }, budget);
  const rankedOf = (p: typeof first) => p.sources.filter((x) => x.kind === 'ranked').map((x) => x.path);
  // The user visits other files (recency changes), then saves: a new epoch, but the same prompt prefix.
  packer.recency.touch('py/pkg/helpers.py');
  packer.recency.touch('docs/deploy.md');
  await packer.pack({ path: 'py/main.py', text: readFileSync(path.join(repo, 'py/main.py'), 'utf8'), offset: 0 }, budget);
  packer.invalidate();
  const again = await packer.pack({ path: 'src/app.ts', text, offset: 10 }, budget);
  assert.equal(again.reused, false);
  assert.deepEqual(again.files.map((f) => f.path), first.files.map((f) => f.path));
  // A fresh packer with the same recency would have ranked differently: the stickiness is what kept the order.
  const fresh = await packerFor(1500);
  fresh.packer.recency.touch('py/pkg/helpers.py');
  fresh.packer.recency.touch('docs/deploy.md');
  const freshPack = await fresh.packer.pack({ path: 'src/app.ts', text, offset: 10 }, budget);
  assert.notDeepEqual(rankedOf(freshPack), rankedOf(first));
  // A new import changes what matters: re-ranked from scratch (recency now counts).
  const withImport = `${text}import { message } from './strings';\n`;
  packer.invalidate();
  const changed = await packer.pack({ path: 'src/app.ts', text: withImport, offset: 10 }, budget);
  assert.ok(changed.sources.some((x) => x.kind === 'import' && x.path === 'src/strings.ts'));
  fresh.packer.invalidate();
  const freshChanged = await fresh.packer.pack({ path: 'src/app.ts', text: withImport, offset: 10 }, budget);
  assert.deepEqual(changed.files.map((f) => f.path), freshChanged.files.map((f) => f.path));
});

test('packer epochs: saving the current file or a file outside the context changes nothing; saving a context file re-selects from it on', async () => {
  const { store, packer, budget } = await packerFor(1500);
  let text = appText();
  const offset = text.indexOf('  lazy.run();');
  const first = await packer.pack({ path: 'src/app.ts', text, offset }, budget);
  assert.ok(first.files.length >= 4, `${first.files.length} files`);
  // Auto-save of the file being edited, and a save elsewhere: same epoch, same array.
  text = text.slice(0, offset) + 'x' + text.slice(offset);
  packer.fileChanged('src/app.ts');
  const outside = store.list().map((f) => f.path).find((p) => p !== 'src/app.ts' && !first.files.some((f) => f.path === p));
  if (outside) packer.fileChanged(outside);
  const same = await packer.pack({ path: 'src/app.ts', text, offset: offset + 1 }, budget);
  assert.equal(same.reused, true);
  assert.equal(same.files, first.files);
  assert.equal(same.epoch, first.epoch);
  // A context file is saved with new text: the files before it stay exactly as they were, it carries its new text.
  const i = 2;
  const saved = first.files[i].path;
  const file = path.join(repo, saved);
  const original = readFileSync(file, 'utf8');
  try {
    writeFileSync(file, `${original}\nexport const addedOnSave = 1;\n`);
    await store.refresh(saved);
    packer.fileChanged(saved);
    const after = await packer.pack({ path: 'src/app.ts', text, offset: offset + 1 }, budget);
    assert.equal(after.reused, false);
    assert.notEqual(after.epoch, first.epoch);
    assert.deepEqual(after.files.slice(0, i), first.files.slice(0, i));
    assert.equal(after.files[i].path, saved);
    assert.ok(after.files[i].text.includes('addedOnSave'));
    // Then it is stable again.
    const next = await packer.pack({ path: 'src/app.ts', text, offset: offset + 1 }, budget);
    assert.equal(next.reused, true);
    assert.equal(next.files, after.files);
    // A context file deleted (a rescan no longer lists it) leaves from where it was; the files before it stay.
    const gone = after.files[i + 1]?.path;
    if (gone) {
      store.setFiles(store.list().filter((f) => f.path !== gone));
      for (const p of packer.contextPaths) if (!store.has(p)) packer.fileChanged(p);
      const without = await packer.pack({ path: 'src/app.ts', text, offset: offset + 1 }, budget);
      assert.deepEqual(without.files.slice(0, i + 1), after.files.slice(0, i + 1));
      assert.ok(!without.files.some((f) => f.path === gone));
    }
  } finally {
    writeFileSync(file, original);
  }
});

test('packer epochs: the current file\'s window does not move when the token estimate is recalibrated mid-epoch', async () => {
  const { packer, budget } = await packerFor(1500);
  // A long current file: its window is cut, so a change of the chars-per-token estimate would move the cut.
  const long = Array.from({ length: 400 }, (_, i) => `export const value_${i} = ${i};`).join('\n') + '\n';
  let offset = long.indexOf('export const value_200');
  let text = long;
  const first = await packer.pack({ path: 'src/long.ts', text, offset }, budget);
  assert.ok(first.prefix.length < offset, 'the window is cut');
  for (let k = 0; k < 10; k++) packer.estimator.observe(20_000, 20_000 / 1.6); // the engine says: far more tokens
  for (const ch of 'let y') {
    text = text.slice(0, offset) + ch + text.slice(offset);
    offset++;
    const p = await packer.pack({ path: 'src/long.ts', text, offset }, budget);
    assert.equal(p.reused, true);
    assert.ok(p.prefix.startsWith(first.prefix.slice(0, 200)), 'the prefix starts where it did');
    assert.equal(p.suffix, first.suffix);
  }
});
