// Exact attention over the cache: causal prefill chunks and full decode steps (GQA: query head h reads KV head
// h / (numHeads / numKvHeads)). With the SIMD kernels (head-cache.ts) a query's scores go to the head's workspace
// (O(context) floats, reused); otherwise they are scanned in blocks with a running max (O(block) memory).
import type { KvStore } from './kv-store';
import { SoftmaxAcc, accumulateRange, BLOCK } from './softmax-acc';

export class DenseKernel {
  private readonly acc: SoftmaxAcc;
  private readonly scores = new Float32Array(BLOCK);
  readonly scale: number;

  constructor(readonly numHeads: number, readonly numKvHeads: number, readonly headDim: number) {
    this.acc = new SoftmaxAcc(headDim);
    this.scale = 1 / Math.sqrt(headDim);
  }

  /**
   * Queries for the last n tokens of `kv` (already appended): query j sees tokens [0, kv.length − n + j].
   * q/out: [n, numHeads, headDim].
   */
  causal(kv: KvStore, q: Float32Array, n: number, out: Float32Array): void {
    const H = this.numHeads, d = this.headDim, group = H / this.numKvHeads;
    const past = kv.length - n;
    for (let j = 0; j < n; j++) {
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group);
        const qo = (j * H + h) * d;
        const head = kv.heads[g];
        if (head.simd) {
          head.attendPrefix(q, qo, past + j + 1, this.scale, out, qo);
          continue;
        }
        this.acc.reset();
        accumulateRange(this.acc, q, qo, kv.keys[g], kv.values[g], 0, past + j + 1, this.scale, this.scores);
        this.acc.finish(out, qo);
      }
    }
  }
}
