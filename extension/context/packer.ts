// Packs the repository into a completion request, RepoBench order: the files the current file imports (whole, or
// just the definitions it uses when too large), then other files by recency and proximity, then the current file as
// FIM prefix/suffix. The file list is computed once per "epoch" and reused verbatim on every keystroke in between, so
// the engine's prefix cache covers everything before the current file. An epoch ends only on a file switch, a
// settings or model change, or a prompt that truly overflowed the window (invalidate()); a saved or deleted context
// file re-selects from that file on (fileChanged()), so the files before it stay byte-identical and cached.
import type { RepoFile } from '../../engine/protocol';
import { languageOfPath, type CodeLanguage } from '../../engine/code/languages';
import { relevantDefinitions } from '../../engine/code/definitions';
import { resolvedImports } from '../../engine/code/imports';
import { fimWindow } from './fim';
import { rankForQuestion } from './question';
import type { WorkspaceFiles } from './files';
import { rankFiles, stabilityOrder } from './rank';
import { isSecretPath, redactSecrets } from './secrets';
import type { Recency } from './recency';
import { TokenEstimator } from './tokens';

export interface PackBudget {
  /** snout.contextTokens. */
  contextTokens: number;
  /** Tokens to leave for the completion itself. */
  maxTokens: number;
  /** The model's window (ModelInfo.contextLength); caps contextTokens. */
  modelContextLength?: number;
}

export interface ContextSource {
  path: string;
  kind: 'import' | 'ranked' | 'current' | 'question';
  /** Why an Ask context file was chosen (question-ranked files). */
  reason?: string;
  /** Only the relevant definitions of a too-large imported file were kept. */
  shrunk: boolean;
  tokens: number;
}

export interface PackedContext {
  repoName: string;
  files: RepoFile[];
  sources: ContextSource[];
  path: string;
  prefix: string;
  suffix: string;
  /** Estimated prompt tokens (files + current window + framing). */
  estimatedTokens: number;
  /** Total characters of everything packed (for calibrating the estimator against the engine's count). */
  chars: number;
  /** The file list came from the current epoch (no re-ranking on this call). */
  reused: boolean;
  epoch: number;
}

export interface PackRequest {
  /** Workspace-relative path of the current file. */
  path: string;
  text: string;
  /** Cursor offset in `text`. */
  offset: number;
  language?: CodeLanguage;
}

interface Epoch {
  key: string;
  id: number;
  files: RepoFile[];
  sources: ContextSource[];
  filesTokens: number;
  filesChars: number;
  /** Tokens set aside for the current file's window. */
  reserve: number;
  /** The current file's window in characters, fixed for the epoch: the estimator's drift must not move the cut. */
  windowChars: number;
  /** Index of the first file to re-select on the next pack (a context file was saved or deleted). */
  staleFrom?: number;
}

/** Framing the prompt format adds per file (<|file_sep|>, path, newline) beyond the path itself. */
const perFileFraming = 3;
/** Repo name, FIM markers and slack for estimate error. */
const promptFraming = 16;

/**
 * How the selected context files are laid out in the prompt. 'stability' (default): imports first, then the rest,
 * each group from the least recently changed file to the most recently changed one (rank.ts stabilityOrder);
 * 'importance': the selection order (imports, two-hop imports, then by rank), as before.
 */
export type ContextOrder = 'stability' | 'importance';

/** What an earlier epoch chose for a file: kept as the priority order while the file's imports stay the same. */
interface Choice {
  imports: string;
  ranked: string[];
}

export class ContextPacker {
  private epoch: Epoch | undefined;
  private epochs = 0;
  /** Per current file (most recent last): the previous ranked selection, so re-ranking after a save or a round trip
   *  through other files reproduces the same prompt prefix and the engine's cache still covers it. */
  private choices = new Map<string, Choice>();

  constructor(
    readonly store: WorkspaceFiles,
    readonly recency: Recency,
    readonly estimator = new TokenEstimator(),
    readonly repoName = 'repository',
    public order: ContextOrder = 'stability',
  ) {}

  /** When a file last changed: its mtime on disk, or this session's last edit of it when later (unsaved edits). */
  private lastChange(path: string): number {
    return Math.max(this.store.mtime(path) ?? 0, this.recency.editedAt(path) ?? 0);
  }

  /** Lays the selection out in prompt order (see ContextOrder); the first `fixed` files stay put. */
  private arrange<S extends { files: RepoFile[]; sources: ContextSource[] }>(s: S, fixed: number): S {
    if (this.order === 'importance') return s;
    const perm = stabilityOrder(s.files.length, fixed, (i) => s.sources[i].kind === 'import', (i) => this.lastChange(s.files[i].path));
    return { ...s, files: perm.map((i) => s.files[i]), sources: perm.map((i) => s.sources[i]) };
  }

  /** Forget the file list: the next pack re-ranks (settings or model change, a prompt that overflowed the window). */
  invalidate(): void {
    this.epoch = undefined;
  }

  /**
   * A file changed on disk (saved, deleted). If it is in the current file list, the next pack keeps the files before it
   * and selects again from it on; anything else (the current file itself, files not in the context) changes nothing.
   */
  fileChanged(path: string): void {
    const e = this.epoch;
    if (!e) return;
    const i = e.files.findIndex((f) => f.path === path);
    if (i >= 0) e.staleFrom = Math.min(e.staleFrom ?? i, i);
  }

  /** Paths in the current file list (for dropping files a rescan no longer lists). */
  get contextPaths(): string[] {
    return this.epoch?.files.map((f) => f.path) ?? [];
  }

  get currentEpoch(): number | undefined {
    return this.epoch?.id;
  }

  private usable(budget: PackBudget): number {
    const window = Math.min(budget.contextTokens, budget.modelContextLength ?? Infinity);
    // 5% under the estimate: the engine cuts from the front, which is where the imported files are.
    return Math.max(0, Math.floor((window - budget.maxTokens - promptFraming) * 0.95));
  }

  async pack(req: PackRequest, budget: PackBudget): Promise<PackedContext> {
    const total = this.usable(budget);
    const key = `${req.path}|${total}`;
    let epoch = this.epoch;
    const reused = epoch?.key === key && epoch.staleFrom === undefined;
    if (epoch?.key === key && epoch.staleFrom !== undefined) {
      epoch = await this.reselect(req, epoch, total);
      this.epoch = epoch;
    } else if (!reused) {
      epoch = await this.rank(req, total, key);
      this.epoch = epoch;
    }
    const e = epoch!;
    const w = fimWindow(req.text, req.offset, e.windowChars);
    const currentTokens = this.estimator.estimate(w.prefix.length + w.suffix.length + req.path.length) + perFileFraming;
    return {
      repoName: this.repoName, files: e.files, sources: e.sources, path: req.path, prefix: w.prefix, suffix: w.suffix,
      estimatedTokens: e.filesTokens + currentTokens + promptFraming,
      chars: e.filesChars + w.prefix.length + w.suffix.length + req.path.length,
      reused, epoch: e.id,
    };
  }

  private cost(path: string, text: string): number {
    return this.estimator.estimate(path.length + text.length + 1) + perFileFraming;
  }

  /** Chooses the context files for `req` within `total` tokens. */
  private async rank(req: PackRequest, total: number, key: string): Promise<Epoch> {
    const currentTokens = this.cost(req.path, req.text);
    // The current file keeps room to grow while the user types; at most half the window, so the repository always
    // gets the other half.
    const reserve = Math.min(Math.ceil(currentTokens * 1.1) + 64, Math.floor(total / 2));
    const previous = this.choices.get(req.path);
    const selected = await this.select(req, total - reserve, new Set([req.path]), previous);
    this.choices.delete(req.path);
    this.choices.set(req.path, { imports: selected.importKey, ranked: selected.sources.filter((x) => x.kind === 'ranked').map((x) => x.path) });
    if (this.choices.size > 32) this.choices.delete(this.choices.keys().next().value!);
    return this.epochOf(key, reserve, total, this.arrange(selected, 0));
  }

  private epochOf(key: string, reserve: number, total: number, s: { files: RepoFile[]; sources: ContextSource[]; filesTokens: number; filesChars: number }): Epoch {
    // The current file may also use whatever the repository files left over.
    const windowChars = this.estimator.chars(Math.max(reserve, total - s.filesTokens));
    return { key, id: ++this.epochs, reserve, windowChars, files: s.files, sources: s.sources, filesTokens: s.filesTokens, filesChars: s.filesChars };
  }

  /** Keeps the files before `e.staleFrom` as they were and selects the rest again (imports first, then by rank). */
  private async reselect(req: PackRequest, e: Epoch, total: number): Promise<Epoch> {
    const n = e.staleFrom!;
    const keep = { files: e.files.slice(0, n), sources: e.sources.slice(0, n) };
    const previous = this.choices.get(req.path);
    const selected = await this.select(req, total - e.reserve, new Set([req.path]), previous, keep);
    return this.epochOf(e.key, e.reserve, total, this.arrange(selected, n));
  }

  /**
   * Imported files first (whole, or shrunk to the definitions the importer names), then the rest by rank, each
   * while it fits `budget` tokens.
   */
  private async select(req: { path: string; text: string; language?: CodeLanguage }, budget: number, exclude: Set<string>, previous?: Choice,
    keep?: { files: RepoFile[]; sources: ContextSource[] }) {
    const files: RepoFile[] = [];
    const sources: ContextSource[] = [];
    let used = 0;
    let chars = 0;
    const add = (path: string, text: string, kind: ContextSource['kind'], shrunk: boolean, tokens = this.cost(path, text)) => {
      files.push({ path, text });
      sources.push({ path, kind, shrunk, tokens });
      used += tokens;
      chars += path.length + text.length + 1;
      exclude.add(path);
    };
    // Files kept from the epoch being refreshed go first, exactly as they were (same text, same cost).
    keep?.files.forEach((f, i) => add(f.path, f.text, keep.sources[i].kind, keep.sources[i].shrunk, keep.sources[i].tokens));

    const lang = req.language ?? languageOfPath(req.path);
    const imports = lang ? await resolvedImports(req.path, req.text, lang, (p) => this.store.has(p)).catch(() => []) : [];
    // An import may take a quarter of the repository budget whole; a bigger one is shrunk to that quarter.
    const importCap = Math.floor(budget / 4);
    const secondHop = new Set<string>();
    for (const imp of imports) {
      for (const path of imp.files) {
        if (exclude.has(path)) continue;
        const text = await this.store.read(path);
        if (text === undefined || !text.trim()) continue; // an empty __init__.py resolves imports but says nothing
        const room = Math.min(budget - used, importCap);
        if (this.cost(path, text) <= room) add(path, text, 'import', false);
        else if (room > 32) {
          const fileLang = languageOfPath(path);
          const chars = this.estimator.chars(room - this.estimator.estimate(path.length) - perFileFraming);
          const shrunk = fileLang ? await relevantDefinitions(text, fileLang, imp.names, chars).catch(() => '') : text.slice(0, chars);
          if (shrunk.trim() && this.cost(path, shrunk) <= room) add(path, shrunk, 'import', true);
        }
        // What the imported file imports is the next most likely thing the current code touches.
        const l = languageOfPath(path);
        if (l) for (const r of await resolvedImports(path, text, l, (p) => this.store.has(p)).catch(() => [])) r.files.forEach((f) => secondHop.add(f));
      }
    }

    const candidates = this.store.list().map((f) => f.path).filter((p) => !exclude.has(p));
    const ranked = rankFiles({ current: req.path, candidates, recency: (p) => this.recency.rank(p) });
    // Files two import hops away go first among the rest; the ranking decides within each group.
    let ordered = [...ranked.filter((p) => secondHop.has(p)), ...ranked.filter((p) => !secondHop.has(p))];
    // Same imports as last time for this file: keep last time's order (recency moved, but a stable prefix is worth
    // more than a slightly better order), then anything new by rank.
    const importKey = imports.flatMap((i) => i.files).join('|');
    if (previous && previous.imports === importKey) {
      const still = new Set(ordered);
      const kept = previous.ranked.filter((p) => still.has(p));
      const keptSet = new Set(kept);
      ordered = [...kept, ...ordered.filter((p) => !keptSet.has(p))];
    }
    let examined = 0;
    for (const path of ordered) {
      if (budget - used < 32 || ++examined > 2000) break;
      // Bytes ≥ characters, so the on-disk size bounds the cost from above: skip reading what cannot fit anyway.
      const bytes = this.store.size(path) ?? 0;
      if (this.estimator.estimate(path.length + 1) + perFileFraming > budget - used) continue;
      if (bytes > this.estimator.chars(budget - used) * 4) continue;
      const text = await this.store.read(path);
      if (text === undefined || !text.trim()) continue;
      if (this.cost(path, text) <= budget - used) add(path, text, 'ranked', false);
    }
    return { files, sources, filesTokens: used, filesChars: chars, importKey };
  }

  /**
   * Context for a question about the repository: the active file's imports, the ranked rest, and the active file
   * itself last (nearest the question). Without an active file, files are ranked from the workspace root.
   */
  async packForQuestion(active: { path: string; text: string } | undefined, budget: PackBudget, questionChars = 0,
    question?: { text: string; openEditors: string[] }): Promise<{ files: RepoFile[]; sources: ContextSource[]; estimatedTokens: number }> {
    // The system prompt, the question and the chat template's framing come out of the same window.
    const total = Math.max(0, this.usable(budget) - this.estimator.estimate(questionChars) - 32);
    // The active file joins the context only if it is not a secret itself (an open .env must not reach the prompt).
    // Its tokens are masked like every other file's; key material keeps it out entirely.
    const activeText = active && !isSecretPath(active.path) ? redactSecrets(active.text) : undefined;
    const current = active && activeText !== undefined && this.estimator.estimate(activeText.length) < total / 2 ? { path: active.path, text: activeText } : undefined;
    const reserve = current ? this.cost(current.path, current.text) : 0;
    const req = active ?? { path: 'README.md', text: '' };
    const picked = question ? await this.selectForQuestion(question, total - reserve, current?.path) : { files: [], sources: [], used: 0 };
    const sel = await this.select(req, total - reserve - picked.used, new Set([...(active ? [active.path] : []), ...picked.files.map((f) => f.path)]));
    sel.files.unshift(...picked.files);
    sel.sources.unshift(...picked.sources);
    sel.filesTokens += picked.used;
    if (current) {
      sel.files.push({ path: current.path, text: current.text });
      sel.sources.push({ path: current.path, kind: 'current', shrunk: false, tokens: reserve });
    }
    return { files: sel.files, sources: sel.sources, estimatedTokens: sel.filesTokens + reserve + promptFraming };
  }

  /**
   * The question's own files first (question.ts): named files, files defining named symbols, open editors, BM25
   * matches, each whole while it fits. A file that defines a named symbol but is too large keeps those definitions
   * (and its other signatures) in at most half the room left; a named file and the best three BM25 matches likewise
   * keep their signatures.
   */
  private async selectForQuestion(question: { text: string; openEditors: string[] }, budget: number, activePath?: string) {
    const files: RepoFile[] = [];
    const sources: ContextSource[] = [];
    let used = 0;
    const picks = await rankForQuestion(question.text, this.store, question.openEditors);
    // The best few lexical matches may be shrunk to their signatures too; weaker ones only come whole.
    const topLexical = new Set(picks.filter((p) => p.reason.startsWith('matches')).slice(0, 3).map((p) => p.path));
    for (const p of picks) {
      if (p.path === activePath) continue; // goes last, as the active file
      const room = budget - used;
      if (room < 32) break;
      if (this.estimator.estimate(p.path.length + 1) + perFileFraming > room) continue;
      const text = await this.store.read(p.path);
      if (text === undefined || !text.trim() || isSecretPath(p.path)) continue; // store.read masks secrets (files.ts)
      let kept = text;
      let shrunk = false;
      if (this.cost(p.path, text) > room) {
        const lang = languageOfPath(p.path);
        if (!lang || (!p.defines && p.reason !== 'named in the question' && !topLexical.has(p.path))) continue;
        const share = Math.floor(room / 2) - this.estimator.estimate(p.path.length) - perFileFraming;
        if (share < 32) continue;
        kept = await relevantDefinitions(text, lang, p.defines ?? [], this.estimator.chars(share)).catch(() => '');
        shrunk = true;
        if (!kept.trim() || this.cost(p.path, kept) > room) continue;
      }
      const tokens = this.cost(p.path, kept);
      files.push({ path: p.path, text: kept });
      sources.push({ path: p.path, kind: 'question', shrunk, tokens, reason: p.defines?.length && p.reason !== `defines ${p.defines[0]}` ? `${p.reason}; defines ${p.defines.join(', ')}` : p.reason });
      used += tokens;
    }
    return { files, sources, used };
  }
}
