// Settings that would stop the engine from loading, found before it tries, so the one notification can name the
// setting and offer the way out. No vscode import (unit-tested).
import { existsSync, statSync } from 'node:fs';
import { LSH_LIMITS } from '../engine/attention/types';
import { isModelDir } from './engine/model-path';

export interface SettingProblem {
  /** The setting at fault ('snout.modelPath', 'snout.attention.K', …). */
  setting: string;
  message: string;
  /** The way out the notification offers: pick another model folder, or reset the setting to its default. */
  fix: 'selectModel' | 'reset';
}

export interface CheckedSettings {
  modelPath: string;
  attention: { K: number; L: number };
}

/** Problems of `s`, most important first; `modelDir` is where snout.modelPath (or the default) resolves to. */
export function settingProblems(s: CheckedSettings, modelDir: string | undefined): SettingProblem[] {
  const out: SettingProblem[] = [];
  if (s.modelPath.trim()) {
    const dir = modelDir ?? s.modelPath;
    const what = !existsSync(dir) ? 'does not exist' : !statSync(dir).isDirectory() ? 'is not a folder'
      : !isModelDir(dir) ? 'has no config.json and tokenizer.json (not a Hugging Face model folder)' : undefined;
    if (what) out.push({ setting: 'snout.modelPath', message: `the model folder ${dir} ${what}`, fix: 'selectModel' });
  } else if (!modelDir) {
    out.push({ setting: 'snout.modelPath', message: 'the bundled demo model is missing from this installation; select a model folder', fix: 'selectModel' });
  }
  for (const key of ['K', 'L'] as const) {
    const v = s.attention[key];
    const { min, max } = LSH_LIMITS[key];
    if (!Number.isInteger(v) || v < min || v > max) {
      out.push({ setting: `snout.attention.${key}`, message: `snout.attention.${key} is ${JSON.stringify(v)}; it must be a whole number from ${min} to ${max}`, fix: 'reset' });
    }
  }
  return out;
}
