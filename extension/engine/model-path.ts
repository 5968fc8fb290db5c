// Where the model lives when the user has not chosen one: inside the extension (the VSIX ships tiny-coder-hf), else
// the shared folder next to the repository (development), overridable by SNOUT_SHARED.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const defaultModelName = 'tiny-coder-hf';

/** True if `dir` looks like a Hugging Face model folder Snout can load. */
export function isModelDir(dir: string): boolean {
  return existsSync(path.join(dir, 'config.json')) && existsSync(path.join(dir, 'tokenizer.json'));
}

/** True for a .gguf file (llama.cpp's format) or a folder holding exactly one and no config.json. */
export function isGgufModel(p: string): boolean {
  try {
    const st = statSync(p);
    if (st.isFile()) return p.toLowerCase().endsWith('.gguf');
    return st.isDirectory() && !existsSync(path.join(p, 'config.json')) && readdirSync(p).filter((f) => f.toLowerCase().endsWith('.gguf')).length === 1;
  } catch {
    return false;
  }
}

/** What the engine can load: a Hugging Face folder or a GGUF model. */
export const isModelPath = (p: string): boolean => isModelDir(p) || isGgufModel(p);

export function defaultModelCandidates(extensionPath: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const shared = env.SNOUT_SHARED ? path.resolve(env.SNOUT_SHARED) : path.resolve(extensionPath, '..', 'shared');
  return [
    path.join(extensionPath, 'models', defaultModelName),
    path.join(shared, 'models', defaultModelName),
    // Fallback the issue allows when the code model is absent: the tiny story model (plain completion only).
    path.join(extensionPath, 'models', 'stories260K-hf'),
    path.join(shared, 'models', 'stories260K-hf'),
  ];
}

/** The model folder to load: the setting if given (relative paths are relative to the workspace), else the default. */
export function resolveModelDir(setting: string | undefined, extensionPath: string, workspaceRoot?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const s = setting?.trim();
  if (s) {
    const expanded = s.replace(/^~(?=$|[\\/])/, env.HOME ?? env.USERPROFILE ?? '~');
    return path.isAbsolute(expanded) ? expanded : path.resolve(workspaceRoot ?? extensionPath, expanded);
  }
  return defaultModelCandidates(extensionPath, env).find(isModelDir);
}
