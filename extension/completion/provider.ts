// The inline completion provider: cache → debounce → pack → engine → shape.
//
// A completion is a job that outlives VS Code's request: VS Code cancels an inline request whenever its own state
// moves on (the suggest widget opening, a cursor blink of the quick-suggestions machinery), often long before a real
// model on a CPU can answer, and it does not ask again by itself. So VS Code's token only stops the *wait*: the engine
// keeps going (until a newer request supersedes it there), the result is cached, and if the editor still shows the
// context the job was computed for, Snout asks VS Code to request again (editor.action.inlineSuggest.trigger) and
// answers from the cache. A multi-line completion shows its first line as soon as that line is complete; accepting a
// suggestion starts the next one at once (prefetch), without the debounce.
import * as vscode from 'vscode';
import type { CompleteResult } from '../../engine/protocol';
import { holdsKeyMaterial, isSecretPath, redactSecrets } from '../context/secrets';
import type { WorkspaceContext } from '../context/workspace';
import type { Backend } from '../engine/backend';
import { languageEnabled, type SnoutSettings } from '../settings';
import { CompletionCache } from './cache';
import { debounceDelay, nextRhythm, noRhythm, type Rhythm } from './debounce';
import { completeFirstLine, shapeCompletion, stopSequences, wantsSingleLine, type ShapeContext } from './filters';
import { formatReport, HitRate, type CompletionReport } from './stats';

/** ", from disk N" for an engine that reports how much of the cached prompt came from its on-disk cache. */
const fromDisk = (r: CompleteResult) => (r.stats.diskCachedTokens !== undefined ? `, from disk ${r.stats.diskCachedTokens}` : '');

export interface ProviderDeps {
  engine: Backend;
  workspace: WorkspaceContext;
  settings: () => SnoutSettings;
  log: (line: string) => void;
  onReport?: (r: CompletionReport) => void;
}

/** The command an accepted suggestion runs (see the constructor): starts the next completion at once. */
export const afterAcceptCommand = 'snout.afterAccept';

const sleep = (ms: number, token: vscode.CancellationToken) => new Promise<void>((resolve) => {
  const t = setTimeout(() => { sub.dispose(); resolve(); }, ms);
  const sub = token.onCancellationRequested(() => { clearTimeout(t); sub.dispose(); resolve(); });
});

/** Where a completion was asked for: it is current while the editor still shows exactly this. */
interface Where {
  doc: vscode.TextDocument;
  /** Document version and real cursor offset when asked. */
  version: number;
  cursor: number;
  /** The suggest widget's selected item the completion extends ('' when none). */
  lead: string;
  /** Text before / after the completion point (with `lead` applied). */
  before: string;
  after: string;
  /** With a `lead`: the document's own text before / after the cursor and the typed text the item replaces. */
  plain?: { before: string; after: string; replaced: string };
}

interface Job extends Where {
  key: string;
  /** Shaped text shown so far: the first line while the rest streams, then the whole completion. */
  shown?: string;
  final?: string;
  done: boolean;
  waiters: Set<() => void>;
}

const whereKey = (w: Where) => `${w.doc.uri.toString()}@${w.version}:${w.cursor}:${w.lead}`;

export class SnoutCompletionProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly cache = new CompletionCache();
  private rhythm: Rhythm = noRhythm;
  readonly hitRate = new HitRate();
  private seq = 0;
  private inFlight = 0;
  private job: Job | undefined;
  private readonly subs: vscode.Disposable[];

  constructor(private readonly d: ProviderDeps) {
    this.subs = [
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length && e.document === vscode.window.activeTextEditor?.document) this.rhythm = nextRhythm(this.rhythm, Date.now());
      }),
      vscode.commands.registerCommand(afterAcceptCommand, () => { setTimeout(() => void this.prefetch(), 0); }),
    ];
  }

  async provideInlineCompletionItems(doc: vscode.TextDocument, pos: vscode.Position, context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken): Promise<vscode.InlineCompletionItem[] | undefined> {
    const s = this.d.settings();
    const manual = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke;
    if (!manual && (!s.enabled || !languageEnabled(s, doc.languageId))) return undefined;
    // Automatic requests never wait for an engine that is still starting; the manual trigger does.
    if (!manual && this.d.engine.state !== 'ready') return undefined;

    let text = doc.getText();
    let offset = doc.offsetAt(pos);
    let range = new vscode.Range(pos, pos);
    let lead = '';
    // The suggest widget is open: VS Code only shows ghost text that extends the selected item, so complete as if it
    // were already inserted and offer item + continuation over the item's range.
    const sel = context.selectedCompletionInfo;
    if (sel) {
      const start = doc.offsetAt(sel.range.start);
      text = text.slice(0, start) + sel.text + text.slice(doc.offsetAt(sel.range.end));
      offset = start + sel.text.length;
      range = new vscode.Range(sel.range.start, pos.isAfter(sel.range.end) ? pos : sel.range.end);
      lead = sel.text;
    }
    // A secret or ignored file gets no completions at all: its text would be the prompt. Elsewhere tokens are masked
    // (same length, so offsets stay put) before anything is packed or cached.
    if (isSecretPath(doc.uri.path) || await this.d.workspace.refuses(doc.uri)) return undefined;
    const masked = redactSecrets(text);
    if (masked === undefined) return undefined;
    text = masked;
    const where: Where = { doc, version: doc.version, cursor: doc.offsetAt(pos), lead, before: text.slice(0, offset), after: text.slice(offset) };
    if (sel) {
      const full = redactSecrets(doc.getText()) ?? '';
      where.plain = { before: full.slice(0, where.cursor), after: full.slice(where.cursor), replaced: doc.getText(sel.range) };
    }
    const items = (t: string | undefined) => (t ? [this.item(lead + t, range)] : undefined);
    const reused = this.cache.get(doc.uri.toString(), where.before, where.after);
    if (process.env.SNOUT_TRACE) this.d.log(`trace: request ${manual ? 'invoke' : 'auto'} v${doc.version} @${where.cursor} lead ${JSON.stringify(lead)} cache ${reused === undefined ? 'miss' : JSON.stringify(reused.slice(0, 30))}`);
    if (reused !== undefined) return items(reused);

    // The same place is already being completed (VS Code asked again, or a prefetch runs): wait for that job.
    const key = whereKey(where);
    if (this.job?.key === key && !(this.job.done && this.job.final === undefined)) return items(await this.wait(this.job, token));

    if (!manual) {
      await sleep(debounceDelay(s.debounceMs, this.rhythm.meanGap, s.adaptiveDebounce), token);
      if (token.isCancellationRequested || doc.version !== where.version) return undefined;
    }
    const model = this.d.engine.model ?? (manual ? await this.d.engine.start().catch(() => undefined) : undefined);
    if (!model || token.isCancellationRequested) return undefined;
    const job = this.start(where, s);
    return items(await this.wait(job, token));
  }

  private item(text: string, range: vscode.Range): vscode.InlineCompletionItem {
    const it = new vscode.InlineCompletionItem(text, range);
    it.command = { command: afterAcceptCommand, title: 'Snout: next suggestion' };
    return it;
  }

  /** Resolves with what the job shows (its first line or all of it) as soon as there is any; undefined if cancelled. */
  private wait(job: Job, token: vscode.CancellationToken): Promise<string | undefined> {
    if (job.shown !== undefined || job.done) return Promise.resolve(job.shown);
    return new Promise((resolve) => {
      const done = () => { job.waiters.delete(done); sub.dispose(); resolve(token.isCancellationRequested ? undefined : job.shown); };
      const sub = token.onCancellationRequested(done);
      job.waiters.add(done);
    });
  }

  /**
   * True while the active editor shows exactly the text and cursor the job was computed for. (With the suggest widget
   * open, VS Code's next request carries the item then selected: the cache answers it if that is still `lead`.)
   */
  private isCurrent(w: Where): boolean {
    const ed = vscode.window.activeTextEditor;
    return !!ed && ed.document === w.doc && w.doc.version === w.version && ed.selection.isEmpty
      && w.doc.offsetAt(ed.selection.active) === w.cursor;
  }

  /** New text for the job: cached; handed to whoever waits, or (nobody waits) VS Code is asked to request again. */
  private show(job: Job, text: string): void {
    if (text === job.shown) return;
    job.shown = text;
    this.cache.put(job.doc.uri.toString(), job.before, job.after, text);
    // Computed for the suggest widget's item: if the widget closes, the same text still continues what was typed.
    const p = job.plain;
    if (p && job.lead.startsWith(p.replaced) && p.before.endsWith(p.replaced)) {
      this.cache.put(job.doc.uri.toString(), p.before, p.after, job.lead.slice(p.replaced.length) + text);
    }
    if (job.waiters.size) [...job.waiters].forEach((w) => w());
    else if (this.isCurrent(job)) {
      this.d.log(`suggestion ready after VS Code stopped waiting (${text.split('\n').length} lines): asking it to show it`);
      void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    }
  }

  /** Starts a completion job at `w` (the engine supersedes the previous one). */
  private start(w: Where, s: SnoutSettings): Job {
    const job: Job = { ...w, key: whereKey(w), done: false, waiters: new Set() };
    this.job = job;
    void this.run(job, s).catch((e: Error) => this.d.log(`completion failed: ${e.message}`)).finally(() => {
      job.done = true;
      [...job.waiters].forEach((x) => x());
      if (this.job === job && job.final === undefined) this.job = undefined;
    });
    return job;
  }

  private async run(job: Job, s: SnoutSettings): Promise<void> {
    const model = this.d.engine.model;
    if (!model) return;
    const started = Date.now();
    const lineStart = job.before.lastIndexOf('\n') + 1;
    const lineEnd = job.after.indexOf('\n') < 0 ? job.after.length : job.after.indexOf('\n');
    const lineSuffix = job.after.slice(0, lineEnd).replace(/\r$/, '');
    const shape: ShapeContext = { linePrefix: job.before.slice(lineStart).replace(/\r$/, ''), lineSuffix, suffixAfterLine: job.after.slice(lineEnd) };
    const text = job.before + job.after;
    const packed = await this.d.workspace.pack(job.doc, text, job.before.length, {
      contextTokens: s.contextTokens, maxTokens: s.maxTokens, modelContextLength: model.contextLength,
    });
    if (!packed.reused) {
      const imports = packed.sources.filter((x) => x.kind === 'import');
      this.d.log(`context for ${packed.path} (epoch ${packed.epoch}): ${packed.files.length} files, ${imports.length} imported` +
        `${imports.some((x) => x.shrunk) ? ` (${imports.filter((x) => x.shrunk).length} shrunk to definitions)` : ''}, ~${packed.estimatedTokens} tokens` +
        `${imports.length ? `; imports: ${imports.map((x) => x.path).join(', ')}` : ''}`);
    }
    // Superseded while packing: the newer job owns the engine now.
    if (this.job !== job) return;

    let raw = '';
    const multiLine = !wantsSingleLine(lineSuffix);
    const onText = (t: string) => {
      raw += t;
      if (!multiLine || job.shown !== undefined) return;
      const first = completeFirstLine(raw);
      const shaped = first === undefined ? '' : shapeCompletion(first, shape);
      if (shaped) this.show(job, shaped);
    };
    let result: CompleteResult;
    this.inFlight++;
    try {
      result = await this.d.engine.complete({
        id: `c${++this.seq}`, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix,
        suffix: packed.suffix, maxTokens: s.maxTokens, stop: stopSequences(lineSuffix), priority: 'completion',
        sampling: { temperature: 0 },
      }, undefined, onText);
    } finally {
      this.inFlight--;
    }
    const report: CompletionReport = {
      stats: result.stats, latencyMs: Date.now() - started, files: packed.files.length,
      estimatedTokens: packed.estimatedTokens, reusedContext: packed.reused, chars: packed.chars,
    };
    if (result.finishReason === 'cancelled') {
      // Superseded by a newer request: its figures say nothing about the cache, so they are not averaged in.
      this.d.log(`completion cancelled after ${report.latencyMs} ms (prompt ${result.stats.promptTokens} tokens, cached ${result.stats.cachedTokens}${fromDisk(result)})`);
      return;
    }
    this.hitRate.add(result.stats);
    this.d.workspace.estimator.observe(packed.chars, result.stats.promptTokens + result.stats.truncatedTokens);
    // The prompt overflowed the window (the estimate was off): re-rank once with the calibrated estimate (one cache
    // miss) rather than lose the imported files on every keystroke. The text after the cursor cut to its cap is not
    // an overflow.
    if ((result.stats.overflowTokens ?? 0) > 0) this.d.workspace.invalidate();
    this.d.log(formatReport(report, this.hitRate));
    this.d.onReport?.(report);

    const shaped = shapeCompletion(result.text, shape);
    if (!shaped) {
      this.d.log(`nothing to show: ${JSON.stringify(result.text.slice(0, 60))} filtered out`);
      return;
    }
    // Cached even if VS Code has moved on: the next keystroke may be the first character of this very text.
    job.final = shaped;
    this.show(job, shaped);
  }

  /** After an accepted suggestion: complete at the new cursor right away, so the next suggestion is ready sooner. */
  private async prefetch(): Promise<void> {
    const ed = vscode.window.activeTextEditor;
    const s = this.d.settings();
    if (!ed || !ed.selection.isEmpty || !s.enabled || !languageEnabled(s, ed.document.languageId) || this.d.engine.state !== 'ready') return;
    const doc = ed.document;
    const cursor = doc.offsetAt(ed.selection.active);
    if (isSecretPath(doc.uri.path) || await this.d.workspace.refuses(doc.uri)) return;
    const text = redactSecrets(doc.getText());
    if (text === undefined) return;
    const where: Where = { doc, version: doc.version, cursor, lead: '', before: text.slice(0, cursor), after: text.slice(cursor) };
    if (this.cache.get(doc.uri.toString(), where.before, where.after) !== undefined || this.job?.key === whereKey(where)) return;
    this.start(where, s);
  }

  /**
   * Prefills the engine's prefix cache with the context of `editor`'s file (on file switch and when the engine becomes
   * ready), so the first completion there pays only for the last few tokens. Skipped while a real request runs: a
   * completion supersedes older ones from the same client, and the warm-up must never be the one that wins.
   */
  async warm(editor: vscode.TextEditor): Promise<void> {
    const s = this.d.settings();
    const doc = editor.document;
    const model = this.d.engine.model;
    if (isSecretPath(doc.uri.path) || holdsKeyMaterial(doc.getText()) || await this.d.workspace.refuses(doc.uri)) return;
    if (!s.enabled || !languageEnabled(s, doc.languageId) || !model || this.d.engine.state !== 'ready' || this.inFlight > 0) return;
    const offset = doc.offsetAt(editor.selection.active);
    const started = Date.now();
    const packed = await this.d.workspace.pack(doc, redactSecrets(doc.getText()) ?? '', offset, {
      contextTokens: s.contextTokens, maxTokens: s.maxTokens, modelContextLength: model.contextLength,
    });
    if (this.inFlight > 0 || (this.job && !this.job.done)) return;
    try {
      const r = await this.d.engine.complete({
        id: `w${++this.seq}`, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix,
        suffix: packed.suffix, maxTokens: 1, priority: 'completion', sampling: { temperature: 0 },
      });
      this.d.log(`warmed ${packed.path}: ${r.finishReason === 'cancelled' ? 'superseded, ' : ''}prompt ${r.stats.promptTokens} tokens (cached ${r.stats.cachedTokens}${fromDisk(r)}), prefill ${Math.round(r.stats.prefillMs)} ms after ${Date.now() - started} ms`);
    } catch (e) {
      this.d.log(`warm-up failed: ${(e as Error).message}`);
    }
  }

  dispose(): void {
    this.subs.forEach((x) => x.dispose());
    this.cache.clear();
  }
}
