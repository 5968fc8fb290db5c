// Types for scripts/e2e-setup.mjs (plain JS so .ci/run can call it before `npm ci`).
export const repoRoot: string;
export const toolsDir: string;
export const CODE_SERVER_VERSION: string;
export const NODE_MAJOR: number;
export const CHROMIUM: string;
export interface E2eTools {
  node24: string;
  codeServerEntry: string;
  codeServerEnv: Record<string, string>;
  chromium: string;
}
export function ensureE2eTools(): E2eTools;
