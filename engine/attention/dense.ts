// Exact attention over the cache: causal prefill chunks and full decode steps (GQA: query head h reads KV head
// h / (numHeads / numKvHeads)). With the SIMD kernels (head-cache.ts attendPrefixGroup) the query heads of a KV head
// read its K and V in one pass, block by block with a running max per head (faster than one pass per query head:
// bench-results/attention-decisions.md); otherwise they are scanned in blocks with a running max (O(block) memory).
// causalAsync runs big chunks as one ONNX graph instead (prefill-graph.ts: GEMMs over all of a chunk's queries at
// once), and falls back to causal() for small work or bfloat16 caches.
import type { KvStore } from './kv-store';
import type { ProviderSetting } from '../runtime/session';
import type { PrefillGraph } from './prefill-graph';
import { SoftmaxAcc, accumulateRange, BLOCK } from './softmax-acc';
import { SLOTS } from './head-cache';

/**
 * Work (query·key·channel products, n·H·d·(keys − n/2)) from which causalAsync uses the graph: about where a chunk
 * over a few hundred keys breaks even. A single query (decode step) would pay a copy of the layer's K and V per call
 * (O(n), like the step itself), so it never uses the graph (measured: bench-results/attention-decisions.md).
 */
export const GRAPH_WORK = { chunk: 1 << 23, step: Infinity };

export class DenseKernel {
  private readonly acc: SoftmaxAcc;
  private readonly scores = new Float32Array(BLOCK);
  readonly scale: number;
  private graph: PrefillGraph | null = null;
  private graphFailed = false;

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
          // The query heads of group g (up to SLOTS at once) read g's K and V in one pass.
          const count = Math.min(SLOTS, (g + 1) * group - h);
          head.attendPrefixGroup(q, qo, count, past + j + 1, this.scale, out, qo);
          h += count - 1;
          continue;
        }
        this.acc.reset();
        accumulateRange(this.acc, q, qo, kv.keys[g], kv.values[g], 0, past + j + 1, this.scale, this.scores);
        this.acc.finish(out, qo);
      }
    }
  }

  /** True when causalAsync would run this call on the graph (enough work; float32 or bfloat16 cache). */
  usesGraph(kv: KvStore, n: number): boolean {
    if (this.graphFailed || n < 1) return false;
    const work = n * this.numHeads * this.headDim * (kv.length - n / 2);
    return work >= (n === 1 ? GRAPH_WORK.step : GRAPH_WORK.chunk);
  }

  /**
   * causal(), as one ONNX graph on `provider` when the work is large enough (usesGraph); same results within float32
   * rounding. If the graph cannot be built, says so once and keeps using causal().
   */
  async causalAsync(kv: KvStore, q: Float32Array, n: number, out: Float32Array, provider: ProviderSetting = 'cpu'): Promise<void> {
    if (!this.usesGraph(kv, n)) return this.causal(kv, q, n, out);
    if (!this.graph) {
      try {
        const { PrefillGraph } = await import('./prefill-graph');
        this.graph = await PrefillGraph.create(this.numHeads, this.numKvHeads, this.headDim, provider);
      } catch (err) {
        this.graphFailed = true;
        process.stderr.write(`snout: prefill attention graph unavailable (${(err as Error).message.split('\n')[0]}); using the CPU loop\n`);
        return this.causal(kv, q, n, out);
      }
    }
    await this.graph.causal(kv, q, n, out, this.scale);
  }

  /** Free the graph's scratch copy of a layer's K and V (e.g. after prefill; re-made on demand). */
  releaseScratch(): void {
    this.graph?.releaseScratch();
  }
}
