// Ask's context chosen by the question, on a real package (Python's email, from the system's standard library; a
// scratch copy so the scan sees a plain folder): the case, a symbol defined in another file, open editors,
// and BM25 for a question that names nothing.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceFiles } from '../../extension/context/files';
import { ContextPacker } from '../../extension/context/packer';
import { codeTerms, questionSymbols, rankForQuestion } from '../../extension/context/question';
import { Recency } from '../../extension/context/recency';
import { scanWorkspace } from '../../extension/context/scan';

const python = readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)).map((d) => `/usr/lib/${d}/email`).find((d) => existsSync(d));
let repo = '';
let store: WorkspaceFiles;

before(async () => {
  if (!python) return;
  repo = mkdtempSync(path.join(os.tmpdir(), 'snout-email-'));
  cpSync(python, repo, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  store = new WorkspaceFiles(repo);
  store.setFiles(await scanWorkspace(repo));
});
after(() => { if (repo) rmSync(repo, { recursive: true, force: true }); });

const budget = { contextTokens: 1024, maxTokens: 256, modelContextLength: 1024 };

test('question words: identifiers split for BM25, symbols ranked by how code-like they are', () => {
  assert.deepEqual(codeTerms('FeedParser read_file x'), ['feedparser', 'feed', 'parser', 'read_file', 'read', 'file']);
  assert.deepEqual(questionSymbols('How does FeedParser handle multipart messages?'), ['FeedParser', 'multipart', 'messages']);
  assert.equal(questionSymbols('what does `decode_b` do, and parse_args()?')[0], 'decode_b');
});

test('the issue\'s case: FeedParser\'s file is packed (before: it was not), with its reason', { skip: !python && 'no Python stdlib' }, async () => {
  const q = 'How does FeedParser handle multipart messages?';
  const before_ = await new ContextPacker(store, new Recency()).packForQuestion(undefined, budget, q.length);
  assert.ok(!before_.files.some((f) => f.path === 'feedparser.py'), 'without the question the ranking cannot know');
  const packed = await new ContextPacker(store, new Recency()).packForQuestion(undefined, budget, q.length, { text: q, openEditors: [] });
  const src = packed.sources.find((s) => s.path === 'feedparser.py');
  assert.ok(src, JSON.stringify(packed.sources));
  assert.equal(packed.sources[0].path, 'feedparser.py', 'first');
  assert.match(src.reason!, /named in the question; defines FeedParser/);
  assert.ok(src.shrunk, 'feedparser.py is larger than a 1K window: its definitions are kept');
  const text = packed.files.find((f) => f.path === 'feedparser.py')!.text;
  assert.match(text, /^class FeedParser/m, 'the named class survives the shrinking');
  assert.ok(packed.estimatedTokens <= 1024 - 256, `fits: ${packed.estimatedTokens}`);
});

test('a symbol defined elsewhere, open editors, then BM25 for a question that names no file', { skip: !python && 'no Python stdlib' }, async () => {
  const picks = await rankForQuestion('What does decode_b do with padding?', store, ['charset.py']);
  assert.deepEqual(picks[0], { path: '_encoded_words.py', reason: 'defines decode_b', defines: ['decode_b'] }, 'tree-sitter: _encoded_words.py defines decode_b');
  assert.ok(!picks.some((p) => p.path === 'message.py' && p.reason.startsWith('defines')), 'message.py calls decode_b but does not define it');
  assert.deepEqual(picks[1], { path: 'charset.py', reason: 'open in the editor' });
  const lexical = await rankForQuestion('Where are quoted-printable soft line breaks encoded?', store, []);
  assert.equal(lexical[0].path, 'quoprimime.py', JSON.stringify(lexical.slice(0, 3)));
  assert.match(lexical[0].reason, /^matches "/);
});
