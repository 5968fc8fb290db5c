// snout.* settings, read in one place and typed.
import * as vscode from 'vscode';
import type { AttentionMethodName, ExecutionProvider } from '../engine/protocol';

export interface SnoutSettings {
  enabled: boolean;
  modelPath: string;
  device: ExecutionProvider;
  /** How a Hugging Face checkpoint's weights are held (GGUF files are used as stored). */
  weights: 'auto' | 'f32' | 'int8' | 'int4';
  attention: { method: AttentionMethodName; K: number; L: number; kvDtype?: 'float32' | 'bfloat16' };
  contextTokens: number;
  debounceMs: number;
  adaptiveDebounce: boolean;
  maxTokens: number;
  languages: string[];
  maxFileBytes: number;
  askMaxTokens: number;
  /** Disk budget of the engine's prefix cache (repository KV cache + index kept across restarts), GB; 0 = off. */
  cacheMaxGB: number;
  /** Prefill the repository context in the background (snout/index) when a workspace opens or the context changes. */
  indexing: boolean;
}

export function readSettings(): SnoutSettings {
  const c = vscode.workspace.getConfiguration('snout');
  return {
    enabled: c.get('enabled', true),
    modelPath: c.get('modelPath', ''),
    device: c.get('device', 'auto'),
    weights: c.get('weights', 'auto'),
    attention: { method: c.get('attention.method', 'magicpig'), K: c.get('attention.K', 10), L: c.get('attention.L', 150), kvDtype: kvDtypeSetting(c.get('attention.kvDtype', 'auto')) },
    contextTokens: c.get('contextTokens', 32768),
    debounceMs: c.get('debounceMs', 150),
    adaptiveDebounce: c.get('adaptiveDebounce', true),
    maxTokens: c.get('maxTokens', 64),
    languages: c.get('languages', []),
    maxFileBytes: c.get('maxFileKB', 256) * 1024,
    askMaxTokens: c.get('ask.maxTokens', 512),
    cacheMaxGB: c.get('cache.maxGB', 4),
    indexing: c.get('indexing.enabled', true),
  };
}

/** 'auto' leaves the choice to the engine (bfloat16 for quantized weights, float32 otherwise). */
function kvDtypeSetting(v: string): 'float32' | 'bfloat16' | undefined {
  return v === 'float32' || v === 'bfloat16' ? v : undefined;
}

/** Whether completions are on for a language id ('*' in snout.languages enables every language). */
export function languageEnabled(s: SnoutSettings, languageId: string): boolean {
  return s.languages.includes(languageId) || s.languages.includes('*');
}

/** Settings whose change needs a new engine (the model is loaded with them). */
export const engineSettings = ['snout.modelPath', 'snout.device', 'snout.weights', 'snout.attention', 'snout.cache.maxGB'];

/** files.exclude patterns that are on (value true), for the workspace scan. */
export function filesExclude(folder: vscode.WorkspaceFolder): string[] {
  const ex = vscode.workspace.getConfiguration('files', folder.uri).get<Record<string, unknown>>('exclude', {});
  return Object.entries(ex).filter(([, v]) => v === true).map(([k]) => k);
}
