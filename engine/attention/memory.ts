// What a sequence will hold in RAM for a context of n tokens under a configuration, computed before anything is
// allocated: the prefix cache counts it against its budget and the service refuses a request that cannot fit.
// K and L are request data, and the LSH tables hold L·2^K bucket bounds per layer and KV head whatever the context,
// so a request's K and L can cost more than its context does.
import { tablesBytes } from './lsh-tables';
import type { AttentionConfig, AttentionShape } from './types';

export interface MemoryEstimate {
  /** K and V of every layer and KV head (capacity grows by doubling: up to the next power of two). */
  kv: number;
  /** LSH tables, key norms and (Quest) page bounds of the indexed layers. */
  index: number;
  total: number;
}

export function estimateSequenceBytes(shape: AttentionShape, config: AttentionConfig, tokens: number): MemoryEstimate {
  const { numLayers, numKvHeads: G, headDim: d } = shape;
  const cap = 2 ** Math.ceil(Math.log2(Math.max(16, tokens)));
  const bpe = config.kvDtype === 'bfloat16' ? 2 : 4;
  const kv = numLayers * G * (2 * cap * d * bpe + 8 * cap);
  let index = 0;
  if (config.method !== 'dense') {
    const dense = new Set(config.denseLayers.filter((l) => l >= 0 && l < numLayers));
    const indexed = Math.max(0, tokens - config.sinks);
    const perHead = tablesBytes(config.K, config.L, indexed) + 4 * cap + 8 * d * Math.ceil(cap / 16);
    index = (numLayers - dense.size) * G * perHead;
  }
  return { kv, index, total: kv + index };
}
