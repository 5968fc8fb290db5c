// The forward pass, top to bottom (as in llama2.c): embed → for each layer [pre-attention → attention → post-attention]
// → final norm + lm_head on the last position. Dense parts are onnxruntime sessions built from the weights; attention
// is engine code over the sequence's CPU-RAM KV cache (engine/attention), reached through one interface.
import { simhashFor } from '../attention/simhash';
import { sameQueryHash, type GraphAttentionRows, type QueryCodes, type QueryHashParams, type SequenceAttention } from '../attention/types';
import { UserError } from '../errors';
import {
  buildEmbedHeadGraph, buildHeadGraph, buildLayerGraph, fuseEmbedHeadMaxBytes, io, largestGraphBytes, maxGraphBytes,
  type LayerGraphParts, type WeightSource,
} from '../model/graphs';
import { MemoryEmbedding, type EmbeddingRows } from '../model/embedding-rows';
import { isQuant, type QuantMatrix } from '../model/quant';
import { embedName } from '../model/weights';
import type { GraphCache } from '../model/graph-cache';
import { checkGraphFile, openSavingPrepacked, prepackedEnabled, type OpenGraph } from '../model/prepacked';
import { RopeTables } from '../model/rope';
import type { ModelSpec } from '../model/spec';
import { createSession, ort, type CreatedSession, type Provider, type ProviderSetting } from '../runtime/session';

/** One layer graph: [embedding,] post-attention of layer `post` and/or pre-attention of layer `pre`[, head]. */
interface LayerStep extends LayerGraphParts {
  session: ort.InferenceSession;
  /** The graph also hashes the query (it takes q_hash_start: graphs.ts GraphOptions.queryHash). */
  hashesQuery?: boolean;
  /** It takes cos/sin as [n, D/2] (graphs.ts FusedOps.ropeIo), not [n, 1, D/2]. */
  ropeTables2d?: boolean;
  /** It can compute its post-attention layer's decode attention itself (graphs.ts GraphOptions.decodeAttention). */
  attendsInGraph?: boolean;
}

function layerStep(parts: LayerGraphParts, session: ort.InferenceSession): LayerStep {
  return {
    ...parts, session, hashesQuery: session.inputNames.includes(io.qHashStart), ropeTables2d: ropeTableDims(session, 1, 1).length === 2,
    attendsInGraph: session.inputNames.includes(io.attnQ),
  };
}

/** The dims a layer graph declares for its cos/sin inputs at n tokens: [n, D/2] (FusedOps.ropeIo) or [n, 1, D/2]. */
export function ropeTableDims(session: ort.InferenceSession, n: number, half: number): number[] {
  const meta = session.inputMetadata.find((m) => m.name === io.cos);
  return meta?.isTensor && meta.shape.length === 2 ? [n, half] : [n, 1, half];
}

export interface RunnerOptions {
  provider?: ProviderSetting;
  /** Fuse post-attention(l) with pre-attention(l+1) into one graph (L+2 onnxruntime calls per token, not 2L+2). */
  fuseLayers?: boolean;
  /**
   * Embedding inside the first layer graph and final norm + lm_head inside the last (2 fewer calls per token).
   * Default: when the embedding matrix is at most 64 MiB (a tied one is then held twice).
   */
  fuseEmbedHead?: boolean;
  threads?: number;
  log?: (line: string) => void;
  onProgress?: (message: string, fraction: number) => void;
  /**
   * The linear layers come packed (QuantMatrix): the embedding is then looked up from its packed table here instead
   * of a float32 Gather in a graph, and the head is a graph of its own.
   */
  packed?: boolean;
  /** Bytes per weight of the packed form, for the graph-size check (default: 4, float32). */
  bytesPerWeight?: number;
  /** MatMulNBits accuracy_level (tests: 0 = float32 compute, to check packed weights exactly). */
  accuracyLevel?: number;
  /** Where a packed model's graphs are kept between loads (engine/model/graph-cache.ts). */
  cache?: GraphCache;
  /**
   * The pre-attention graphs also compute MagicPIG's query hash with these parameters (graphs.ts
   * GraphOptions.queryHash), for the decode steps whose sequence asks for them (SequenceAttention.queryHashFor).
   */
  queryHash?: QueryHashParams;
  /** Graphs with a post-attention half also compute exact decode attention (graphs.ts GraphOptions.decodeAttention). */
  decodeAttention?: boolean;
}

/** GraphOptions.queryHash for RunnerOptions.queryHash: the SimHash weights every layer graph multiplies by. */
function queryHashWeights(spec: ModelSpec, p?: QueryHashParams) {
  return p ? simhashFor(spec.headDim, p.K, p.L, p.seed) : undefined;
}

/**
 * The logits, or a clear error when any is NaN or ±Inf: a broken model (NaN in its weights, or activations that
 * overflow float32) would otherwise sample garbage. The attention kernels let NaN flow through (saturating float to int
 * conversions), so this one check, a pass over vocabSize floats per token, is where it surfaces.
 */
export function finiteLogits(logits: Float32Array): Float32Array {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) {
      throw new UserError(`the model produced a non-finite logit (${logits[i]} for token ${i}): its weights may hold NaN or Inf ` +
        '(a corrupt or mis-converted checkpoint), or its activations overflow float32');
    }
  }
  return logits;
}

export class ModelRunner {
  private constructor(
    readonly spec: ModelSpec,
    readonly provider: Provider,
    /** Separate embedding/head session (absent when they are fused into the first/last layer graphs). */
    private readonly embedHead: ort.InferenceSession | undefined,
    private readonly steps: LayerStep[],
    private readonly rope: RopeTables,
    /** Packed models: the embedding table rows are dequantized here (embedHead then holds only the head). */
    private readonly embedRows?: EmbeddingRows,
  ) {}

  static async create(spec: ModelSpec, weight: WeightSource, options: RunnerOptions = {}): Promise<ModelRunner> {
    const largest = largestGraphBytes(spec, options.bytesPerWeight ?? 4);
    if (largest.bytes > maxGraphBytes) {
      throw new UserError(`model too large for this engine: its ${largest.name} graph needs ${(largest.bytes / 2 ** 30).toFixed(2)} GiB ` +
        `of ${options.packed ? 'packed' : 'float32'} weights, over the 2 GiB limit of one ONNX model` +
        (options.packed ? '' : ' (quantize it: --weights int8, setting snout.weights)'));
    }
    if (options.packed) return ModelRunner.createPacked(spec, weight, options);
    const L = spec.numLayers;
    const plan: LayerGraphParts[] = [];
    if (options.fuseLayers ?? true) {
      for (let l = 0; l <= L; l++) plan.push({ post: l > 0 ? l - 1 : undefined, pre: l < L ? l : undefined });
    } else {
      for (let l = 0; l < L; l++) plan.push({ pre: l }, { post: l });
    }
    const fuseEnds = options.fuseEmbedHead ?? spec.vocabSize * spec.hiddenSize * 4 <= fuseEmbedHeadMaxBytes;
    if (fuseEnds) { plan[0].embed = true; plan[plan.length - 1].head = true; }
    const total = plan.length + (fuseEnds ? 0 : 1);
    const progress = (i: number, what: string) => options.onProgress?.(`building ${what}`, i / total);
    const sessionOptions = { threads: options.threads, log: options.log };

    // The first session settles the provider (and logs any fallback once); the rest use what it got.
    let provider: ProviderSetting = options.provider ?? 'auto';
    let embedHead: ort.InferenceSession | undefined;
    if (!fuseEnds) {
      progress(0, 'embedding and head');
      const created = await createSession(buildEmbedHeadGraph(spec, weight), provider, sessionOptions);
      embedHead = created.session;
      provider = created.provider;
    }
    const steps: LayerStep[] = [];
    for (const [i, parts] of plan.entries()) {
      progress(i + (fuseEnds ? 0 : 1), `layer graph ${i + 1}/${plan.length}`);
      const created = await createSession(buildLayerGraph(spec, weight, parts, { queryHash: queryHashWeights(spec, options.queryHash), decodeAttention: options.decodeAttention }), provider, sessionOptions);
      provider = created.provider;
      steps.push(layerStep(parts, created.session));
    }
    options.onProgress?.('model ready', 1);
    const runner = new ModelRunner(spec, provider as Provider, embedHead, steps, new RopeTables(spec));
    runner.queryHash = options.queryHash;
    return runner;
  }

  /**
   * Packed weights: layer graphs (fused pairs), a head graph, and the embedding kept as its packed table: in memory
   * on the load that builds the cache, in the cache's file after (embedding-rows.ts). A tied head has its own packed
   * copy in the head session.
   */
  private static async createPacked(spec: ModelSpec, weight: WeightSource, options: RunnerOptions): Promise<ModelRunner> {
    const { cache } = options;
    if (cache?.complete) {
      try {
        // A cache hit leaves the embedding table in the cache's file, read a row per token (embedding-rows.ts).
        const runner = await ModelRunner.buildPacked(spec, options, () => cache.embeddingRows(), async (name, open) => {
          const file = cache.graphFile(name);
          const bytes = checkGraphFile(file); // before a session maps a data file that may be cut short
          return { created: await open(file), bytes };
        });
        cache.touch();
        runner.cacheState = 'hit';
        return runner;
      } catch (err) {
        cache.drop((err as Error).message.split('\n')[0]);
      }
    }
    let caching = cache?.begin() ?? false;
    const graph = { accuracyLevel: options.accuracyLevel, queryHash: queryHashWeights(spec, options.queryHash), decodeAttention: options.decodeAttention };
    let table: QuantMatrix | undefined;
    const source: WeightSource = (name) => (name === embedName ? table! : weight(name));
    return ModelRunner.buildPacked(spec, options, () => {
      const t = weight(embedName);
      if (!isQuant(t)) throw new Error('packed model: the embedding must be packed too');
      table = t;
      if (caching) caching = cache!.writeEmbedding(t);
      return new MemoryEmbedding(t);
    }, async (name, open, parts) => {
      const bytes = parts ? buildLayerGraph(spec, source, parts, graph) : buildHeadGraph(spec, source, graph);
      if (!caching || !prepackedEnabled()) {
        if (caching) caching = cache!.writeGraph(name, bytes);
        return { created: await open(bytes), bytes: bytes.byteLength };
      }
      // SNOUT_PREPACKED=1: kept as onnxruntime's saved prepacked form where it checks out (later loads map the packed
      // weights), else plain.
      const { created, saved } = await openSavingPrepacked(bytes, cache!.dir, name, open, options.log ?? ((l) => process.stderr.write(l + '\n')));
      if (!saved) caching = cache!.writeGraph(name, bytes);
      return { created, bytes: saved ? checkGraphFile(cache!.graphFile(name)) : bytes.byteLength };
    }).then((runner) => {
      if (caching) cache!.finish();
      runner.cacheState = caching ? 'written' : 'none';
      return runner;
    });
  }

  /**
   * Sessions for a packed model: the head and the fused layer graphs, each from a file (cache hit) or freshly built
   * bytes, and the embedding table.
   */
  private static async buildPacked(
    spec: ModelSpec, options: RunnerOptions, embedding: () => EmbeddingRows,
    openGraph: (name: string, open: OpenGraph, parts?: LayerGraphParts) => Promise<{ created: CreatedSession; bytes: number }>,
  ): Promise<ModelRunner> {
    const L = spec.numLayers;
    const total = L + 2;
    const sessionOptions = { threads: options.threads, log: options.log, large: true };
    const sessions: ort.InferenceSession[] = [];
    let table: EmbeddingRows | undefined;
    try {
      options.onProgress?.('reading the embedding', 0);
      table = embedding();
      options.onProgress?.('building head', 1 / total);
      let provider: ProviderSetting = options.provider ?? 'auto';
      const open: OpenGraph = (graph, savePrepacked) => createSession(graph, provider, { ...sessionOptions, savePrepacked });
      const { created: head, bytes: headBytes } = await openGraph('head', open);
      sessions.push(head.session);
      provider = head.provider;
      const steps: LayerStep[] = [];
      let bytes = table.residentBytes + headBytes;
      for (let l = 0; l <= L; l++) {
        options.onProgress?.(`building layer graph ${l + 1}/${L + 1}`, (l + 2) / total);
        const parts: LayerGraphParts = { post: l > 0 ? l - 1 : undefined, pre: l < L ? l : undefined };
        const { created, bytes: graphBytes } = await openGraph(`layer-${l}`, open, parts);
        bytes += graphBytes;
        sessions.push(created.session);
        provider = created.provider;
        steps.push(layerStep(parts, created.session));
      }
      options.onProgress?.('model ready', 1);
      const runner = new ModelRunner(spec, provider as Provider, head.session, steps, new RopeTables(spec), table);
      runner.weightBytes = bytes;
      runner.queryHash = options.queryHash;
      return runner;
    } catch (err) {
      table?.close();
      for (const s of sessions) await s.release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Run `ids` (the next tokens of the sequence, at positions attention.length ...) through the model, appending
   * their keys/values to the cache. Returns the last position's logits when `wantLogits`, else undefined.
   */
  async forward(attention: SequenceAttention, ids: readonly number[], wantLogits: boolean): Promise<Float32Array | undefined> {
    const { hiddenSize: H, numHeads, headDim: D } = this.spec;
    const n = ids.length;
    const start = attention.length;

    // Rotary tables for these positions, shared by every layer.
    const cos = new Float32Array(n * (D / 2));
    const sin = new Float32Array(n * (D / 2));
    this.rope.fill(start, n, cos, sin);
    const cosT = new ort.Tensor('float32', cos, [n, 1, D / 2]);
    const sinT = new ort.Tensor('float32', sin, [n, 1, D / 2]);
    const cos2 = new ort.Tensor('float32', cos, [n, D / 2]);
    const sin2 = new ort.Tensor('float32', sin, [n, D / 2]);

    // Token embeddings (in the first layer graph when fused).
    const idsT = new ort.Tensor('int64', BigInt64Array.from(ids, (id) => BigInt(id)), [n]);
    let x: ort.Tensor | undefined;
    if (this.embedRows) {
      const rows = new Float32Array(n * H);
      this.embedRows.rowsInto(ids, rows);
      x = new ort.Tensor('float32', rows, [n, H]);
    } else if (this.embedHead) {
      x = (await this.embedHead.run({ [io.ids]: idsT, [io.hidden]: new ort.Tensor('float32', new Float32Array(0), [0, H]) }))[io.embeds];
    }

    // Layers: each graph finishes layer l (post-attention) and starts layer l+1 (pre-attention); attention runs
    // between graphs on the KV cache.
    const attnOut = new Float32Array(n * numHeads * D);
    const attnT = new ort.Tensor('float32', attnOut, [n, numHeads * D]);
    // Graphs with the query hash hash rows [start, n) of q: the last row for a sampled decode step, none otherwise.
    const hashLast = new ort.Tensor('int64', BigInt64Array.of(BigInt(n - 1)), [1]);
    const hashNone = new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1]);
    // Graphs that attend themselves (decode steps the sequence hands over): zero rows of whichever input is unused.
    const { numKvHeads } = this.spec;
    const noRows = (cols: number) => new ort.Tensor('float32', new Float32Array(0), [0, cols]);
    const noAttn = noRows(numHeads * D), noKv = noRows(D);
    const noVt = new ort.Tensor('float32', new Float32Array(0), [D, 0]), noPad = new ort.Tensor('int64', new BigInt64Array(4), [4]);
    let handed: GraphAttentionRows | null = null, handedQ: Float32Array | undefined;
    let logits: Float32Array | undefined;
    for (const [i, step] of this.steps.entries()) {
      const feeds: Record<string, ort.Tensor> = step.embed ? { [io.ids]: idsT } : { [io.x]: x! };
      if (step.post !== undefined) feeds[io.attn] = handed ? noAttn : attnT;
      if (step.attendsInGraph) {
        feeds[io.attnQ] = handed ? new ort.Tensor('float32', handedQ!, [1, numHeads * D]) : noAttn;
        // The weights are padded with zero rows up to the transposed values' capacity (graphs.ts decodeAttentionNodes).
        feeds[io.attnPad] = handed ? new ort.Tensor('int64', BigInt64Array.of(0n, 0n, BigInt(handed.capacity - handed.length), 0n), [4]) : noPad;
        for (let g = 0; g < numKvHeads; g++) {
          feeds[`${io.attnKeys}${g}`] = handed ? new ort.Tensor('float32', handed.keys[g].subarray(0, handed.length * D), [handed.length, D]) : noKv;
          feeds[`${io.attnValuesT}${g}`] = handed ? new ort.Tensor('float32', handed.valuesT[g], [D, handed.capacity]) : noVt;
        }
      }
      if (step.pre !== undefined) { feeds[io.cos] = step.ropeTables2d ? cos2 : cosT; feeds[io.sin] = step.ropeTables2d ? sin2 : sinT; }
      const hashWith = step.pre !== undefined && step.hashesQuery ? attention.queryHashFor?.(step.pre, n) : null;
      const hashes = !!hashWith && sameQueryHash(hashWith, this.queryHash);
      if (step.hashesQuery) feeds[io.qHashStart] = hashes ? hashLast : hashNone;
      const out = await step.session.run(feeds);
      if (step.post !== undefined || step.embed) x = out[io.xOut];
      handed = null;
      if (step.pre !== undefined) {
        const q = out[io.q].data as Float32Array;
        const k = out[io.k].data as Float32Array;
        const v = out[io.v].data as Float32Array;
        // An exact decode step the next graph can compute: the sequence appends k/v and hands over its rows.
        if (this.steps[i + 1]?.attendsInGraph) handed = attention.graphAttention?.(step.pre, k, v, n) ?? null;
        if (handed) handedQ = q;
        else {
          const codes: QueryCodes | undefined = hashes ? { ...this.queryHash!, codes: out[io.qCodes].data as Int32Array } : undefined;
          // forwardAsync: exact calls (prompt chunks, dense layers) run as one ONNX graph when big enough; a sampled
          // decode step takes its query hash from this graph's run, else hashes on a graph of its own or the SIMD CPU
          // kernel, whichever is cheaper for the shape.
          await attention.forwardAsync(step.pre, q, k, v, n, attnOut, codes);
        }
      }
      if (step.head) logits = out[io.logits].data as Float32Array;
    }
    if (!wantLogits) return undefined;
    if (logits) return finiteLogits(logits);

    // Final norm + lm_head on the last position only.
    const hidden = x!.data as Float32Array;
    const last = hidden.subarray((n - 1) * H, n * H);
    const feeds: Record<string, ort.Tensor> = { [io.hidden]: new ort.Tensor('float32', last.slice(), [1, H]) };
    if (!this.embedRows) feeds[io.ids] = new ort.Tensor('int64', new BigInt64Array(0), [0]);
    const head = await this.embedHead!.run(feeds);
    return finiteLogits(head[io.logits].data as Float32Array);
  }

  /** Packed models: bytes of the graphs and the embedding table (what the weights occupy once loaded). */
  weightBytes?: number;
  /** Packed models: whether the graphs came from the disk cache ('hit'), were written to it, or neither. */
  cacheState?: 'hit' | 'written' | 'none';

  /** The SimHash parameters of the layer graphs' query hash (RunnerOptions.queryHash), if they have one. */
  queryHash?: QueryHashParams;

  /** Packed weights (the embedding is looked up from its packed table). */
  get packed(): boolean {
    return this.embedRows !== undefined;
  }

  async dispose(): Promise<void> {
    this.embedRows?.close();
    await this.embedHead?.release();
    for (const s of this.steps) await s.session.release();
  }
}
