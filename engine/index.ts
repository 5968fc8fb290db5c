// The engine's public surface for the other rooms (server, eval, benches): load a model and generate with it.
export { loadModel, attentionShape, type LoadOptions } from './generate/load';
export type { LoadedModel, Sequence, GenerateRequest, GenerateResult, GenerateStats, TokenizerLike, SamplingOptions } from './generate/types';
export type { ModelSpec } from './model/spec';
export { UserError } from './errors';
