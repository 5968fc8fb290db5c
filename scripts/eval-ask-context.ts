// `npx tsx scripts/eval-ask-context.ts`: how often Ask packs the file that defines the symbol a question names,
// before (context from the active file's imports and recency, the question unused) and after (ranked by the question),
// on real repositories available offline: Python standard-library packages and npm packages from node_modules.
// Questions name one top-level definition that exactly one file of the repository defines (tree-sitter), and nothing
// else; no editor is open. Writes eval-results/ask-context.md and .json.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { topLevelDefinitions } from '../engine/code/definitions';
import { languageOfPath } from '../engine/code/languages';
import { WorkspaceFiles } from '../extension/context/files';
import { ContextPacker } from '../extension/context/packer';
import { Recency } from '../extension/context/recency';
import { scanWorkspace } from '../extension/context/scan';

const root = path.resolve(__dirname, '..');
const py = readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)).map((d) => `/usr/lib/${d}`)[0];
const repos = [
  ...['email', 'asyncio', 'xml', 'importlib'].map((p) => ({ name: `python ${p}`, dir: `${py}/${p}` })),
  { name: 'npm undici/lib', dir: path.join(root, 'node_modules/undici/lib') },
  { name: 'npm vscode-jsonrpc/lib/common', dir: path.join(root, 'node_modules/vscode-jsonrpc/lib/common') },
  { name: 'npm minisearch/src', dir: path.join(root, 'node_modules/minisearch/src') },
].filter((r) => existsSync(r.dir));
const budgets = [1024, 4096];
const perRepo = 20;
const templates = ['How does {} work?', 'What does {} return, and when does it fail?', 'Where is {} used, and why?', 'Explain {} in a few sentences.'];

/** Deterministic shuffle (mulberry32). */
function shuffled<T>(xs: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rnd = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [out[i], out[j]] = [out[j], out[i]]; }
  return out;
}

interface Row { repo: string; files: number; kb: number; questions: number; budget: number; before: number; after: number; afterWhole: number; inWords: number; ms: number }

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const r of repos) {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-askeval-'));
    try {
      cpSync(r.dir, tmp, { recursive: true, filter: (s) => !s.includes('__pycache__') && !s.endsWith('.d.ts') && !s.endsWith('.map') });
      const store = new WorkspaceFiles(tmp);
      store.setFiles(await scanWorkspace(tmp));
      const files = store.list();
      // Symbols defined by exactly one file (so "the defining file" is well defined).
      const definers = new Map<string, Set<string>>();
      for (const f of files) {
        const lang = languageOfPath(f.path);
        const text = lang && await store.read(f.path);
        if (!lang || !text) continue;
        for (const d of await topLevelDefinitions(text, lang).catch(() => [])) {
          if (d.name.length < 4 || d.name.startsWith('_') || !['function', 'class', 'interface', 'type', 'enum'].includes(d.kind)) continue;
          if (!definers.has(d.name)) definers.set(d.name, new Set());
          definers.get(d.name)!.add(f.path);
        }
      }
      const unique = [...definers].filter(([, s]) => s.size === 1).map(([name, s]) => ({ name, file: [...s][0] })).sort((a, b) => a.name.localeCompare(b.name));
      const sample = shuffled(unique, 20).slice(0, perRepo);
      const kb = Math.round(files.reduce((s, f) => s + f.size, 0) / 1024);
      for (const budget of budgets) {
        const b = { contextTokens: budget, maxTokens: budget / 4, modelContextLength: budget };
        let before = 0;
        let after = 0;
        let afterWhole = 0;
        let inWords = 0;
        const t0 = Date.now();
        for (const [i, s] of sample.entries()) {
          const q = templates[i % templates.length].replace('{}', s.name);
          const old = await new ContextPacker(store, new Recency()).packForQuestion(undefined, b, q.length + 200);
          if (old.files.some((f) => f.path === s.file)) before++;
          const now = await new ContextPacker(store, new Recency()).packForQuestion(undefined, b, q.length + 200, { text: q, openEditors: [] });
          const src = now.sources.find((x) => x.path === s.file);
          if (src) { after++; if (!src.shrunk) afterWhole++; }
          // The same question with the name written as words ("feed parser"): no identifier to look up, BM25 only.
          const words = s.name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').replace(/_+/g, ' ').toLowerCase();
          const q2 = templates[i % templates.length].replace('{}', `the ${words} code`);
          const lex = await new ContextPacker(store, new Recency()).packForQuestion(undefined, b, q2.length + 200, { text: q2, openEditors: [] });
          if (lex.files.some((f) => f.path === s.file)) inWords++;
        }
        rows.push({ repo: r.name, files: files.length, kb, questions: sample.length, budget, before, after, afterWhole, inWords, ms: Math.round((Date.now() - t0) / Math.max(1, sample.length) / 2) });
        console.log(JSON.stringify(rows.at(-1)));
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const pct = (n: number, d: number) => `${d ? Math.round((100 * n) / d) : 0}%`;
  const lines = [
    '# Ask: is the file that defines the named symbol packed?',
    '',
    '`npx tsx scripts/eval-ask-context.ts` (deterministic). Each question names one top-level function/class that exactly one',
    'file of the repository defines (tree-sitter), in one of four phrasings ("How does X work?", …); no editor is open;',
    'the Ask window is the budget below with a quarter kept for the answer. **Before**: the packer as it was (recency',
    'and folder order, the question unused). **After**: ranked by the question (named files, defining files, open',
    'editors, BM25); "whole" counts the defining file packed unshrunk (the rest keep the named definition, shrunk).',
    '"Name as words" asks the same with the identifier written as plain words ("How does the feed parser code work?"),',
    'so nothing can be looked up by name: the file is found by BM25 or not at all.',
    '',
    '| repository | files | KB | questions | budget (tokens) | before | after | after, whole file | after, name as words |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((x) => `| ${x.repo} | ${x.files} | ${x.kb} | ${x.questions} | ${x.budget} | ${pct(x.before, x.questions)} | ${pct(x.after, x.questions)} | ${pct(x.afterWhole, x.questions)} | ${pct(x.inWords, x.questions)} |`),
    '',
    `Python ${path.basename(py ?? '')} from /usr/lib; npm packages from this repository's node_modules (installed versions).`,
    `Mean time to pack one Ask context (ranking included), per row: ${rows.map((x) => `${x.ms} ms`).join(', ')} (2-core shared machine).`,
    '',
  ];
  mkdirSync(path.join(root, 'eval-results'), { recursive: true });
  writeFileSync(path.join(root, 'eval-results/ask-context.md'), lines.join('\n'));
  writeFileSync(path.join(root, 'eval-results/ask-context.json'), JSON.stringify(rows, null, 2) + '\n');
  console.log(lines.join('\n'));
}

void main();
