// A decode step's arguments (engine/attention/methods/method.ts DecodeStep) for tests that drive a method directly.
import type { DecodeStep, Ranges } from '../../engine/attention/methods/index';
import type { HeadCache } from '../../engine/attention/head-cache';
import type { HeadIndex } from '../../engine/attention/head-index';
import type { SimHash } from '../../engine/attention/simhash';

/**
 * One KV head (cache, index) and its H query heads q [H, d]; codes [H, L] are filled by the method with `hash`, or
 * given (hash null).
 */
export function stepOf(cache: HeadCache, index: HeadIndex, q: Float32Array, H: number, ranges: Ranges, K: number, L: number,
  hash: SimHash | null, codes = new Int32Array(H * L), budget: number | 'auto' = 'auto'): DecodeStep {
  return {
    q, out: new Float32Array(H * cache.d), numHeads: H, numKvHeads: 1, headDim: cache.d, caches: [cache], indexes: [index],
    ranges, count: ranges.indexedEnd - ranges.sinks, K, L, budget, codes, hash, used: new Int32Array(H), observer: null,
  };
}
