// config.json → ModelSpec. Only what the engine computes exactly is accepted; anything else is a UserError naming the
// file and the field, so a user learns at load time (not from garbage text) that a checkpoint is unsupported.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { MODEL_FILE_LIMITS, readJsonObject } from './read-file';
import type { ModelSpec, RopeScaling } from './spec';

type Json = Record<string, unknown>;

const supportedTypes = ['llama', 'qwen2', 'mistral'] as const;

export function readConfig(modelDir: string): ModelSpec {
  const file = path.join(modelDir, 'config.json');
  if (!existsSync(file)) throw new UserError('not found (is this a Hugging Face model folder?)', file);
  return parseConfig(readJsonObject(file, MODEL_FILE_LIMITS.config), file);
}

/**
 * Largest values accepted: far above any released checkpoint, low enough that loops and allocations sized by them
 * stay bounded (a config.json is untrusted input; its numbers size arrays before the checkpoint can disagree).
 */
export const CONFIG_MAXIMA: Record<string, number> = {
  hidden_size: 1 << 16, intermediate_size: 1 << 18, num_hidden_layers: 1024, num_attention_heads: 1024,
  num_key_value_heads: 1024, head_dim: 1024, vocab_size: 1 << 22, max_position_embeddings: 1 << 22,
  sliding_window: 1 << 22, rope_theta: 1e10,
};

export function parseConfig(c: Json, file = 'config.json'): ModelSpec {
  const fail = (msg: string): never => { throw new UserError(msg, file); };
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined || v === null) return fail(`missing "${key}"`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    if (v > (CONFIG_MAXIMA[key] ?? Infinity)) return fail(`"${key}" is ${v}, more than the largest supported (${CONFIG_MAXIMA[key]})`);
    return v;
  };
  const num = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined || v === null) return fail(`missing "${key}"`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    if (v > (CONFIG_MAXIMA[key] ?? Infinity)) return fail(`"${key}" is ${v}, more than the largest supported (${CONFIG_MAXIMA[key]})`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'boolean') return fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };

  const modelType = c.model_type;
  if (typeof modelType !== 'string') fail('missing "model_type"');
  if (!(supportedTypes as readonly string[]).includes(modelType as string)) {
    fail(`unsupported model_type "${modelType}" (supported: ${supportedTypes.join(', ')})`);
  }
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu';
  if (act !== 'silu') fail(`unsupported hidden_act "${act}" (only silu/SwiGLU)`);

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = c.head_dim === undefined || c.head_dim === null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim)) fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (set head_dim)`);
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} must be even for RoPE`);
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1) fail('partial_rotary_factor is not supported');

  let maxPositionEmbeddings = int('max_position_embeddings', 2048);
  // Sliding-window attention is not implemented; within one window it equals full attention, so cap the context there.
  const usesWindow = modelType === 'mistral' || (modelType === 'qwen2' && c.use_sliding_window === true);
  if (usesWindow && typeof c.sliding_window === 'number' && c.sliding_window < maxPositionEmbeddings) {
    maxPositionEmbeddings = int('sliding_window');
  }

  const attentionBias = modelType === 'qwen2' ? true : bool('attention_bias', false);
  const spec: ModelSpec = {
    modelType: modelType as ModelSpec['modelType'],
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    maxPositionEmbeddings,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeScaling: parseRopeScaling(c.rope_scaling, fail),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias,
    // Llama's attention_bias also puts a bias on o_proj; Qwen2 has q/k/v biases only.
    outputBias: modelType !== 'qwen2' && attentionBias,
    mlpBias: modelType === 'llama' ? bool('mlp_bias', false) : false,
    bosTokenId: optionalId(c.bos_token_id, 'bos_token_id', fail),
    eosTokenIds: eosIds(c.eos_token_id, fail),
  };
  if (spec.rmsNormEps >= 1) fail(`"rms_norm_eps" must be below 1, got ${spec.rmsNormEps}`);
  for (const [key, id] of [['bos_token_id', spec.bosTokenId], ...spec.eosTokenIds.map((x) => ['eos_token_id', x] as const)] as const) {
    if (id !== undefined && id >= spec.vocabSize) fail(`"${key}" ${id} is outside the vocabulary (vocab_size ${spec.vocabSize})`);
  }
  return spec;
}

function optionalId(v: unknown, key: string, fail: (m: string) => never): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`"${key}" must be a token id, got ${JSON.stringify(v)}`);
  return v as number;
}

function eosIds(v: unknown, fail: (m: string) => never): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => optionalId(x, 'eos_token_id', fail) as number);
}

function parseRopeScaling(v: unknown, fail: (m: string) => never): RopeScaling {
  if (v === undefined || v === null) return { type: 'none' };
  if (typeof v !== 'object' || Array.isArray(v)) return fail('"rope_scaling" must be an object or null');
  const r = v as Json;
  const type = r.rope_type ?? r.type;
  const positive = (key: string): number => {
    const x = r[key];
    if (typeof x !== 'number' || !(x > 0)) return fail(`rope_scaling.${key} must be a positive number, got ${JSON.stringify(x)}`);
    return x;
  };
  switch (type) {
    case 'default':
      return { type: 'none' };
    case 'linear':
      return { type: 'linear', factor: positive('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: positive('factor'),
        lowFreqFactor: positive('low_freq_factor'),
        highFreqFactor: positive('high_freq_factor'),
        originalMaxPositionEmbeddings: positive('original_max_position_embeddings'),
      };
    default:
      return fail(`unsupported rope_scaling type ${JSON.stringify(type)} (supported: linear, llama3)`);
  }
}

/**
 * Extra stop ids from generation_config.json (e.g. Qwen2.5 lists both <|endoftext|> and <|im_end|> there while
 * config.json names one). Missing or unreadable file: none — it only adds stop tokens.
 */
export function readGenerationEos(modelDir: string, vocabSize = Infinity): number[] {
  const file = path.join(modelDir, 'generation_config.json');
  if (!existsSync(file)) return [];
  // An unreadable file only loses stop tokens; a FIFO, a device or a huge file must still not hang or fill memory.
  let v: unknown;
  try {
    v = readJsonObject(file, MODEL_FILE_LIMITS.generationConfig).eos_token_id;
  } catch {
    return [];
  }
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < vocabSize);
}
