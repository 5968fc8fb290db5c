// The inline completion provider: cache → debounce → pack → engine → shape. Cancellation flows from VS Code's token
// through the engine client as $/cancelRequest; typing through a suggestion is served from the cache.
import * as vscode from 'vscode';
import type { CompleteResult } from '../../engine/protocol';
import { holdsKeyMaterial, isSecretPath, redactSecrets } from '../context/secrets';
import type { WorkspaceContext } from '../context/workspace';
import type { EngineClient } from '../engine/client';
import { languageEnabled, type SnoutSettings } from '../settings';
import { CompletionCache } from './cache';
import { debounceDelay, TypingRhythm } from './debounce';
import { shapeCompletion, stopSequences } from './filters';
import { formatReport, HitRate, type CompletionReport } from './stats';

export interface ProviderDeps {
  engine: EngineClient;
  workspace: WorkspaceContext;
  settings: () => SnoutSettings;
  log: (line: string) => void;
  onReport?: (r: CompletionReport) => void;
}

const sleep = (ms: number, token: vscode.CancellationToken) => new Promise<void>((resolve) => {
  const t = setTimeout(() => { sub.dispose(); resolve(); }, ms);
  const sub = token.onCancellationRequested(() => { clearTimeout(t); sub.dispose(); resolve(); });
});

export class SnoutCompletionProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly cache = new CompletionCache();
  private readonly rhythm = new TypingRhythm();
  readonly hitRate = new HitRate();
  private seq = 0;
  private inFlight = 0;
  private readonly sub: vscode.Disposable;

  constructor(private readonly d: ProviderDeps) {
    this.sub = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length && e.document === vscode.window.activeTextEditor?.document) this.rhythm.keystroke(Date.now());
    });
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
    const before = text.slice(0, offset);
    const after = text.slice(offset);
    const key = doc.uri.toString();
    const item = (t: string) => [new vscode.InlineCompletionItem(lead + t, range)];
    const reused = this.cache.get(key, before, after);
    if (reused !== undefined) return item(reused);

    if (!manual) {
      await sleep(debounceDelay(s.debounceMs, this.rhythm.meanGap, s.adaptiveDebounce), token);
      if (token.isCancellationRequested) return undefined;
    }
    const started = Date.now();
    const lineStart = before.lastIndexOf('\n') + 1;
    const lineEnd = after.indexOf('\n') < 0 ? after.length : after.indexOf('\n');
    const linePrefix = before.slice(lineStart).replace(/\r$/, '');
    const lineSuffix = after.slice(0, lineEnd).replace(/\r$/, '');
    const model = this.d.engine.model ?? (manual ? await this.d.engine.start().catch(() => undefined) : undefined);
    if (!model || token.isCancellationRequested) return undefined;
    const packed = await this.d.workspace.pack(doc, text, offset, {
      contextTokens: s.contextTokens, maxTokens: s.maxTokens, modelContextLength: model.contextLength,
    });
    if (!packed.reused) {
      const imports = packed.sources.filter((x) => x.kind === 'import');
      this.d.log(`context for ${packed.path} (epoch ${packed.epoch}): ${packed.files.length} files, ${imports.length} imported` +
        `${imports.some((x) => x.shrunk) ? ` (${imports.filter((x) => x.shrunk).length} shrunk to definitions)` : ''}, ~${packed.estimatedTokens} tokens` +
        `${imports.length ? `; imports: ${imports.map((x) => x.path).join(', ')}` : ''}`);
    }
    if (token.isCancellationRequested) return undefined;

    let result: CompleteResult;
    this.inFlight++;
    try {
      result = await this.d.engine.complete({
        id: `c${++this.seq}`, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix,
        suffix: packed.suffix, maxTokens: s.maxTokens, stop: stopSequences(lineSuffix), priority: 'completion',
        sampling: { temperature: 0 },
      }, token);
    } catch (e) {
      if (!token.isCancellationRequested) this.d.log(`completion failed: ${(e as Error).message}`);
      return undefined;
    } finally {
      this.inFlight--;
    }
    const report: CompletionReport = {
      stats: result.stats, latencyMs: Date.now() - started, files: packed.files.length,
      estimatedTokens: packed.estimatedTokens, reusedContext: packed.reused, chars: packed.chars,
    };
    if (result.finishReason === 'cancelled') {
      // Superseded by the next keystroke: its figures say nothing about the cache, so they are not averaged in.
      this.d.log(`completion cancelled after ${report.latencyMs} ms (prompt ${result.stats.promptTokens} tokens, cached ${result.stats.cachedTokens})`);
      return undefined;
    }
    this.hitRate.add(result.stats);
    this.d.workspace.estimator.observe(packed.chars, result.stats.promptTokens + result.stats.truncatedTokens);
    // The engine had to cut the front of the prompt: the estimate was off. Re-rank once with the calibrated estimate
    // (one cache miss) rather than lose the imported files on every keystroke.
    if (result.stats.truncatedTokens > 0) this.d.workspace.invalidate();
    this.d.log(formatReport(report, this.hitRate));
    this.d.onReport?.(report);

    const shaped = shapeCompletion(result.text, { linePrefix, lineSuffix, suffixAfterLine: after.slice(lineEnd) });
    if (!shaped) return undefined;
    // Cached even if VS Code has moved on: the next keystroke may be the first character of this very text.
    this.cache.put(key, before, after, shaped);
    if (token.isCancellationRequested) return undefined;
    return item(shaped);
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
    if (this.inFlight > 0) return;
    try {
      const r = await this.d.engine.complete({
        id: `w${++this.seq}`, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix,
        suffix: packed.suffix, maxTokens: 1, priority: 'completion', sampling: { temperature: 0 },
      });
      this.d.log(`warmed ${packed.path}: ${r.finishReason === 'cancelled' ? 'superseded' : `prompt ${r.stats.promptTokens} tokens (cached ${r.stats.cachedTokens}), prefill ${Math.round(r.stats.prefillMs)} ms`} after ${Date.now() - started} ms`);
    } catch (e) {
      this.d.log(`warm-up failed: ${(e as Error).message}`);
    }
  }

  dispose(): void {
    this.sub.dispose();
    this.cache.clear();
  }
}
