// Activation and wiring: settings → engine client → workspace context → completion provider, Ask panel, status bar,
// commands. Every registration is a Disposable in context.subscriptions, so deactivate (and a reload) cleans up all.
import path from 'node:path';
import * as vscode from 'vscode';
import { AskPanel } from './ask/panel';
import { downloadModelCommand, hubTokenKey, setSecretCommand } from './download/command';
import { BackendSwitch } from './engine/backend';
import { SnoutCompletionProvider } from './completion/provider';
import { initialCharsPerToken } from './context/tokens';
import { WorkspaceContext } from './context/workspace';
import { EngineClient } from './engine/client';
import { isModelDir, resolveModelDir } from './engine/model-path';
import { ProgressNotifications } from './progress';
import { engineSettings, readSettings } from './settings';
import { StatusBar } from './status';
import { backendKeySecret, connectRemoteCommand, makeRemoteBackend, readBackendSettings } from './remote/adapter';

const realModelHint = 'For useful completions run "Snout: Download model…" (Qwen2.5-Coder sized for this machine), or pick a model folder with "Snout: Select model folder…".';

let engine: BackendSwitch | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('Snout');
  context.subscriptions.push(output);
  const log = (line: string) => output.appendLine(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
  const settings = readSettings;

  const status = new StatusBar();
  status.setEnabled(settings().enabled);
  const progress = new ProgressNotifications();
  context.subscriptions.push(status, progress);

  const workspaceRoot = () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const modelDir = () => resolveModelDir(settings().modelPath, context.extensionPath, workspaceRoot());
  let crashTold = false;
  const client = new EngineClient({
    enginePath: path.join(context.extensionPath, 'dist', 'engine.js'),
    loadParams: () => {
      const s = settings();
      const dir = modelDir();
      if (!dir) throw new Error('no model folder: set snout.modelPath or run "Snout: Select model folder…"');
      return { modelDir: dir, provider: s.device, attention: { method: s.attention.method, K: s.attention.K, L: s.attention.L } };
    },
    log,
    onState: (state, detail) => {
      status.setState(state, detail);
      if (state !== 'loading') progress.close('load:');
    },
    onProgress: (p) => progress.handle(p),
    onReady: (model) => {
      status.setModel(model);
      workspace.estimator.reset(initialCharsPerToken(model.vocabSize));
      workspace.invalidate();
      warmSoon(vscode.window.activeTextEditor);
      if (path.basename(model.modelDir) === 'tiny-coder-hf') {
        log(`Using the bundled demo model (5M parameters). ${realModelHint}`);
        // First run: offer a real model once (the walkthrough keeps the offer afterwards).
        if (!context.globalState.get('snout.offeredDownload')) {
          void context.globalState.update('snout.offeredDownload', true);
          void vscode.window.showInformationMessage('Snout is running its 5M demo model, which shows the machinery but not useful code.', 'Download a model…', 'Get started').then((a) => {
            if (a === 'Download a model…') void vscode.commands.executeCommand('snout.downloadModel');
            if (a === 'Get started') void vscode.commands.executeCommand('workbench.action.openWalkthrough', `${context.extension.id}#snout.welcome`, false);
          });
        }
      }
    },
    onCrash: (c) => {
      // Told once per session; the log has every crash.
      if (crashTold && c.restartInMs !== undefined) return;
      crashTold = true;
      const msg = c.restartInMs === undefined ? 'Snout: the engine keeps crashing and was stopped. See the log.' : 'Snout: the engine stopped unexpectedly and is restarting.';
      void vscode.window.showWarningMessage(msg, 'Show log', 'Restart engine').then((a) => {
        if (a === 'Show log') output.show(true);
        if (a === 'Restart engine') void vscode.commands.executeCommand('snout.restartEngine');
      });
    },
  });
  // The local engine or a remote OpenAI-compatible server (snout.backend.type), behind one surface.
  const backend = new BackendSwitch(client, () => makeRemoteBackend(context, {
    log,
    onState: (state, detail) => status.setState(state, detail),
    onReady: (model) => {
      status.setModel(model);
      workspace.estimator.reset(3.5);
      workspace.invalidate();
    },
    charsPerToken: () => workspace.estimator.ratio,
    contextTokens: () => settings().contextTokens,
  }));
  engine = backend;
  context.subscriptions.push({ dispose: () => { void backend.dispose(); } });
  const useBackend = () => {
    const b = readBackendSettings();
    status.setBackend(b.type === 'openai' ? `${b.url}${b.model ? ` · ${b.model}` : ''}` : undefined);
    if (b.type === 'openai') log(`using the remote backend ${b.url || '(snout.backend.url not set)'}`);
    return backend.use(b.type);
  };

  const workspace = new WorkspaceContext(settings, log);
  context.subscriptions.push(workspace);
  workspace.warmUp();

  const provider = new SnoutCompletionProvider({ engine: backend, workspace, settings, log, onReport: (r) => status.report(r) });
  context.subscriptions.push(provider, vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider));

  // Warm the engine's prefix cache for the file the user is looking at (after a short pause on it).
  let warmTimer: NodeJS.Timeout | undefined;
  const warmSoon = (editor: vscode.TextEditor | undefined) => {
    clearTimeout(warmTimer);
    if (editor) warmTimer = setTimeout(() => { void provider.warm(editor); }, 400);
  };
  context.subscriptions.push(vscode.window.onDidChangeActiveTextEditor(warmSoon), { dispose: () => clearTimeout(warmTimer) });

  const ask = new AskPanel(context.extensionUri, backend, workspace, settings, log);
  context.subscriptions.push(ask);

  const startEngine = () => (readBackendSettings().type === 'openai' ? useBackend() : client.start()).catch((e: Error) => {
    log(`engine failed to start: ${e.message}`);
    if (backend.isRemote) return undefined; // the status bar has the line; the backend retries with backoff
    void vscode.window.showErrorMessage(`Snout: could not load the model (${e.message}).`, 'Select model folder…', 'Show log').then((a) => {
      if (a === 'Select model folder…') void vscode.commands.executeCommand('snout.selectModel');
      if (a === 'Show log') output.show(true);
    });
    return undefined;
  });

  const command = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  command('snout.askRepository', (question?: string) => ask.run(typeof question === 'string' ? question : undefined));
  command('snout.triggerCompletion', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'));
  command('snout.restartEngine', async () => {
    crashTold = false;
    log('restarting engine (requested)');
    await backend.restart().catch((e: Error) => log(`restart failed: ${e.message}`));
  });
  command('snout.downloadModel', () => downloadModelCommand(context, log));
  command('snout.setHubToken', () => setSecretCommand(context, hubTokenKey, 'Snout: Hugging Face token', 'A Hugging Face access token (read) for gated or private repositories; kept in VS Code\'s secret storage.'));
  command('snout.connectRemote', async () => {
    const wasRemote = backend.isRemote && readBackendSettings().type === 'openai';
    const url = readBackendSettings().url;
    if (await connectRemoteCommand(context) && wasRemote && readBackendSettings().url === url) await useBackend().catch(() => undefined);
  });
  command('snout.useLocal', () => vscode.workspace.getConfiguration('snout').update('backend.type', 'local', vscode.ConfigurationTarget.Global));
  command('snout.setBackendKey', async () => {
    if (await setSecretCommand(context, backendKeySecret, 'Snout: remote API key', 'The API key (bearer token) of the server in snout.backend.url; kept in VS Code\'s secret storage.') && backend.isRemote) await backend.restart().catch(() => undefined);
  });
  command('snout.toggle', async () => {
    const c = vscode.workspace.getConfiguration('snout');
    // Write where the effective value comes from, or a workspace setting would silently win over the toggle.
    const where = c.inspect('enabled');
    const target = where?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
      : where?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await c.update('enabled', !settings().enabled, target);
    log(`completions ${settings().enabled ? 'enabled' : 'disabled'}`);
  });
  command('snout.showLog', () => output.show(true));
  command('snout.selectModel', async (folder?: string) => {
    let dir = typeof folder === 'string' ? folder : undefined;
    if (!dir) {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use this model',
        title: 'Snout: select a Hugging Face model folder (config.json, tokenizer.json, *.safetensors)',
      });
      dir = picked?.[0]?.fsPath;
    }
    if (!dir) return;
    if (!isModelDir(dir)) {
      void vscode.window.showErrorMessage(`Snout: ${dir} has no config.json and tokenizer.json. ${realModelHint}`);
      return;
    }
    await vscode.workspace.getConfiguration('snout').update('modelPath', dir, vscode.ConfigurationTarget.Global);
  });
  command('snout.showMenu', async () => {
    const s = settings();
    const m = client.model;
    type Item = vscode.QuickPickItem & { run?: () => unknown };
    const items: Item[] = [
      { label: s.enabled ? '$(circle-slash) Disable completions' : '$(check) Enable completions', run: () => vscode.commands.executeCommand('snout.toggle') },
      { label: '$(comment-discussion) Ask about repository…', run: () => vscode.commands.executeCommand('snout.askRepository') },
      { label: '$(cloud-download) Download model…', run: () => vscode.commands.executeCommand('snout.downloadModel') },
      backend.isRemote ? { label: '$(vm) Use the local engine', run: () => vscode.commands.executeCommand('snout.useLocal') }
        : { label: '$(cloud) Connect to a remote server…', run: () => vscode.commands.executeCommand('snout.connectRemote') },
      { label: '$(folder-opened) Select model folder…', description: m ? path.basename(m.modelDir) : undefined, run: () => vscode.commands.executeCommand('snout.selectModel') },
      { label: '$(debug-restart) Restart engine', description: client.state, run: () => vscode.commands.executeCommand('snout.restartEngine') },
      { label: '$(output) Show log', run: () => output.show(true) },
      { label: '$(gear) Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', 'snout.') },
    ];
    if (!m || path.basename(m.modelDir) === 'tiny-coder-hf') {
      items.push({ label: '$(lightbulb) Get a real code model', detail: 'Download Qwen2.5-Coder sized for this machine (Snout: Download model…)', run: () => vscode.commands.executeCommand('snout.downloadModel') });
    }
    const picked = await vscode.window.showQuickPick(items, { title: `Snout — engine ${client.state}${m ? `, ${path.basename(m.modelDir)} (context ${m.contextLength})` : ''}` });
    await picked?.run?.();
  });

  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('snout.enabled')) status.setEnabled(settings().enabled);
    if (e.affectsConfiguration('snout.backend')) {
      log('backend settings changed');
      void useBackend().catch((err: Error) => log(`backend: ${err.message}`));
    } else if (engineSettings.some((k) => e.affectsConfiguration(k)) && !backend.isRemote) {
      log('engine settings changed; restarting engine');
      void client.restart().catch((err: Error) => log(`restart failed: ${err.message}`));
    }
    if (e.affectsConfiguration('snout.contextTokens') || e.affectsConfiguration('snout.maxTokens')) workspace.invalidate();
  }));

  log(`Snout ${context.extension.packageJSON.version} activating (runtime ${process.execPath}, model ${modelDir() ?? 'not found'})`);
  void startEngine();
}

export async function deactivate(): Promise<void> {
  await engine?.dispose();
  engine = undefined;
}
