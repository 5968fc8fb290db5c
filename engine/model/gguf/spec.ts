// GGUF metadata → ModelSpec, and llama.cpp's tensor names ↔ the Hugging Face names the engine asks for.
import { UserError } from '../../errors';
import type { ModelSpec, RopeScaling } from '../spec';
import type { GgufHeader, MetaValue } from './parse';

const supportedArchs = ['llama', 'qwen2'] as const;

/** A float32 metadata value as the decimal the converter wrote (1e-5 rather than 9.99999974e-6). */
export function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return v;
  }
  return x;
}

export function metaGetter(h: GgufHeader, file: string) {
  const fail = (msg: string): never => { throw new UserError(msg, file); };
  const get = (key: string): MetaValue | undefined => h.metadata.get(key);
  const int = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    if (v === undefined) return fail(`metadata has no "${key}"`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(`metadata "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    if (v === undefined) return fail(`metadata has no "${key}"`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return fail(`metadata "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    return shortestF32(v);
  };
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return fail(`metadata "${key}" must be a string`);
    return v;
  };
  return { fail, get, int, num, str };
}

/** llama.cpp's name of a Hugging Face tensor name, or undefined for a name it has no tensor for. */
export function ggufTensorName(hf: string): string | undefined {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (fixed[hf]) return fixed[hf];
  const m = /^model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm|self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.(weight|bias)$/.exec(hf);
  if (!m) return undefined;
  const part: Record<string, string> = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  return `blk.${Number(m[1])}.${part[m[2]]}.${m[3]}`;
}

/** The ModelSpec a GGUF file describes. `vocabSize` is the tokenizer's token count (checked against token_embd). */
export function ggufSpec(h: GgufHeader, file: string, vocabSize: number, eos: { bos?: number; eos: number[] }): ModelSpec {
  const { fail, int, num, str } = metaGetter(h, file);
  const arch = str('general.architecture');
  if (arch === undefined) fail('metadata has no "general.architecture"');
  if (!(supportedArchs as readonly string[]).includes(arch!)) {
    fail(`architecture "${arch}" is not supported (supported: ${supportedArchs.join(', ')})`);
  }
  const a = arch as (typeof supportedArchs)[number];
  const hiddenSize = int(`${a}.embedding_length`);
  const numHeads = int(`${a}.attention.head_count`);
  const numKvHeads = int(`${a}.attention.head_count_kv`, numHeads);
  if (numHeads % numKvHeads !== 0) fail(`head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const headDim = int(`${a}.attention.key_length`, hiddenSize / numHeads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) fail(`head size ${headDim} must be an even integer`);
  if (int(`${a}.attention.value_length`, headDim) !== headDim) fail('attention.value_length differs from key_length (not supported)');
  if (int(`${a}.rope.dimension_count`, headDim) !== headDim) fail(`rope.dimension_count is not the head size ${headDim} (partial RoPE is not supported)`);
  if (h.tensors.has('rope_freqs.weight')) fail('has rope_freqs.weight (Llama 3.1-style RoPE frequency factors), which is not supported');

  const has = (name: string) => h.tensors.has(name);
  const attentionBias = a === 'qwen2' ? true : has('blk.0.attn_q.bias');
  return {
    modelType: a,
    hiddenSize,
    intermediateSize: int(`${a}.feed_forward_length`),
    numLayers: int(`${a}.block_count`),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings: int(`${a}.context_length`, 2048),
    rmsNormEps: num(`${a}.attention.layer_norm_rms_epsilon`),
    ropeTheta: num(`${a}.rope.freq_base`, 10000),
    ropeScaling: ropeScaling(h, a, file),
    tieWordEmbeddings: !has('output.weight'),
    attentionBias,
    outputBias: a === 'llama' && has('blk.0.attn_output.bias'),
    mlpBias: a === 'llama' && has('blk.0.ffn_gate.bias'),
    bosTokenId: eos.bos,
    eosTokenIds: eos.eos,
  };
}

function ropeScaling(h: GgufHeader, a: string, file: string): RopeScaling {
  const { fail, num, str } = metaGetter(h, file);
  const type = str(`${a}.rope.scaling.type`);
  if (type === undefined || type === 'none') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor: num(`${a}.rope.scaling.factor`) };
  return fail(`rope scaling "${type}" is not supported (supported: none, linear)`);
}
