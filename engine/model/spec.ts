// A model as the engine understands it: the normalised content of config.json (llama, qwen2, mistral).

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelSpec {
  modelType: 'llama' | 'qwen2' | 'mistral';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2; llama with attention_bias). */
  attentionBias: boolean;
  /** o_proj carries a bias (llama with attention_bias). Absent = false. */
  outputBias?: boolean;
  /** gate/up/down projections carry a bias (llama mlp_bias). Absent = false. */
  mlpBias?: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
}
