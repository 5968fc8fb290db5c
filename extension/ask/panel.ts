// "Snout: Ask about repository": question → webview panel that streams the answer over the packed repository.
import * as vscode from 'vscode';
import type { ChatMessage, CompleteResult } from '../../engine/protocol';
import { cutAtSpecialToken, cutPartialSpecialToken } from '../completion/filters';
import type { WorkspaceContext } from '../context/workspace';
import type { Backend } from '../engine/backend';
import type { SnoutSettings } from '../settings';
import { askHtml } from './html';
import type { AskFile, FromWebview, ToWebview } from './messages';

const systemPrompt = 'You are Snout, a coding assistant. Answer the question about the repository whose files are given above. ' +
  'Be concise, cite file paths, and use Markdown with fenced code blocks.';

export class AskPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private cts: vscode.CancellationTokenSource | undefined;
  private files = new Map<string, vscode.Uri>();
  private ready: Promise<void> = Promise.resolve();
  private seq = 0;

  constructor(private readonly extensionUri: vscode.Uri, private readonly engine: Backend,
    private readonly workspace: WorkspaceContext, private readonly settings: () => SnoutSettings,
    private readonly log: (line: string) => void) {}

  /** The command: ask for a question (unless given, e.g. by tests) and answer it in the panel. */
  async run(question?: string): Promise<void> {
    const q = question ?? await vscode.window.showInputBox({
      title: 'Snout: Ask about repository', prompt: 'Your question about this repository', placeHolder: 'Where is the request cancelled?',
      ignoreFocusOut: true,
    });
    if (!q?.trim()) return;
    await this.answer(q.trim());
  }

  private ensurePanel(): vscode.WebviewPanel {
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
      return this.panel;
    }
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const panel = vscode.window.createWebviewPanel('snout.ask', 'Snout: Ask', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true, localResourceRoots: [dist, media], retainContextWhenHidden: true,
    });
    let markReady!: () => void;
    this.ready = new Promise((r) => { markReady = r; });
    panel.webview.html = askHtml({
      cspSource: panel.webview.cspSource,
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'ask.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(media, 'ask.css')).toString(),
    });
    panel.webview.onDidReceiveMessage((m: FromWebview) => {
      if (m.type === 'ready') markReady();
      else if (m.type === 'cancel') this.cts?.cancel();
      else if (m.type === 'open') {
        // Only files that were in the context can be opened from the panel.
        const uri = this.files.get(m.path);
        if (uri) void vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.One, preview: true });
      }
    });
    panel.onDidDispose(() => {
      this.cts?.cancel();
      this.panel = undefined;
    });
    this.panel = panel;
    return panel;
  }

  private async post(m: ToWebview): Promise<void> {
    await this.ready;
    await this.panel?.webview.postMessage(m);
  }

  private async answer(question: string): Promise<void> {
    this.cts?.cancel();
    const cts = new vscode.CancellationTokenSource();
    this.cts = cts;
    this.ensurePanel();
    const s = this.settings();
    try {
      const model = await this.engine.start();
      const editor = vscode.window.activeTextEditor;
      // A small model's window is shared: the answer gets at most half of it, the repository the rest.
      const maxTokens = Math.min(s.askMaxTokens, Math.floor(model.contextLength / 2));
      const packed = await this.workspace.packForQuestion(editor?.document, {
        contextTokens: s.contextTokens, maxTokens, modelContextLength: model.contextLength,
      }, systemPrompt.length + question.length, question);
      this.files = new Map(packed.files.map((f) => [f.path, vscode.Uri.joinPath(packed.root ?? this.extensionUri, f.path)]));
      const files: AskFile[] = packed.sources.map((x) => ({ path: x.path, kind: x.kind, shrunk: x.shrunk, tokens: x.tokens, reason: x.reason }));
      await this.post({ type: 'start', question, files, estimatedTokens: packed.estimatedTokens });
      const messages: ChatMessage[] = [{ role: 'system', content: systemPrompt }, { role: 'user', content: question }];
      const started = Date.now();
      // The answer as the user sees it: `shown` characters of `full` have been posted. A special token (the model
      // starting another file or turn) ends the answer and stops generation; a partial one at the end is held back.
      let full = '';
      let shown = 0;
      let ended = false;
      let flush: NodeJS.Timeout | undefined;
      const send = (final: boolean) => {
        flush = undefined;
        const clean = cutAtSpecialToken(full);
        const visible = final || clean.length < full.length ? clean : cutPartialSpecialToken(clean);
        if (visible.length > shown) void this.post({ type: 'token', text: visible.slice(shown) });
        shown = Math.max(shown, visible.length);
      };
      // Tokens are batched a little so a fast model does not flood the webview with one message per token.
      const onText = (t: string) => {
        if (ended) return;
        full += t;
        if (cutAtSpecialToken(full).length < full.length) {
          ended = true;
          clearTimeout(flush);
          send(true);
          cts.cancel();
          return;
        }
        flush ??= setTimeout(() => send(false), 30);
      };
      let result: CompleteResult;
      try {
        result = await this.engine.ask({ id: `ask${++this.seq}`, messages, files: packed.files, maxTokens }, cts.token, onText);
      } catch (e) {
        // A batch still waiting would land after the error and put the panel back to "Answering…".
        clearTimeout(flush);
        if (!ended) throw e;
        result = { id: '', text: full, finishReason: 'stop', stats: { promptTokens: 0, cachedTokens: 0, truncatedTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, attention: 'dense', sampledFraction: 1 } };
      }
      clearTimeout(flush);
      send(true);
      if (ended && result.finishReason === 'cancelled') result = { ...result, finishReason: 'stop' };
      const st = result.stats;
      const tps = st.decodeMs > 0 ? (1000 * st.decodeTokens) / st.decodeMs : 0;
      const summary = `${packed.files.length} files · prompt ${st.promptTokens} tokens (cached ${st.cachedTokens}, truncated ${st.truncatedTokens}) · ` +
        `${st.decodeTokens} tokens at ${tps.toFixed(1)} tok/s · ${st.attention}, ${(100 * st.sampledFraction).toFixed(1)}% sampled · ${Date.now() - started} ms`;
      this.log(`ask: ${result.finishReason}; ${summary}`);
      await this.post({ type: 'done', finishReason: result.finishReason, summary });
    } catch (e) {
      const cancelled = cts.token.isCancellationRequested;
      this.log(`ask ${cancelled ? 'cancelled' : `failed: ${(e as Error).message}`}`);
      await this.post(cancelled ? { type: 'done', finishReason: 'cancelled', summary: 'Cancelled.' } : { type: 'error', message: (e as Error).message });
    } finally {
      if (this.cts === cts) this.cts = undefined;
      cts.dispose();
    }
  }

  dispose(): void {
    this.cts?.cancel();
    this.panel?.dispose();
  }
}
