// snout bench <name>: each benchmark is one module under bench/ answering one question.
import { UserError } from '../errors';

const benches: Record<string, () => Promise<{ run(argv: string[]): Promise<number | void> }>> = {
  engine: () => import('../../bench/engine'),
  attention: () => import('../../bench/attention'),
  prefix: () => import('../../bench/prefix-cache'),
  folds: () => import('../../bench/index-folds'),
  peer: () => import('../../bench/peer'),
  restart: () => import('../../bench/restart'),
  layer: () => import('../../bench/layer-decode'),
};

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || !(name in benches)) throw new UserError(`bench: expected one of ${Object.keys(benches).join(', ')}`);
  return (await (await benches[name]()).run(rest)) ?? 0;
}
