// The tensors a ModelSpec implies (Hugging Face Llama naming), checked against a checkpoint before anything is built.
import { UserError } from '../errors';
import type { SafetensorsStore } from './safetensors';
import type { ModelSpec } from './spec';

export interface LayerWeightNames {
  inputNorm: string;
  q: string; k: string; v: string; o: string;
  qBias?: string; kBias?: string; vBias?: string; oBias?: string;
  postNorm: string;
  gate: string; up: string; down: string;
  gateBias?: string; upBias?: string; downBias?: string;
}

export const embedName = 'model.embed_tokens.weight';
export const finalNormName = 'model.norm.weight';
export const lmHeadName = 'lm_head.weight';

export function layerWeightNames(spec: ModelSpec, l: number): LayerWeightNames {
  const p = `model.layers.${l}.`;
  const a = spec.attentionBias;
  const m = spec.mlpBias ?? false;
  return {
    inputNorm: `${p}input_layernorm.weight`,
    q: `${p}self_attn.q_proj.weight`, k: `${p}self_attn.k_proj.weight`, v: `${p}self_attn.v_proj.weight`,
    o: `${p}self_attn.o_proj.weight`,
    qBias: a ? `${p}self_attn.q_proj.bias` : undefined,
    kBias: a ? `${p}self_attn.k_proj.bias` : undefined,
    vBias: a ? `${p}self_attn.v_proj.bias` : undefined,
    oBias: spec.outputBias ? `${p}self_attn.o_proj.bias` : undefined,
    postNorm: `${p}post_attention_layernorm.weight`,
    gate: `${p}mlp.gate_proj.weight`, up: `${p}mlp.up_proj.weight`, down: `${p}mlp.down_proj.weight`,
    gateBias: m ? `${p}mlp.gate_proj.bias` : undefined,
    upBias: m ? `${p}mlp.up_proj.bias` : undefined,
    downBias: m ? `${p}mlp.down_proj.bias` : undefined,
  };
}

/** Every tensor the forward pass reads, with the shape config.json implies. */
export function expectedShapes(spec: ModelSpec): Map<string, number[]> {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize: V } = spec;
  const shapes = new Map<string, number[]>([[embedName, [V, H]], [finalNormName, [H]]]);
  if (!spec.tieWordEmbeddings) shapes.set(lmHeadName, [V, H]);
  for (let l = 0; l < spec.numLayers; l++) {
    const n = layerWeightNames(spec, l);
    const set = (name: string | undefined, shape: number[]) => { if (name) shapes.set(name, shape); };
    set(n.inputNorm, [H]);
    set(n.q, [numHeads * D, H]); set(n.qBias, [numHeads * D]);
    set(n.k, [numKvHeads * D, H]); set(n.kBias, [numKvHeads * D]);
    set(n.v, [numKvHeads * D, H]); set(n.vBias, [numKvHeads * D]);
    set(n.o, [H, numHeads * D]); set(n.oBias, [H]);
    set(n.postNorm, [H]);
    set(n.gate, [I, H]); set(n.gateBias, [I]);
    set(n.up, [I, H]); set(n.upBias, [I]);
    set(n.down, [H, I]); set(n.downBias, [H]);
  }
  return shapes;
}

/** Throws a UserError for the first missing tensor or shape mismatch, or layers config.json does not count. */
export function checkWeights(spec: ModelSpec, store: SafetensorsStore, modelDir: string): void {
  // A config that names fewer layers than the checkpoint holds would run a truncated model without a word.
  const extra = store.names().find((n) => /^model\.layers\.(\d+)\./.test(n) && Number(/^model\.layers\.(\d+)\./.exec(n)![1]) >= spec.numLayers);
  if (extra) throw new UserError(`checkpoint holds "${extra}" but config.json says num_hidden_layers is ${spec.numLayers}`, modelDir);
  for (const [name, shape] of expectedShapes(spec)) {
    const info = store.info(name);
    if (!info) {
      const hint = name === lmHeadName ? ' (config says tie_word_embeddings is false)' : '';
      throw new UserError(`checkpoint has no tensor "${name}"${hint}`, modelDir);
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(`tensor "${name}" has shape [${info.shape}] but config.json implies [${shape}]`, info.file);
    }
  }
}
