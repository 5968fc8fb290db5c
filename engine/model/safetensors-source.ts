// A Hugging Face folder as a ModelSource, with its linear layers kept as float32 or quantized on load (round to
// nearest per block of 32, quant.ts) and the packed result cached on disk (weight-cache.ts), so the second load
// reads bytes instead of quantizing again.
import { rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors';
import { readConfig, readGenerationEos } from './config';
import { quantizeRtn, quantBytes, type QuantBits, type QuantMatrix, type WeightTensor } from './quant';
import { SafetensorsStore } from './safetensors';
import type { ModelSource } from './source';
import type { ModelSpec } from './spec';
import { loadTokenizer } from './tokenizer';
import { WeightCacheReader, WeightCacheWriter, cacheFileName } from './weight-cache';
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
  /** Where packed weights are cached (null: no disk cache). Default: defaultCacheDir(). */
  cacheDir?: string | null;
  log?: (line: string) => void;
}

/** Block size of the packed form: every K of the supported architectures is a multiple of 32, as in GGUF's Q8_0/Q4_0. */
const BLOCK = 32;

export class SafetensorsSource implements ModelSource {
  readonly format = 'safetensors';
  readonly fingerprint: string;
  /** float32, or the bits linear layers are packed to. */
  readonly weightsFormat: WeightsFormat;
  /** Where the packed weights came from on this load. */
  cacheState: 'none' | 'hit' | 'written' | 'unavailable' = 'none';
  /** Bytes of every weight handed out so far (what the loaded model holds). */
  residentBytes = 0;
  private reader?: WeightCacheReader;
  private writer?: WeightCacheWriter;
  private readonly log: (line: string) => void;

  private constructor(
    readonly path: string,
    readonly spec: ModelSpec,
    readonly tokenizer: ReturnType<typeof loadTokenizer>,
    private readonly store: SafetensorsStore,
    options: SafetensorsSourceOptions,
  ) {
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'));
    this.weightsFormat = resolveWeights(options.weights ?? 'auto', spec);
    const files = [...new Set(store.names().map((n) => store.info(n)!.file))].sort();
    this.fingerprint = JSON.stringify(files.map((f) => { const st = statSync(f); return [f, st.size, st.mtimeMs]; }));
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
    if (this.weightsFormat !== 'f32' && cacheDir) this.openCache(cacheFileName(cacheDir, { files: this.fingerprint, weights: this.weightsFormat }));
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
    return this.weightsFormat === 'f32' ? 4 : this.weightsFormat === 'int8' ? 1 + 4 / BLOCK : 0.5 + 4 / BLOCK;
  }

  /** Bits of a matrix: int4 keeps the embedding/lm_head at 8 bits (as llama.cpp's Q4 files keep their output at 6). */
  private bitsFor(name: string): QuantBits {
    if (this.weightsFormat === 'int4' && name !== embedName && name !== lmHeadName) return 4;
    return 8;
  }

  private openCache(file: string): void {
    try {
      this.reader = WeightCacheReader.open(file);
      this.cacheState = 'hit';
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.log(`snout: weight cache ${file} unusable (${(err as Error).message}); rebuilding it`);
    }
    try {
      this.writer = new WeightCacheWriter(file);
    } catch (err) {
      this.cacheState = 'unavailable';
      this.log(`snout: cannot write the weight cache in ${path.dirname(file)} (${(err as Error).message}); quantizing in memory only`);
    }
  }

  weight(name: string): WeightTensor {
    const info = this.store.info(name);
    if (!info) throw new UserError(`checkpoint has no tensor "${name}"`, this.path);
    let w: WeightTensor;
    // Vectors, float32 models, and matrices whose rows do not split into whole blocks (stories260K's 172-wide
    // down_proj; llama.cpp falls back to a float type for those too) stay float32.
    if (info.shape.length !== 2 || this.weightsFormat === 'f32' || info.shape[1] % BLOCK !== 0) {
      w = this.store.read(name);
      this.residentBytes += w.byteLength;
      return w;
    }
    const packed = this.packedWeight(name, info.shape[0], info.shape[1]);
    this.residentBytes += quantBytes(packed);
    return packed;
  }

  private packedWeight(name: string, N: number, K: number): QuantMatrix {
    if (this.reader?.has(name)) {
      try {
        return this.reader.read(name);
      } catch (err) {
        // A damaged cache is dropped whole; this load quantizes from the checkpoint (and does not rewrite mid-load).
        this.log(`snout: weight cache ${this.reader.file} is damaged (${(err as Error).message}); deleting it`);
        this.dropCache();
      }
    }
    const m = quantizeRtn(this.store.read(name), N, K, this.bitsFor(name), BLOCK);
    if (this.writer) {
      try {
        this.writer.add(name, m);
      } catch (err) {
        this.log(`snout: cannot write the weight cache (${(err as Error).message}); continuing without it`);
        this.writer.abandon();
        this.writer = undefined;
        this.cacheState = 'unavailable';
      }
    }
    return m;
  }

  private dropCache(): void {
    const file = this.reader!.file;
    this.reader!.close();
    this.reader = undefined;
    this.cacheState = 'unavailable';
    try { rmSync(file, { force: true }); } catch { /* best effort */ }
  }

  /** Called when every weight has been read: the cache file is renamed into place. */
  finishLoad(): void {
    if (this.writer) {
      try {
        this.writer.finish();
        this.cacheState = 'written';
      } catch (err) {
        this.writer.abandon();
        this.cacheState = 'unavailable';
        this.log(`snout: cannot write the weight cache (${(err as Error).message}); continuing without it`);
      }
      this.writer = undefined;
    }
  }

  close(): void {
    this.reader?.close();
    this.writer?.abandon();
  }
}
