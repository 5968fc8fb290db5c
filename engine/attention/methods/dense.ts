// Exact decode step (the dense method, and the dense layers of every method): each query head attends to every
// cached key. With the SIMD kernels the query heads of a KV head read its K and V once, block by block with a running
// max per head (head-cache.ts attendPrefixGroup); otherwise a float64 running-max accumulator per head. Bit for bit
// what DenseKernel.causal gives a one-token chunk.
import { SLOTS } from '../head-cache';
import { SoftmaxAcc, accumulateRange, BLOCK } from '../softmax-acc';
import type { DecodeMethod, DecodeStep } from './method';

export class DenseDecode implements DecodeMethod {
  readonly name = 'dense';
  readonly threaded = true;
  private readonly acc: SoftmaxAcc;
  private readonly scores = new Float32Array(BLOCK);
  private readonly scale: number;

  constructor(readonly d: number) {
    this.acc = new SoftmaxAcc(d);
    this.scale = 1 / Math.sqrt(d);
  }

  group(step: DecodeStep, g: number): void {
    const d = this.d, group = step.numHeads / step.numKvHeads, cache = step.caches[g], end = step.ranges.length;
    const t0 = step.observer ? performance.now() : 0;
    for (let h = g * group; h < (g + 1) * group; h += cache.simd ? SLOTS : 1) {
      if (cache.simd) {
        cache.attendPrefixGroup(step.q, h * d, Math.min(SLOTS, (g + 1) * group - h), end, this.scale, step.out, h * d);
        continue;
      }
      this.acc.reset();
      accumulateRange(this.acc, step.q, h * d, cache.keys, cache.values, 0, end, this.scale, this.scores);
      this.acc.finish(step.out, h * d);
    }
    if (step.observer) step.observer.time('attend', performance.now() - t0);
  }
}
