// One sequence's KV cache (per layer) plus the configured attention method. Prefill chunks are always exact; decode
// steps dispatch on the method. See types.ts for the contract and ../../../shared/design/magicpig.md for MagicPIG.
import type { AttentionConfig, AttentionShape, AttentionStats, SequenceAttention } from './types';
import { KvStore } from './kv-store';
import { DenseKernel } from './dense';

export class Sequence implements SequenceAttention {
  private config: AttentionConfig;
  private layers: KvStore[];
  private readonly dense: DenseKernel;
  private sampledSum = 0;
  private sampledCount = 0;

  constructor(readonly shape: AttentionShape, config: AttentionConfig) {
    this.config = { ...config };
    this.layers = this.makeLayers();
    this.dense = new DenseKernel(shape.numHeads, shape.numKvHeads, shape.headDim);
    if (shape.numHeads % shape.numKvHeads !== 0) throw new Error('numHeads must be a multiple of numKvHeads');
  }

  private makeLayers(): KvStore[] {
    const { numLayers, numKvHeads, headDim } = this.shape;
    return Array.from({ length: numLayers }, () => new KvStore(numKvHeads, headDim, this.config.kvDtype));
  }

  get length(): number {
    return this.layers[this.layers.length - 1].length;
  }

  forward(layer: number, q: Float32Array, k: Float32Array, v: Float32Array, n: number, out: Float32Array): void {
    const kv = this.layers[layer];
    kv.append(k, v, n);
    this.dense.causal(kv, q, n, out);
  }

  endPrefill(): void {}

  truncate(length: number): void {
    for (const kv of this.layers) kv.truncate(length);
  }

  configure(config: Partial<AttentionConfig>): void {
    const dtypeChanged = config.kvDtype !== undefined && config.kvDtype !== this.config.kvDtype;
    this.config = { ...this.config, ...config };
    if (dtypeChanged && this.length > 0) throw new Error('kvDtype cannot change on a non-empty cache');
    if (dtypeChanged) this.layers = this.makeLayers();
  }

  stats(): AttentionStats {
    let bytes = 0;
    for (const kv of this.layers) bytes += kv.bytes();
    return {
      method: this.config.method,
      length: this.length,
      sampledFraction: this.sampledCount > 0 ? this.sampledSum / this.sampledCount : 1,
      bytes,
    };
  }

  resetStats(): void {
    this.sampledSum = 0;
    this.sampledCount = 0;
  }

  dispose(): void {
    this.layers = [];
  }
}
