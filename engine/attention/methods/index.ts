// The decode methods by name: one instance per method and head size per thread (they hold per-thread scratch).
import type { AttentionMethod } from '../types';
import { DenseDecode } from './dense';
import { MagicPig } from './magicpig';
import { Quest } from './quest';
import { TopK } from './topk';
import type { DecodeMethod } from './method';

export type { DecodeMethod, DecodeStep, Ranges, StepObserver } from './method';

const make: Record<AttentionMethod, (d: number) => DecodeMethod> = {
  dense: (d) => new DenseDecode(d),
  magicpig: (d) => new MagicPig(d),
  topk: (d) => new TopK(d),
  quest: (d) => new Quest(d),
};

/** Method names in a fixed order: a worker thread gets a method as its index here. */
export const METHOD_NAMES: AttentionMethod[] = ['dense', 'magicpig', 'topk', 'quest'];

const made = new Map<string, DecodeMethod>();

/** This thread's instance of `name` for head size d. */
export function decodeMethod(name: AttentionMethod, d: number): DecodeMethod {
  const key = `${name}/${d}`;
  let m = made.get(key);
  if (!m) made.set(key, (m = make[name](d)));
  return m;
}
