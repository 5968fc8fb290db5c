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
import { isModelPath, resolveModelDir } from './engine/model-path';
import { BackgroundIndexer } from './indexing';
import { ProgressNotifications } from './progress';
import { engineSettings, readSettings } from './settings';
import { settingProblems, type SettingProblem } from './settings-check';
import { StatusBar } from './status';
import { backendKeySecret, connectRemoteCommand, makeRemoteBackend, readBackendSettings } from './remote/adapter';

const realModelHint = 'For useful completions run "Snout: Download model…" (Qwen2.5-Coder sized for this machine), or pick a .gguf file or model folder with "Snout: Select model…".';

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
      // A bad setting fails here with its own words, not later inside the engine.
      const problem = settingProblems(s, dir)[0];
      if (problem) throw Object.assign(new Error(problem.message), { problem });
      if (!dir) throw new Error('no model folder: set snout.modelPath or run "Snout: Select model folder…"');
      return {
        modelDir: dir, provider: s.device, weights: s.weights,
        // Packed models keep their graphs here between loads (engine/model/graph-cache.ts), and long prompts their KV
        // cache and index (prefix/, engine/generate/disk-prefix-cache.ts) under snout.cache.maxGB.
        cacheDir: path.join(context.globalStorageUri.fsPath, 'model-cache'),
        prefixCacheMaxBytes: Math.round(Math.max(0, Math.min(1024, Number.isFinite(s.cacheMaxGB) ? s.cacheMaxGB : 4)) * 2 ** 30),
        attention: { method: s.attention.method, K: s.attention.K, L: s.attention.L, kvDtype: s.attention.kvDtype },
      };
    },
    log,
    onState: (state, detail) => {
      status.setState(state, detail);
      if (state !== 'loading') progress.close('load:');
    },
    // Indexing progress goes to the status bar (and its own once-per-workspace notification), not to the generic ones.
    onProgress: (p) => (p.kind === 'index' ? indexer.handleProgress(p) : progress.handle(p)),
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

  const indexer = new BackgroundIndexer({
    engine: backend, workspace, settings, log, onState: (s) => status.setIndexing(s),
    memento: context.globalState, workspaceKey: workspaceRoot,
  });
  context.subscriptions.push(indexer);

  // Warm the engine's prefix cache for the file the user is looking at (after a short pause on it): background
  // indexing of its repository prefix when that is on (low priority, preemptible), else a 1-token completion.
  let warmTimer: NodeJS.Timeout | undefined;
  const warmSoon = (editor: vscode.TextEditor | undefined) => {
    clearTimeout(warmTimer);
    if (indexer.active()) { indexer.schedule(editor); return; }
    if (editor) warmTimer = setTimeout(() => { void provider.warm(editor); }, 400);
  };
  context.subscriptions.push(vscode.window.onDidChangeActiveTextEditor(warmSoon), { dispose: () => clearTimeout(warmTimer) });
  // A saved context file changes the packed file list from it on (packer.fileChanged): index the new prefix, after
  // the save settles (auto-save can fire every second while typing; the schedule restarts on each).
  context.subscriptions.push(vscode.workspace.onDidSaveTextDocument(() => {
    if (indexer.active()) indexer.schedule(vscode.window.activeTextEditor, 2000);
  }));

  const ask = new AskPanel(context.extensionUri, backend, workspace, settings, log);
  context.subscriptions.push(ask);

  // Clears a setting wherever it is set (user, workspace, folder), so its default applies again.
  const resetSetting = async (key: string) => {
    const [section, ...rest] = key.split('.');
    const c = vscode.workspace.getConfiguration(section);
    const name = rest.join('.');
    const where = c.inspect(name);
    if (where?.workspaceFolderValue !== undefined) await c.update(name, undefined, vscode.ConfigurationTarget.WorkspaceFolder);
    if (where?.workspaceValue !== undefined) await c.update(name, undefined, vscode.ConfigurationTarget.Workspace);
    if (where?.globalValue !== undefined) await c.update(name, undefined, vscode.ConfigurationTarget.Global);
  };
  // One notification per failed (re)start, with the way out: the setting at fault gets its own actions.
  const loadFailed = (e: Error) => {
    log(`engine failed to start: ${e.message}`);
    if (backend.isRemote) return undefined; // the status bar has the line; the backend retries with backoff
    const problem = (e as Error & { problem?: SettingProblem }).problem;
    const actions = problem?.fix === 'selectModel' ? ['Select model folder…', 'Use the demo model', 'Show log']
      : problem ? [`Reset ${problem.setting}`, 'Open settings'] : ['Select model folder…', 'Show log'];
    const text = problem ? `Snout is off: ${problem.message}.` : `Snout: could not load the model (${e.message}).`;
    void vscode.window.showErrorMessage(text, ...actions).then((a) => {
      if (a === 'Select model folder…') void vscode.commands.executeCommand('snout.selectModel');
      if (a === 'Use the demo model') void resetSetting('snout.modelPath');
      if (a === `Reset ${problem?.setting}` && problem) void resetSetting(problem.setting);
      if (a === 'Open settings') void vscode.commands.executeCommand('workbench.action.openSettings', problem?.setting ?? 'snout.');
      if (a === 'Show log') output.show(true);
    });
    return undefined;
  };
  const startEngine = () => (readBackendSettings().type === 'openai' ? useBackend() : client.start()).catch(loadFailed);

  const command = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  command('snout.askRepository', (question?: string) => ask.run(typeof question === 'string' ? question : undefined));
  command('snout.triggerCompletion', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'));
  command('snout.restartEngine', async () => {
    crashTold = false;
    log('restarting engine (requested)');
    await backend.restart().catch(loadFailed);
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
      // Open dialogs on Windows and Linux pick files or folders, not both: ask which first.
      const kind = await vscode.window.showQuickPick([
        { label: '$(file) A GGUF file (.gguf)', description: 'what llama.cpp, LM Studio and Ollama users have', gguf: true },
        { label: '$(folder) A Hugging Face model folder', description: 'config.json, tokenizer.json, *.safetensors', gguf: false },
      ], { title: 'Snout: select a model' });
      if (!kind) return;
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: !kind.gguf, canSelectFiles: kind.gguf, canSelectMany: false, openLabel: 'Use this model',
        filters: kind.gguf ? { 'GGUF model': ['gguf'] } : undefined,
        title: kind.gguf ? 'Snout: select a .gguf model file' : 'Snout: select a Hugging Face model folder (config.json, tokenizer.json, *.safetensors)',
      });
      dir = picked?.[0]?.fsPath;
    }
    if (!dir) return;
    if (!isModelPath(dir)) {
      void vscode.window.showErrorMessage(`Snout: ${dir} is neither a .gguf file nor a folder with config.json and tokenizer.json. ${realModelHint}`);
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
    if (e.affectsConfiguration('snout.indexing.enabled') || e.affectsConfiguration('snout.enabled')) {
      if (indexer.active()) indexer.schedule(vscode.window.activeTextEditor);
      else indexer.stop();
    }
    if (e.affectsConfiguration('snout.backend')) {
      log('backend settings changed');
      void useBackend().catch((err: Error) => log(`backend: ${err.message}`));
    } else if (engineSettings.some((k) => e.affectsConfiguration(k)) && !backend.isRemote) {
      log('engine settings changed; restarting engine');
      void client.restart().catch(loadFailed);
    }
    if (e.affectsConfiguration('snout.contextTokens') || e.affectsConfiguration('snout.maxTokens')) {
      workspace.invalidate();
      if (indexer.active()) indexer.schedule(vscode.window.activeTextEditor);
    }
  }));

  log(`Snout ${context.extension.packageJSON.version} activating (runtime ${process.execPath}, model ${modelDir() ?? 'not found'})`);
  void startEngine();
}

export async function deactivate(): Promise<void> {
  await engine?.dispose();
  engine = undefined;
}
