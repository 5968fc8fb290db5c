// Background indexing: when a workspace opens, the active file changes or the packed file list changes (a saved
// context file), ask the engine (snout/index) to prefill the repository prefix that the next completion's prompt
// starts with, at a priority below completions and asks. The status bar shows the tokens done; a notification with a
// progress bar appears only for the first long run in a workspace (remembered in globalState).
import * as vscode from 'vscode';
import type { ProgressParams } from '../engine/protocol';
import { holdsKeyMaterial, isSecretPath, redactSecrets } from './context/secrets';
import type { WorkspaceContext } from './context/workspace';
import type { BackendSwitch } from './engine/backend';
import { languageEnabled, type SnoutSettings } from './settings';
import { tokensK, type IndexingState } from './status';

export interface IndexerDeps {
  engine: BackendSwitch;
  workspace: WorkspaceContext;
  settings: () => SnoutSettings;
  log: (line: string) => void;
  onState: (s: IndexingState | undefined) => void;
  /** globalState: which workspaces have already seen the notification. */
  memento: vscode.Memento;
  workspaceKey: () => string | undefined;
}

/** A run expected to take longer than this (from its first measured rate) gets the notification, once per workspace. */
export const NOTIFY_AFTER_MS = 10_000;
/** Rate is measured over at least this long before deciding on the notification. */
const MEASURE_MS = 300;

interface Notice {
  report: (done: number, total: number) => void;
  close: () => void;
}

interface Run {
  id: string;
  key: string;
  started: number;
  first?: { t: number; done: number };
  decided?: boolean;
  notice?: Notice;
}

export class BackgroundIndexer implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private run: Run | undefined;
  /** The context (file and packer epoch) last indexed to the end: switching back to it asks for nothing. */
  private lastDone: string | undefined;
  private cts = new vscode.CancellationTokenSource();

  constructor(private readonly d: IndexerDeps) {}

  /** Index `editor`'s context after `delayMs` of quiet (a newer call restarts the wait). */
  schedule(editor: vscode.TextEditor | undefined, delayMs = 750): void {
    clearTimeout(this.timer);
    if (!editor) return;
    this.timer = setTimeout(() => { void this.start(editor); }, delayMs);
  }

  /** Whether indexing applies now (setting on, completions on, a backend that indexes). */
  active(): boolean {
    const s = this.d.settings();
    return s.indexing && s.enabled && this.d.engine.canIndex;
  }

  /** Stops the run in flight (setting turned off, backend switched) and forgets what was indexed. */
  stop(): void {
    clearTimeout(this.timer);
    this.cts.cancel();
    this.cts.dispose();
    this.cts = new vscode.CancellationTokenSource();
    this.run?.notice?.close();
    this.run = undefined;
    this.lastDone = undefined;
    this.d.onState(undefined);
  }

  private async start(editor: vscode.TextEditor): Promise<void> {
    const s = this.d.settings();
    const doc = editor.document;
    const model = this.d.engine.model;
    if (!this.active() || !languageEnabled(s, doc.languageId) || !model || this.d.engine.state !== 'ready') return;
    if (isSecretPath(doc.uri.path) || holdsKeyMaterial(doc.getText()) || await this.d.workspace.refuses(doc.uri)) return;
    const offset = doc.offsetAt(editor.selection.active);
    const packed = await this.d.workspace.pack(doc, redactSecrets(doc.getText()) ?? '', offset, {
      contextTokens: s.contextTokens, maxTokens: s.maxTokens, modelContextLength: model.contextLength,
    });
    const key = `${packed.path}|${packed.epoch}`;
    if (packed.reused && key === this.lastDone) return;
    if (this.run?.key === key) return; // already on it
    const run: Run = { id: `x${++this.seq}`, key, started: Date.now() };
    this.run?.notice?.close();
    this.run = run;
    try {
      // A newer snout/index from this client supersedes the one in flight (it resolves 'cancelled').
      const r = await this.d.engine.index({
        id: run.id, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix,
        suffix: packed.suffix, maxTokens: s.maxTokens,
      }, this.cts.token);
      const seconds = (Date.now() - run.started) / 1000;
      this.d.log(`indexing ${packed.path} (epoch ${packed.epoch}, ${packed.files.length} files): ${r.finishReason}, ${r.indexedTokens}/${r.totalTokens} tokens `
        + `(${r.cachedTokens} already cached), prefill ${Math.round(r.prefillMs)} ms, ${Math.max(0, r.segments - 1)} times preempted, ${seconds.toFixed(1)} s`);
      if (this.run !== run) return;
      if (r.finishReason === 'done') {
        this.lastDone = key;
        this.d.onState({ running: false, total: r.totalTokens, seconds });
      } else {
        this.d.onState(undefined);
      }
    } catch (e) {
      this.d.log(`indexing failed: ${(e as Error).message}`);
      if (this.run === run) this.d.onState(undefined);
    } finally {
      if (this.run === run) {
        run.notice?.close();
        this.run = undefined;
      }
    }
  }

  /** snout/progress from the engine: the status bar line, and the notification for a first long run. */
  handleProgress(p: ProgressParams): void {
    const run = this.run;
    if (!run || p.kind !== 'index' || p.id !== run.id || p.done === undefined || p.total === undefined) return;
    this.d.onState({ running: true, done: p.done, total: p.total });
    const now = Date.now();
    if (!run.first) run.first = { t: now, done: p.done };
    else if (!run.decided && now - run.first.t >= MEASURE_MS && p.done > run.first.done) {
      run.decided = true;
      const remainingMs = ((p.total - p.done) * (now - run.first.t)) / (p.done - run.first.done);
      const ws = this.d.workspaceKey();
      const flag = `snout.indexingNotified:${ws}`;
      if (remainingMs > NOTIFY_AFTER_MS && ws && !this.d.memento.get(flag)) {
        void this.d.memento.update(flag, true);
        run.notice = showNotice();
        this.d.log(`indexing will take ~${Math.round(remainingMs / 1000)} s: showing its progress once for this workspace`);
      }
    }
    run.notice?.report(p.done, p.total);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.run?.notice?.close();
    this.cts.cancel();
    this.cts.dispose();
  }
}

function showNotice(): Notice {
  let resolve: (() => void) | undefined;
  let progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  let shown = 0;
  let pending: [number, number] | undefined;
  const report = (done: number, total: number) => {
    if (!progress) { pending = [done, total]; return; }
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 100;
    progress.report({ message: `${tokensK(done)} / ${tokensK(total)} tokens (completions go first)`, increment: Math.max(0, pct - shown) });
    shown = Math.max(shown, pct);
  };
  void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Snout: indexing the repository' }, (p) => {
    progress = p;
    if (pending) report(...pending);
    return new Promise<void>((r) => { resolve = r; });
  });
  return { report, close: () => resolve?.() };
}
