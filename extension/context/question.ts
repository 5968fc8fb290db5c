// Files for "Ask about repository", ranked by the question: files it names, files defining the symbols it names
// (tree-sitter top-level definitions, engine/code), the open editors, then lexical relevance (BM25 over file contents,
// MiniSearch). Each pick carries the reason it was chosen, which the Ask panel shows. Pure (no vscode).
import MiniSearch from 'minisearch';
import { topLevelDefinitions } from '../../engine/code/definitions';
import { languageOfPath } from '../../engine/code/languages';

export interface QuestionPick {
  path: string;
  reason: string;
  /** Symbols of the question this file defines (the packer keeps their definitions when it must shrink the file). */
  defines?: string[];
}

export interface QuestionFiles {
  list(): readonly { path: string; size: number }[];
  read(path: string): Promise<string | undefined>;
}

export interface QuestionLimits {
  /** Files whose definitions are parsed when looking for a named symbol (the ones mentioning it most). */
  maxParsed?: number;
  /** Bytes of file contents indexed for BM25. */
  maxIndexBytes?: number;
  /** BM25 matches returned. */
  maxMatches?: number;
}

// Words of a question that name nothing in a repository.
const stopwords = new Set(('a an and are as at be but by can do does did for from has have how i if in into is it its ' +
  'me my of on or our should so than that the their them then there these this those to was we what when where which ' +
  'who why will with would you your use used uses using work works get gets make makes file files code function ' +
  'class method module repository repo handle handles handled explain show find call calls called return returns').split(' '));

/** Splits identifiers into searchable parts: FeedParser → feedparser, feed, parser; read_file → read_file, read, file. */
export function codeTerms(text: string): string[] {
  const out: string[] = [];
  for (const word of text.match(/[A-Za-z_$][A-Za-z0-9_$]*/g) ?? []) {
    const lower = word.toLowerCase();
    if (lower.length < 2) continue;
    out.push(lower);
    const parts = word.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').split(/[_$\s]+/).filter((p) => p.length >= 2);
    if (parts.length > 1) for (const p of parts) out.push(p.toLowerCase());
  }
  return out;
}

/** Identifiers the question names, most code-like first (CamelCase, snake_case, call syntax, backticks). */
export function questionSymbols(question: string): string[] {
  const found = new Map<string, number>();
  for (const m of question.matchAll(/`([^`]+)`|([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(\(\))?/g)) {
    const raw = m[1] ?? m[2];
    const call = !!m[3] || !!m[1];
    for (const w of raw.split(/[^\w$]+/)) {
      if (w.length < 3 || stopwords.has(w.toLowerCase())) continue;
      const score = (call ? 4 : 0) + (/[a-z][A-Z]|^[A-Z][a-z]+[A-Z]/.test(w) ? 3 : 0) + (w.includes('_') ? 3 : 0) + (/^[A-Z]/.test(w) ? 1 : 0);
      found.set(w, Math.max(found.get(w) ?? -1, score));
    }
  }
  return [...found].sort((a, b) => b[1] - a[1]).map(([w]) => w);
}

const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1).toLowerCase();
const stem = (p: string) => baseName(p).replace(/\.[^.]+$/, '');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Ranks the repository's files for `question`. Every file appears at most once, at its first reason; files with no
 * reason are left out (the packer fills the rest of the budget its usual way).
 */
export async function rankForQuestion(question: string, files: QuestionFiles, openEditors: string[], limits: QuestionLimits = {}): Promise<QuestionPick[]> {
  const picks: QuestionPick[] = [];
  const seen = new Set<string>();
  const add = (p: QuestionPick) => {
    if (seen.has(p.path)) return;
    seen.add(p.path);
    picks.push(p);
  };
  const all = files.list();
  const q = question.toLowerCase();
  const words = new Set(codeTerms(question).filter((w) => !stopwords.has(w)));

  // 1. Files the question names: a path, a file name, or a stem ("feedparser" for feedparser.py).
  for (const f of all) {
    const s = stem(f.path);
    if (q.includes(f.path.toLowerCase()) || q.includes(baseName(f.path)) || (s.length >= 4 && !stopwords.has(s) && s !== 'index' && s !== '__init__' && words.has(s))) {
      add({ path: f.path, reason: 'named in the question' });
    }
  }

  // 2. Files defining the symbols the question names: files mentioning the name most are parsed, their top-level
  //    definitions checked (so a file that only uses FeedParser does not count as defining it).
  const symbols = questionSymbols(question).slice(0, 8);
  const texts = new Map<string, string>();
  let indexed = 0;
  const maxIndexBytes = limits.maxIndexBytes ?? 32 << 20;
  for (const f of all) {
    if (indexed + f.size > maxIndexBytes) continue;
    const text = await files.read(f.path);
    if (text === undefined) continue;
    texts.set(f.path, text);
    indexed += text.length;
  }
  for (const sym of symbols) {
    const re = new RegExp(`(^|[^\\w$])${escape(sym)}(?![\\w$])`, 'g');
    const mentions = [...texts].map(([path, text]) => ({ path, n: languageOfPath(path) ? (text.match(re)?.length ?? 0) : 0 }))
      .filter((x) => x.n > 0).sort((a, b) => b.n - a.n).slice(0, limits.maxParsed ?? 24);
    for (const { path } of mentions) {
      const defs = await topLevelDefinitions(texts.get(path)!, languageOfPath(path)!).catch(() => []);
      if (!defs.some((d) => d.name === sym)) continue;
      const existing = picks.find((p) => p.path === path);
      if (existing) (existing.defines ??= []).push(sym);
      else add({ path, reason: `defines ${sym}`, defines: [sym] });
    }
  }

  // 3. The open editors (the user is looking at them).
  for (const path of openEditors) if (texts.has(path) || all.some((f) => f.path === path)) add({ path, reason: 'open in the editor' });

  // 4. Lexical relevance: BM25 over paths and contents with identifier-aware terms.
  if (words.size && texts.size) {
    const index = new MiniSearch<{ id: string; path: string; text: string }>({
      fields: ['path', 'text'], storeFields: [], idField: 'id',
      tokenize: (s) => codeTerms(s),
      processTerm: (t) => (stopwords.has(t) ? null : t),
      searchOptions: { boost: { path: 2 }, combineWith: 'OR' },
    });
    index.addAll([...texts].map(([path, text]) => ({ id: path, path, text })));
    const results = index.search([...words].join(' '), { tokenize: (s) => s.split(' ') });
    for (const r of results.slice(0, limits.maxMatches ?? 50)) {
      add({ path: r.id, reason: `matches ${r.terms.slice(0, 3).map((t) => `"${t}"`).join(', ')}` });
    }
  }
  return picks;
}
