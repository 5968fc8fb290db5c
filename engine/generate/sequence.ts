// A cached token sequence: the tokens and the attention state (KV cache) that holds all but possibly the last of them
// (the last sampled token is only run through the model when decoding continues).
import type { SequenceAttention } from '../attention/types';
import type { Sequence } from './types';

export class ModelSequence implements Sequence {
  tokens: number[] = [];
  private disposed = false;

  constructor(readonly attention: SequenceAttention) {}

  bytes(): number {
    return this.disposed ? 0 : this.attention.stats().bytes;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.attention.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}

/** Length of the longest common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
