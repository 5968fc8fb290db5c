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

export function makeRemoteBackend(context: vscode.ExtensionContext, h: RemoteHooks): RemoteBackend {
  const s = readBackendSettings();
  return new RemoteBackend({
    url: s.url, model: s.model, promptFormat: s.promptFormat, timeoutMs: s.timeoutMs, contextTokens: h.contextTokens(),
    apiKey: async () => context.secrets.get(backendKeySecret), charsPerToken: h.charsPerToken,
    log: h.log, onState: h.onState, onReady: h.onReady,
  });
}
