// One request on one sequence: reuse the cached prefix, prefill the rest of the prompt in chunks, then decode token by
// token until eos, a stop string, the token limit or cancellation.
import type { AttentionConfig } from '../attention/types';
import { UserError } from '../errors';
import type { ModelRunner } from './forward';
import { Sampler } from './sampling';
import { commonPrefix, type ModelSequence } from './sequence';
import { StopMatcher, StreamDecoder } from './text-stream';
import type { FinishReason, GenerateRequest, GenerateResult, TokenizerLike } from './types';

export interface GenerateContext {
  runner: ModelRunner;
  tokenizer: TokenizerLike;
  /** Tokens per prefill chunk (attention memory is O(context · chunk)). */
  prefillChunk: number;
  /** Most positions a sequence may reach (config max_position_embeddings unless overridden). */
  contextLimit: number;
  /** Generation ends on any of these. */
  eosIds: ReadonlySet<number>;
}

export async function generate(
  ctx: GenerateContext,
  seq: ModelSequence,
  baseAttention: Partial<AttentionConfig>,
  req: GenerateRequest,
): Promise<GenerateResult> {
  const { runner, tokenizer } = ctx;
  const ids = req.ids;
  validatePrompt(ids, runner.spec.vocabSize, ctx.contextLimit);
  // Tokens beyond the context limit are not generated (the service truncates prompts before they get here); the
  // first generated token needs no position of its own, each later one does.
  const maxTokens = Math.max(0, Math.min(req.maxTokens, ctx.contextLimit - ids.length + 1));
  const attention = seq.attention;
  attention.configure({ ...baseAttention, ...req.attention });
  const method = { ...baseAttention, ...req.attention }.method ?? 'dense';
  const aborted = () => req.signal?.aborted === true;

  // Reuse the longest cached prefix, but always recompute at least the last prompt token: its logits pick the first
  // generated token.
  const prefillStart = performance.now();
  // Tokens generated with sampled attention hold approximate K/V: reuse only what a cold prefill would reproduce
  // (exactLength), so a cached run's output is the cold run's.
  const cached = Math.min(commonPrefix(seq.tokens, ids), attention.exactLength ?? attention.length, ids.length - 1);
  attention.truncate(cached);
  seq.tokens = ids.slice(0, cached);
  // The whole request's room at once: a cache that grew at the first decode step (a prompt that exactly filled it, as
  // power-of-two prompts do) paid a new buffer, a copy and fresh pages per layer there, a slow step growing with the
  // context (bench-results/peer.md).
  attention.reserve?.(ids.length + maxTokens);

  // Prefill in chunks; only the last chunk's last position needs logits.
  let logits: Float32Array | undefined;
  for (let at = cached; at < ids.length; at += ctx.prefillChunk) {
    if (aborted()) return finish('cancelled', [], '', prefillStart, performance.now());
    const chunk = ids.slice(at, Math.min(ids.length, at + ctx.prefillChunk));
    const isLast = at + chunk.length >= ids.length;
    logits = await runner.forward(attention, chunk, isLast);
    seq.tokens.push(...chunk);
    req.onPrefillProgress?.(at + chunk.length, ids.length);
  }
  attention.endPrefill();
  // Index the context for sampled attention (MagicPIG hashes keys here); a no-op for dense.
  await attention.prepare({ provider: runner.provider, queryCodes: runner.queryHash });
  attention.resetStats();
  const decodeStart = performance.now();

  // Decode.
  const sampler = new Sampler(req.sampling);
  const decoder = new StreamDecoder(tokenizer, ids);
  const stops = new StopMatcher(req.stop ?? []);
  const generated: number[] = [];
  let text = '';
  let reason: FinishReason = 'length';
  const emit = (piece: string) => {
    if (!piece) return;
    text += piece;
    req.onText?.(piece);
  };
  for (let step = 0; step < maxTokens; step++) {
    if (aborted()) { reason = 'cancelled'; break; }
    const next = sampler.next(logits!);
    if (ctx.eosIds.has(next)) { reason = 'eos'; break; }
    generated.push(next);
    seq.tokens.push(next);
    emit(stops.push(decoder.push(next)));
    if (stops.stopped) { reason = 'stop'; break; }
    if (step + 1 === maxTokens) break;
    logits = await runner.forward(attention, [next], true);
  }
  if (reason !== 'stop') emit(stops.push(decoder.flush()));
  if (reason !== 'stop') emit(stops.flush());
  return finish(reason, generated, text, prefillStart, decodeStart);

  function finish(r: FinishReason, out: number[], t: string, p0: number, d0: number): GenerateResult {
    const end = performance.now();
    return {
      ids: out,
      text: t,
      finishReason: r,
      stats: {
        promptTokens: ids.length,
        cachedTokens: cached,
        prefillMs: d0 - p0,
        decodeTokens: out.length,
        decodeMs: end - d0,
        attention: method,
        sampledFraction: attention.stats().sampledFraction,
      },
    };
  }
}

export function validatePrompt(ids: readonly number[], vocabSize: number, contextLimit: number): void {
  if (ids.length === 0) throw new UserError('the prompt is empty (no token ids)');
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new UserError(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
  }
  if (ids.length > contextLimit) {
    throw new UserError(`the prompt has ${ids.length} tokens; the model's context is ${contextLimit}`);
  }
}
