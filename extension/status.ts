// The status bar item: engine state and the last completion's figures; click → the Snout menu. Figures belong to the
// model that produced them: they go when the engine stops, restarts or loads another model, and while disabled.
import * as vscode from 'vscode';
import type { ModelInfo } from '../engine/protocol';
import type { CompletionReport } from './completion/stats';
import type { EngineState } from './engine/client';

const icons: Record<EngineState, string> = {
  stopped: '$(circle-outline)', starting: '$(sync~spin)', loading: '$(sync~spin)', ready: '$(check)',
  restarting: '$(sync~spin)', error: '$(error)',
};

/** Token counts as the indexing line shows them: 950, 12.3K, 32K. */
export const tokensK = (n: number) => (n >= 10_000 ? `${Math.round(n / 1000)}K` : n >= 1000 ? `${(n / 1000).toFixed(1)}K` : String(n));

/** Background indexing as the status bar shows it: running (done of total tokens) or finished (total, seconds). */
export type IndexingState = { running: true; done: number; total: number } | { running: false; total: number; seconds: number };

const compact = (n: number) => (n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n));

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('snout.status', vscode.StatusBarAlignment.Right, 100);
  private state: EngineState = 'stopped';
  private detail: string | undefined;
  private model: ModelInfo | undefined;
  private last: CompletionReport | undefined;
  private enabled = true;
  private remote: string | undefined;
  private indexing: IndexingState | undefined;

  constructor() {
    this.item.name = 'Snout';
    this.item.command = 'snout.showMenu';
    this.render();
    this.item.show();
  }

  setState(state: EngineState, detail?: string): void {
    this.state = state;
    this.detail = detail;
    if (state !== 'ready') {
      this.model = undefined;
      this.last = undefined;
      this.indexing = undefined;
    }
    this.render();
  }

  setModel(model: ModelInfo | undefined): void {
    this.model = model;
    this.last = undefined;
    this.indexing = undefined;
    this.render();
  }

  /** The remote server in use (snout.backend.type openai), or undefined for the local engine. */
  setBackend(remote: string | undefined): void {
    this.remote = remote;
    this.render();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (!enabled) this.last = undefined;
    this.render();
  }

  /** Background indexing: progress while it runs, the total once done (until the next completion's figures). */
  setIndexing(s: IndexingState | undefined): void {
    this.indexing = s;
    if (s && !s.running) this.last = undefined; // the line says "indexed" until the next completion's figures
    this.render();
  }

  report(r: CompletionReport): void {
    if (!this.enabled || this.state !== 'ready') return;
    this.last = r;
    this.render();
  }

  private render(): void {
    const icon = !this.enabled && this.state === 'ready' ? '$(circle-slash)' : icons[this.state];
    let text = `${icon} Snout${this.remote ? ' $(cloud)' : ''}`;
    const s = this.last?.stats;
    const ix = this.state === 'ready' && this.enabled ? this.indexing : undefined;
    if (ix?.running) {
      // Stable wording: the e2e suite waits on it.
      text = `$(sync~spin) Snout: indexing ${tokensK(ix.done)} / ${tokensK(ix.total)} tokens`;
    } else if (ix && !s) {
      text += ` indexed ${tokensK(ix.total)} tokens`;
    } else if (s && this.state === 'ready') {
      const tps = s.decodeMs > 0 ? (1000 * s.decodeTokens) / s.decodeMs : 0;
      text += ` ${compact(s.promptTokens)} ctx · ${compact(s.cachedTokens)} cached · ${tps.toFixed(0)} tok/s`;
      if (s.attention === 'magicpig') text += ` · ${(100 * s.sampledFraction).toFixed(1)}% sampled`;
    }
    this.item.text = text;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Snout** — ${this.remote ? `remote backend ${this.remote}` : 'engine'} ${this.state}${this.detail ? `: ${this.detail}` : ''}${this.enabled ? '' : ' (completions disabled)'}\n\n`);
    if (this.model) md.appendMarkdown(`Model \`${this.model.modelDir}\` (${this.model.modelType}, context ${this.model.contextLength}, ${this.model.provider})\n\n`);
    if (ix) {
      md.appendMarkdown(ix.running
        ? `Reading the repository context in the background: ${ix.done} of ${ix.total} tokens. Completions and questions go first.\n\n`
        : `Repository context indexed: ${ix.total} tokens (${ix.seconds.toFixed(1)} s).\n\n`);
    }
    if (s && this.last) {
      md.appendMarkdown(`Last completion: ${this.last.latencyMs} ms · prompt ${s.promptTokens} tokens (cached ${s.cachedTokens}, truncated ${s.truncatedTokens}) · ` +
        `${this.last.files} context files · prefill ${Math.round(s.prefillMs)} ms · ${s.decodeTokens} tokens in ${Math.round(s.decodeMs)} ms · ` +
        `${s.attention}, ${(100 * s.sampledFraction).toFixed(1)}% of keys sampled\n\n`);
    }
    md.appendMarkdown('Click for the Snout menu.');
    this.item.tooltip = md;
    this.item.backgroundColor = this.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
