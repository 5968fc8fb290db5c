// Where tests find the shared models: ../shared beside the repository, or env SNOUT_SHARED.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
export const sharedDir = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
export const modelDir = (name: string) => path.join(sharedDir, 'models', name);
export const hasModel = (name: string) => existsSync(path.join(modelDir(name), 'config.json'));
export const readGolden = <T = any>(name: string): T => JSON.parse(readFileSync(path.join(modelDir(name), 'golden.json'), 'utf8'));

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
