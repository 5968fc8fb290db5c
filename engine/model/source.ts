// Where a model's pieces come from: a Hugging Face folder (config.json + safetensors + tokenizer.json) or one GGUF
// file. Either way the rest of the engine sees the same four things: the spec, the tokenizer, the weights by their
// Hugging Face names (float32 or packed, see quant.ts) and an identity for caches.
import type { ModelSpec } from './spec';
import type { HfTokenizer } from './tokenizer';
import type { WeightTensor } from './quant';

export interface ModelSource {
  /** The folder or file it was opened from (absolute). */
  readonly path: string;
  readonly format: 'safetensors' | 'gguf';
  readonly spec: ModelSpec;
  readonly tokenizer: HfTokenizer;
  /**
   * A weight by its Hugging Face name (engine/model/weights.ts), in the form the source holds it: 1-D tensors
   * (norms, biases) always as Float32Array; matrices as Float32Array [out, in] or a QuantMatrix. Throws a UserError
   * naming the file for a missing or malformed tensor.
   */
  weight(name: string): WeightTensor;
  /** Identity for on-disk caches: changes whenever the files do (size and mtime of every file read). */
  readonly fingerprint: string;
  /**
   * The matrices come packed (the embedding included): the engine then looks embeddings up from the packed table
   * and builds a head graph of its own. Absent: the loader asks the embedding.
   */
  readonly packed?: boolean;
  /** Resident bytes per matrix weight, for the 2 GiB-per-graph check (absent: 4, float32). */
  readonly bytesPerWeight?: number;
  /** Bytes of every weight handed out so far, for the resident-size report. */
  readonly residentBytes?: number;
  close(): void;
}
