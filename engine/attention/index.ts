// Attention for the model runner: createSequenceAttention() gives one sequence's KV cache + attention method.
import type { AttentionConfig, AttentionShape, SequenceAttention } from './types';
import { Sequence } from './sequence';

export * from './types';

export function createSequenceAttention(shape: AttentionShape, config: AttentionConfig): SequenceAttention {
  return new Sequence(shape, config);
}
