// The packer's stability order: imports of the current file first, then the rest, each group from the file unchanged
// longest to the one changed last (mtime or this session's edit, in fixed 10-minute slots), ties in importance order;
// an edit keeps the prompt byte-identical up to the first changed file and moves that file behind the others.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { WorkspaceFiles } from '../../extension/context/files';
import { ContextPacker, type ContextOrder } from '../../extension/context/packer';
import { CHANGE_QUANTUM_MS, stabilityOrder } from '../../extension/context/rank';
import { Recency } from '../../extension/context/recency';
import { scanWorkspace } from '../../extension/context/scan';
import { TokenEstimator } from '../../extension/context/tokens';
import type { RepoFile } from '../../engine/protocol';

const repo = path.resolve(__dirname, '../fixtures/repo-mixed');
const T0 = Date.UTC(2025, 0, 1);
const hour = 3600_000;
const text = readFileSync(path.join(repo, 'src/app.ts'), 'utf8');
const req = { path: 'src/app.ts', text, offset: text.indexOf('  lazy.run();') };
const budget = { contextTokens: 32768, maxTokens: 64 };

/** A packer over the fixture with every file's mtime set by `mtime` (default: all at T0, one checkout). */
async function packer(order: ContextOrder, mtime: (p: string) => number = () => T0) {
  const files = await scanWorkspace(repo);
  for (const f of files) f.mtimeMs = mtime(f.path);
  const store = new WorkspaceFiles(repo);
  store.setFiles(files);
  return { store, packer: new ContextPacker(store, new Recency(), new TokenEstimator(3.5), 'repo-mixed', order) };
}

/** The prompt text the engine renders before the current file (the qwen layout's file blocks, separators as text). */
const promptOf = (files: RepoFile[]) => files.map((f) => `<|file_sep|>${f.path}\n${f.text}\n`).join('');

test('stabilityOrder: fixed head kept, imports first, oldest slot first, ties by selection order, clock-free', () => {
  const imp = [true, false, true, false, false, true];
  const t = [5, 1, 1, 3, 1, 9].map((x) => T0 + x * hour);
  assert.deepEqual(stabilityOrder(6, 0, (i) => imp[i], (i) => t[i]), [2, 0, 5, 1, 4, 3]);
  assert.deepEqual(stabilityOrder(6, 2, (i) => imp[i], (i) => t[i]), [0, 1, 2, 5, 4, 3]);
  // Within one slot the selection order decides (a checkout's mtimes differ by microseconds in no useful order).
  assert.deepEqual(stabilityOrder(3, 0, () => false, (i) => T0 + (3 - i)), [0, 1, 2]);
  assert.deepEqual(stabilityOrder(2, 0, () => false, (i) => T0 + i * CHANGE_QUANTUM_MS), [0, 1]);
  assert.deepEqual(stabilityOrder(2, 0, () => false, (i) => T0 + (1 - i) * CHANGE_QUANTUM_MS), [1, 0]);
  assert.deepEqual(stabilityOrder(0, 3, () => true, () => 0), []);
});

test('one checkout (every file in one slot): the stability order is the importance order', async () => {
  const a = await (await packer('stability')).packer.pack(req, budget);
  const b = await (await packer('importance')).packer.pack(req, budget);
  assert.deepEqual(a.files, b.files);
  assert.ok(a.files.length > 8);
});

test('files changed later go behind the others; imports stay first', async () => {
  // Ages: lib.ts and README.md changed an hour ago, core.py a day ago, the rest a year ago.
  const changed: Record<string, number> = { 'src/lib.ts': T0 - hour, 'README.md': T0 - hour, 'py/pkg/core.py': T0 - 24 * hour };
  const { packer: p } = await packer('stability', (f) => changed[f] ?? T0 - 365 * 24 * hour);
  const { packer: q } = await packer('importance', (f) => changed[f] ?? T0 - 365 * 24 * hour);
  const a = await p.pack(req, budget);
  const b = await q.pack(req, budget);
  assert.deepEqual(new Set(a.files.map((f) => f.path)), new Set(b.files.map((f) => f.path)), 'the same selection');
  const kinds = a.sources.map((s) => s.kind);
  assert.equal(kinds.lastIndexOf('import'), kinds.filter((k) => k === 'import').length - 1, 'imports form the head');
  const paths = a.files.map((f) => f.path);
  const imports = paths.slice(0, kinds.lastIndexOf('import') + 1);
  assert.equal(imports.at(-1), 'src/lib.ts', 'the changed import is the last import');
  assert.deepEqual(paths.slice(-2), ['py/pkg/core.py', 'README.md'], 'a day old, then an hour old');
  // Unchanged files keep their importance order among themselves.
  const old = (xs: string[]) => xs.filter((x) => !(x in changed));
  assert.deepEqual(old(paths), old(b.files.map((f) => f.path)));
});

test('saving a context file keeps the prompt byte-identical up to it and moves it behind the rest', async () => {
  const { store, packer: p } = await packer('stability', (f) => T0 - (f.length % 7) * 24 * hour);
  const first = await p.pack(req, budget);
  const i = first.sources.findIndex((s, k) => s.kind === 'ranked' && k > first.files.length / 3 && k < first.files.length - 2);
  assert.ok(i > 0, 'a ranked file in the middle');
  const edited = first.files[i].path;
  // The save: the file's mtime becomes now, and the packer is told (as workspace.ts does on onDidSaveTextDocument).
  const entry = store.list().find((f) => f.path === edited)!;
  entry.mtimeMs = T0 + hour;
  p.fileChanged(edited);
  const next = await p.pack(req, budget);
  assert.equal(next.reused, false);
  const a = promptOf(first.files), b = promptOf(next.files);
  const upTo = promptOf(first.files.slice(0, i));
  assert.equal(b.slice(0, upTo.length), upTo, 'byte-identical up to the changed file');
  assert.equal(next.files.at(-1)!.path, edited, 'the changed file goes last');
  assert.notEqual(a, b);
  // Saving it again: now it is last, so everything before it stays and only it is re-read.
  entry.mtimeMs = T0 + 2 * hour;
  p.fileChanged(edited);
  const third = await p.pack(req, budget);
  assert.deepEqual(third.files.slice(0, -1), next.files.slice(0, -1));
  assert.equal(third.files.at(-1)!.path, edited);
  // And a fresh packer (a restart) with the same files and mtimes renders the same order.
  const again = new ContextPacker(store, new Recency(), new TokenEstimator(3.5), 'repo-mixed', 'stability');
  assert.deepEqual((await again.pack(req, budget)).files.map((f) => f.path), third.files.map((f) => f.path));
});

test('an unsaved edit in this session counts as a change now', async () => {
  const { packer: p } = await packer('stability', () => T0 - 24 * hour);
  const first = await p.pack(req, budget);
  const target = first.sources.find((s) => s.kind === 'ranked')!.path;
  p.recency.edited(target, T0);
  p.invalidate();
  const next = await p.pack(req, budget);
  assert.equal(next.files.at(-1)!.path, target);
});
