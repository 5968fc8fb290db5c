// A model path → its ModelSource: a Hugging Face folder (config.json + safetensors + tokenizer.json), a .gguf file,
// or a folder holding one .gguf file and no config.json (what a GGUF download leaves).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { openGguf } from './gguf';
import { SafetensorsSource, type SafetensorsSourceOptions } from './safetensors-source';
import type { ModelSource } from './source';

export type OpenSourceOptions = SafetensorsSourceOptions;

export function openModelSource(modelPath: string, options: OpenSourceOptions = {}): ModelSource {
  const p = path.resolve(modelPath);
  if (!existsSync(p)) throw new UserError('not found (expected a model folder or a .gguf file)', p);
  const st = statSync(p);
  if (st.isFile()) {
    if (p.toLowerCase().endsWith('.gguf')) return openGgufFile(p, options);
    throw new UserError('not a model: expected a .gguf file or a Hugging Face model folder', p);
  }
  if (!st.isDirectory()) throw new UserError('not a regular file or folder', p);
  if (!existsSync(path.join(p, 'config.json'))) {
    const ggufs = readdirSync(p).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (ggufs.length === 1) return openGgufFile(path.join(p, ggufs[0]), options);
    if (ggufs.length > 1) throw new UserError(`holds ${ggufs.length} .gguf files and no config.json: choose one file (${ggufs.slice(0, 4).join(', ')})`, p);
  }
  return SafetensorsSource.open(p, options);
}

function openGgufFile(file: string, _options: OpenSourceOptions): ModelSource {
  // A GGUF file is used as it is stored (--weights applies to safetensors checkpoints).
  return openGguf(file);
}
