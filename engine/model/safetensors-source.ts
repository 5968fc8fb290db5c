// A Hugging Face folder as a ModelSource, with its linear layers kept as float32 or quantized on load (round to
// nearest per block, quant.ts). The packed graphs are cached on disk by the runner (graph-cache.ts), so only the
// first load quantizes.
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors';
import { readConfig, readGenerationEos } from './config';
import { quantizeRtn, quantBytes, type QuantBits, type QuantMatrix, type WeightTensor } from './quant';
import { SafetensorsStore } from './safetensors';
import type { ModelSource } from './source';
import type { ModelSpec } from './spec';
import { loadTokenizer } from './tokenizer';
import { checkWeights, embedName, expectedShapes, lmHeadName } from './weights';

export type WeightsSetting = 'auto' | 'f32' | 'int8' | 'int4';
export const weightsSettings: readonly WeightsSetting[] = ['auto', 'f32', 'int8', 'int4'];
export type WeightsFormat = Exclude<WeightsSetting, 'auto'>;

/** Above this many parameters `auto` quantizes to int8: the demo models stay float32 (and bit-exact with the goldens). */
export const autoInt8Params = 100e6;

/** Parameters of the matrices and vectors a spec implies. */
export function parameterCount(spec: ModelSpec): number {
  let n = 0;
  for (const shape of expectedShapes(spec).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export function resolveWeights(setting: WeightsSetting, spec: ModelSpec): WeightsFormat {
  if (setting !== 'auto') return setting;
  return parameterCount(spec) > autoInt8Params ? 'int8' : 'f32';
}

/** The default cache folder: $SNOUT_CACHE_DIR, else $XDG_CACHE_HOME/snout, else ~/.cache/snout. */
export function defaultCacheDir(): string {
  return process.env.SNOUT_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'snout');
}

export interface SafetensorsSourceOptions {
  weights?: WeightsSetting;
}

/**
 * Block sizes of the packed form. int4 uses 32 (GGUF Q4_0's, for its accuracy). int8 uses 128 where a row splits into
 * whole blocks of 128: MatMulNBits streams a token's weights faster with longer blocks (bench-results/), and one
 * float scale per 128 int8 weights loses nothing measurable; else 32, as GGUF's Q8_0.
 */
const BLOCK = 32;
const INT8_BLOCK = 128;
export const packedBlockSize = (bits: QuantBits, K: number): number => (bits === 8 && K % INT8_BLOCK === 0 ? INT8_BLOCK : BLOCK);

export class SafetensorsSource implements ModelSource {
  readonly format = 'safetensors';
  readonly fingerprint: string;
  /** float32, or the bits linear layers are packed to. */
  readonly weightsFormat: WeightsFormat;
  /** Bytes of every weight handed out so far (what the loaded model holds). */
  residentBytes = 0;

  private constructor(
    readonly path: string,
    readonly spec: ModelSpec,
    readonly tokenizer: ReturnType<typeof loadTokenizer>,
    private readonly store: SafetensorsStore,
    options: SafetensorsSourceOptions,
  ) {
    this.weightsFormat = resolveWeights(options.weights ?? 'auto', spec);
    const files = [...new Set(store.names().map((n) => store.info(n)!.file))].sort();
    this.fingerprint = JSON.stringify(files.map((f) => { const st = statSync(f); return [f, st.size, st.mtimeMs]; }));
  }

  static open(dir: string, options: SafetensorsSourceOptions = {}): SafetensorsSource {
    const modelDir = path.resolve(dir);
    const spec = readConfig(modelDir);
    const tokenizer = loadTokenizer(modelDir, [...spec.eosTokenIds, ...readGenerationEos(modelDir)]);
    const store = SafetensorsStore.open(modelDir);
    checkWeights(spec, store, modelDir);
    return new SafetensorsSource(modelDir, spec, tokenizer, store, options);
  }

  /** The embedding (and so the model's lookup path) is packed. */
  get packed(): boolean {
    return this.weightsFormat !== 'f32' && this.spec.hiddenSize % BLOCK === 0;
  }

  /** Bytes per matrix weight of the packed form (for the graph-size check). */
  get bytesPerWeight(): number {
    return this.weightsFormat === 'f32' ? 4 : this.weightsFormat === 'int8' ? 1 + 4 / BLOCK : 0.5 + 4 / BLOCK; // upper bounds
  }

  /** Bits of a matrix: int4 keeps the embedding/lm_head at 8 bits (as llama.cpp's Q4 files keep their output at 6). */
  private bitsFor(name: string): QuantBits {
    if (this.weightsFormat === 'int4' && name !== embedName && name !== lmHeadName) return 4;
    return 8;
  }

  weight(name: string): WeightTensor {
    const info = this.store.info(name);
    if (!info) throw new UserError(`checkpoint has no tensor "${name}"`, this.path);
    // Vectors, float32 models, and matrices whose rows do not split into whole blocks (stories260K's 172-wide
    // down_proj; llama.cpp falls back to a float type for those too) stay float32.
    if (info.shape.length !== 2 || this.weightsFormat === 'f32' || info.shape[1] % BLOCK !== 0) {
      const w = this.store.read(name);
      this.residentBytes += w.byteLength;
      return w;
    }
    const packed = this.packedWeight(name, info.shape[0], info.shape[1]);
    this.residentBytes += quantBytes(packed);
    return packed;
  }

  private packedWeight(name: string, N: number, K: number): QuantMatrix {
    const bits = this.bitsFor(name);
    const m = quantizeRtn(this.store.read(name), N, K, bits, packedBlockSize(bits, K));
    return m;
  }

  close(): void {
    // Tensors are read with their own open/close; nothing stays open.
  }
}
