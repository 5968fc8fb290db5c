// Where the model lives when the user has not chosen one: inside the extension (the VSIX ships tiny-coder-hf), else
// the shared folder next to the repository (development), overridable by SNOUT_SHARED.
import { existsSync } from 'node:fs';
import path from 'node:path';

export const defaultModelName = 'tiny-coder-hf';

/** True if `dir` looks like a Hugging Face model folder Snout can load. */
export function isModelDir(dir: string): boolean {
  return existsSync(path.join(dir, 'config.json')) && existsSync(path.join(dir, 'tokenizer.json'));
}

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
