// "Snout: Download model…": the VS Code side of hub.ts — a quick pick of presets sized for this machine (or any hub
// repository), a cancellable progress notification, the hub token from SecretStorage, VS Code's proxy settings, and
// snout.modelPath set to the finished model (the engine restarts on it).
import os from 'node:os';
import * as vscode from 'vscode';
import { downloadModel, HubError, listRepoFiles, parseRepoId, progressLine, selectFiles, type HubFile, type HubOptions } from './hub';
import { formatBytes, presetsFor, type ModelPreset } from './presets';

export const hubTokenKey = 'snout.hubToken';

interface Choice { repo: string; format: 'gguf' | 'safetensors'; quant?: string; name: string; label: string }

async function hubOptions(context: vscode.ExtensionContext): Promise<HubOptions> {
  const http = vscode.workspace.getConfiguration('http');
  return {
    hubUrl: vscode.workspace.getConfiguration('snout').get('hub.url', 'https://huggingface.co') || 'https://huggingface.co',
    token: await context.secrets.get(hubTokenKey),
    proxy: http.get<string>('proxy') || process.env.HTTPS_PROXY || process.env.https_proxy || process.env.HTTP_PROXY || process.env.http_proxy || undefined,
    strictSSL: http.get<boolean>('proxyStrictSSL', true),
  };
}

async function pick(context: vscode.ExtensionContext): Promise<Choice | undefined> {
  const ram = os.totalmem();
  type Item = vscode.QuickPickItem & { preset?: ModelPreset; custom?: boolean };
  const items: Item[] = presetsFor(ram).map(({ preset, fits, recommended }) => ({
    label: `${recommended ? '$(star-full) ' : ''}${preset.label}`,
    description: `${formatBytes(preset.diskBytes)} on disk · needs ~${formatBytes(preset.ramBytes)} RAM`,
    detail: recommended ? `Recommended for this machine (${formatBytes(ram)} RAM)` : fits ? undefined : `$(warning) More RAM than this machine has to spare (${formatBytes(ram)})`,
    preset,
  }));
  items.push({ label: '$(repo) Any Hugging Face repository…', description: 'owner/name', custom: true });
  const chosen = await vscode.window.showQuickPick(items, { title: 'Snout: download a model', placeHolder: 'RAM figures: weights as float32 plus a 32K-token KV cache', matchOnDescription: true });
  if (!chosen) return undefined;
  if (chosen.preset) {
    const p = chosen.preset;
    return { repo: p.repo, format: p.format === 'safetensors' ? 'safetensors' : 'gguf', quant: p.quant, name: p.id, label: p.label };
  }
  const input = await vscode.window.showInputBox({
    title: 'Snout: download a model', prompt: 'Hugging Face repository id (Llama-family safetensors, or GGUF)', placeHolder: 'Qwen/Qwen2.5-Coder-1.5B',
    validateInput: (v) => (parseRepoId(v) ? undefined : 'expected owner/name'),
  });
  const repo = input && parseRepoId(input);
  if (!repo) return undefined;
  const files = await listRepoFiles(repo, await hubOptions(context));
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf') && !f.path.includes('/'));
  const name = repo.replace('/', '--');
  if (selectFiles(files, 'safetensors').some((f) => f.path.endsWith('.safetensors'))) return { repo, format: 'safetensors', name, label: repo };
  if (!ggufs.length) throw new HubError('no-files', `${repo} has neither *.safetensors nor *.gguf files Snout can load.`);
  const q = await vscode.window.showQuickPick(ggufs.map((f) => ({ label: f.path, description: formatBytes(f.size), file: f })), { title: `Snout: which GGUF file of ${repo}?` });
  if (!q) return undefined;
  const quant = /[-_.](q\d\w*|f16|fp16|bf16|f32)(?:[-.]|$)/i.exec(q.file.path)?.[1];
  return { repo, format: 'gguf', quant, name: `${name}--${(quant ?? 'gguf').toLowerCase()}`, label: q.file.path };
}

export async function downloadModelCommand(context: vscode.ExtensionContext, log: (line: string) => void): Promise<void> {
  let choice: Choice | undefined;
  try {
    choice = await pick(context);
  } catch (e) {
    void vscode.window.showErrorMessage(`Snout: ${(e as Error).message}`);
    return;
  }
  if (!choice) return;
  await run(context, choice, log);
}

async function run(context: vscode.ExtensionContext, choice: Choice, log: (line: string) => void): Promise<void> {
  const storageDir = context.globalStorageUri.fsPath;
  const ac = new AbortController();
  try {
    const path = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Snout: downloading ${choice.label}`, cancellable: true }, async (progress, token) => {
      token.onCancellationRequested(() => ac.abort());
      const o = { ...(await hubOptions(context)), signal: ac.signal };
      progress.report({ message: 'listing files…' });
      const listed = await listRepoFiles(choice.repo, o);
      const files: HubFile[] = selectFiles(listed, choice.format, choice.quant);
      if (!files.length) throw new HubError('no-files', `${choice.repo} has no ${choice.format === 'gguf' ? `${choice.quant ?? ''} .gguf file` : 'safetensors weights'}.`);
      const total = files.reduce((s, f) => s + f.size, 0);
      log(`downloading ${choice.repo} (${files.map((f) => f.path).join(', ')}; ${formatBytes(total)}) from ${o.hubUrl} into ${storageDir}`);
      let reported = 0;
      return downloadModel({
        ...o, repo: choice.repo, files, storageDir, name: choice.name,
        onProgress: (p) => {
          const pct = p.totalBytes > 0 ? (100 * p.bytes) / p.totalBytes : 0;
          progress.report({ message: progressLine(p), increment: Math.max(0, pct - reported) });
          reported = Math.max(reported, pct);
        },
      });
    });
    log(`downloaded ${choice.repo} to ${path}`);
    await vscode.workspace.getConfiguration('snout').update('modelPath', path, vscode.ConfigurationTarget.Global);
    const remote = vscode.workspace.getConfiguration('snout').get('backend.type') === 'openai';
    void vscode.window.showInformationMessage(`Snout: ${choice.label} is ready${remote ? ' (used when snout.backend.type is local)' : '; the engine is switching to it'}.`);
  } catch (e) {
    const err = e as Error;
    log(`download of ${choice.repo} failed: ${err.message}`);
    if (err instanceof HubError && err.kind === 'cancelled') return;
    const actions = err instanceof HubError && (err.kind === 'auth' || err.kind === 'gated') ? ['Set Hugging Face token…']
      : err instanceof HubError && ['interrupted', 'offline', 'checksum', 'rate-limited'].includes(err.kind) ? ['Retry'] : [];
    const a = await vscode.window.showErrorMessage(`Snout: ${err.message}`, ...actions);
    if (a === 'Retry') await run(context, choice, log);
    if (a === 'Set Hugging Face token…') await vscode.commands.executeCommand('snout.setHubToken');
  }
}

/** Asks for a secret and keeps it in SecretStorage (never in settings.json); empty input removes it. */
export async function setSecretCommand(context: vscode.ExtensionContext, key: string, title: string, prompt: string): Promise<boolean> {
  const value = await vscode.window.showInputBox({ title, prompt: `${prompt} Leave empty to remove it.`, password: true, ignoreFocusOut: true });
  if (value === undefined) return false;
  if (value.trim()) await context.secrets.store(key, value.trim());
  else await context.secrets.delete(key);
  return true;
}
