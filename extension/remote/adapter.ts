// The VS Code side of the remote backend: snout.backend.* settings, the API key in SecretStorage (never in
// settings.json), and a RemoteBackend built from them.
import * as vscode from 'vscode';
import type { EngineState } from '../engine/client';
import type { ModelInfo } from '../../engine/protocol';
import { RemoteBackend } from './openai';
import type { FormatSetting } from './render';

export const backendKeySecret = 'snout.backendApiKey';

export interface BackendSettings {
  type: 'local' | 'openai';
  url: string;
  model: string;
  promptFormat: FormatSetting;
  timeoutMs: number;
}

export function readBackendSettings(): BackendSettings {
  const c = vscode.workspace.getConfiguration('snout');
  return {
    type: c.get<string>('backend.type', 'local') === 'openai' ? 'openai' : 'local',
    url: c.get('backend.url', ''),
    model: c.get('backend.model', ''),
    promptFormat: c.get('backend.promptFormat', 'auto'),
    timeoutMs: c.get('backend.timeoutMs', 30_000),
  };
}

export interface RemoteHooks {
  log: (line: string) => void;
  onState: (state: EngineState, detail?: string) => void;
  onReady: (model: ModelInfo) => void;
  charsPerToken: () => number;
  contextTokens: () => number;
}

/**
 * "Snout: Connect to a remote server…": the server's address, then its API key (into SecretStorage), then
 * snout.backend.type = openai. Returns false when the user backs out.
 */
export async function connectRemoteCommand(context: vscode.ExtensionContext): Promise<boolean> {
  const current = readBackendSettings();
  const url = await vscode.window.showInputBox({
    title: 'Snout: connect to a remote server (1/2)', prompt: 'Address of an OpenAI-compatible server (vLLM, llama.cpp server, TGI, snout serve --http)',
    value: current.url || 'http://127.0.0.1:8000/v1', ignoreFocusOut: true,
    validateInput: (v) => (/^https?:\/\/[^/\s]+/.test(v.trim()) ? undefined : 'expected http://host:port[/v1]'),
  });
  if (!url) return false;
  const key = await vscode.window.showInputBox({
    title: 'Snout: connect to a remote server (2/2)', prompt: 'Its API key (bearer token); kept in VS Code\'s secret storage. Leave empty for none.',
    password: true, ignoreFocusOut: true,
  });
  if (key === undefined) return false;
  if (key.trim()) await context.secrets.store(backendKeySecret, key.trim());
  else await context.secrets.delete(backendKeySecret);
  const c = vscode.workspace.getConfiguration('snout');
  await c.update('backend.url', url.trim(), vscode.ConfigurationTarget.Global);
  // Already remote: the type does not change, so no configuration event restarts it; the caller restarts.
  await c.update('backend.type', 'openai', vscode.ConfigurationTarget.Global);
  return true;
}

export function makeRemoteBackend(context: vscode.ExtensionContext, h: RemoteHooks): RemoteBackend {
  const s = readBackendSettings();
  return new RemoteBackend({
    url: s.url, model: s.model, promptFormat: s.promptFormat, timeoutMs: s.timeoutMs, contextTokens: h.contextTokens(),
    apiKey: async () => context.secrets.get(backendKeySecret), charsPerToken: h.charsPerToken,
    log: h.log, onState: h.onState, onReady: h.onReady,
  });
}
