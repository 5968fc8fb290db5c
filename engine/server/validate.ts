// Checks request params field by field and names the first bad one ("complete: maxTokens must be an integer in
// 1..1023"), so a hostile or buggy client gets a clear InvalidParams error instead of a crash deep in the engine.
import type { AskParams, AttentionSettings, ChatMessage, CompleteParams, IndexParams, LoadParams, RepoFile, SamplingParams } from '../protocol';
import { LSH_LIMITS } from '../attention/types';

export class ParamError extends Error {}

/** Largest text the engine accepts in one request field (characters). The framing limit bounds whole messages. */
export const MAX_TEXT_CHARS = 16 * 1024 * 1024;
const MAX_FILES = 10000;
const MAX_STOPS = 16;

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ParamError(`${where} must be an object`);
  return v as Obj;
}
function str(o: Obj, key: string, where: string, opt: { required?: boolean; max?: number } = {}): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (opt.required) throw new ParamError(`${where}.${key} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new ParamError(`${where}.${key} must be a string`);
  const max = opt.max ?? MAX_TEXT_CHARS;
  if (v.length > max) throw new ParamError(`${where}.${key} is ${v.length} characters, more than the limit of ${max}`);
  return v;
}
function num(o: Obj, key: string, where: string, min: number, max: number, integer = false): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new ParamError(`${where}.${key} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return v;
}
function oneOf<T extends string>(o: Obj, key: string, where: string, values: readonly T[]): T | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !values.includes(v as T)) throw new ParamError(`${where}.${key} must be one of ${values.join(', ')}`);
  return v as T;
}
function arr(o: Obj, key: string, where: string, max: number): unknown[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ParamError(`${where}.${key} must be an array`);
  if (v.length > max) throw new ParamError(`${where}.${key} has ${v.length} entries, more than the limit of ${max}`);
  return v;
}

function attention(v: unknown, where: string): AttentionSettings | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, where);
  const a: AttentionSettings = {
    method: oneOf(o, 'method', where, ['dense', 'magicpig', 'topk', 'quest'] as const),
    K: num(o, 'K', where, LSH_LIMITS.K.min, LSH_LIMITS.K.max, true),
    L: num(o, 'L', where, LSH_LIMITS.L.min, LSH_LIMITS.L.max, true),
    sinks: num(o, 'sinks', where, 0, 1 << 20, true),
    window: num(o, 'window', where, 0, 1 << 20, true),
    minIndexed: num(o, 'minIndexed', where, 0, 1 << 24, true),
    kvDtype: oneOf(o, 'kvDtype', where, ['float32', 'bfloat16'] as const),
  };
  const dl = arr(o, 'denseLayers', where, 1024);
  if (dl) {
    if (!dl.every((x) => Number.isInteger(x))) throw new ParamError(`${where}.denseLayers must be integers`);
    a.denseLayers = dl as number[];
  }
  if (o.budget !== undefined && o.budget !== null) a.budget = o.budget === 'auto' ? 'auto' : num(o, 'budget', where, 0, 1);
  for (const k of Object.keys(a) as (keyof AttentionSettings)[]) if (a[k] === undefined) delete a[k];
  return a;
}

function sampling(v: unknown, where: string): SamplingParams | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, where);
  return { temperature: num(o, 'temperature', where, 0, 100), topP: num(o, 'topP', where, 0, 1), seed: num(o, 'seed', where, 0, 2 ** 32 - 1, true) };
}

function files(o: Obj, where: string): RepoFile[] | undefined {
  const a = arr(o, 'files', where, MAX_FILES);
  return a?.map((f, i) => {
    const fo = obj(f, `${where}.files[${i}]`);
    return { path: str(fo, 'path', `${where}.files[${i}]`, { required: true, max: 4096 })!, text: str(fo, 'text', `${where}.files[${i}]`, { required: true })! };
  });
}

function id(o: Obj, where: string): string {
  const v = o.id;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return str(o, 'id', where, { required: true, max: 256 })!;
}

export function loadParams(v: unknown): LoadParams {
  const o = obj(v, 'load params');
  return {
    modelDir: str(o, 'modelDir', 'load', { required: true, max: 4096 })!,
    provider: oneOf(o, 'provider', 'load', ['auto', 'cpu', 'cuda', 'webgpu'] as const),
    attention: attention(o.attention, 'load.attention'),
    prefixCacheBytes: num(o, 'prefixCacheBytes', 'load', 0, 2 ** 45, true),
    contextLength: num(o, 'contextLength', 'load', 16, 1 << 22, true),
    weights: oneOf(o, 'weights', 'load', ['auto', 'f32', 'int8', 'int4'] as const),
    cacheDir: str(o, 'cacheDir', 'load', { max: 4096 }),
    prefixCacheMaxBytes: num(o, 'prefixCacheMaxBytes', 'load', 0, 2 ** 50, true),
  };
}

export function completeParams(v: unknown): CompleteParams {
  const o = obj(v, 'complete params');
  const p: CompleteParams = {
    prompt: str(o, 'prompt', 'complete'),
    ...context(o, 'complete'),
    stop: stops(o, 'complete'),
    sampling: sampling(o.sampling, 'complete.sampling'),
    priority: oneOf(o, 'priority', 'complete', ['completion', 'ask'] as const),
  };
  if (p.prompt === undefined && p.prefix === undefined) throw new ParamError('complete needs either prompt or prefix');
  if (p.prompt !== undefined && (p.prefix !== undefined || p.suffix !== undefined || p.files !== undefined)) {
    throw new ParamError('complete takes either a raw prompt or structured parts (prefix, suffix, files), not both');
  }
  return p;
}

/** Index: a structured completion's context (no raw prompt, nothing to sample); the same limits as complete. */
export function indexParams(v: unknown): IndexParams {
  const o = obj(v, 'index params');
  if (o.prompt !== undefined && o.prompt !== null) throw new ParamError('index takes structured parts (files, path, prefix, suffix), not a raw prompt');
  return context(o, 'index');
}

/** The fields complete and index share: a structured request's repository context, its budget and attention. */
function context(o: Obj, where: 'complete' | 'index'): IndexParams {
  return {
    id: id(o, where),
    repoName: str(o, 'repoName', where, { max: 4096 }),
    files: files(o, where),
    path: str(o, 'path', where, { max: 4096 }),
    prefix: str(o, 'prefix', where),
    suffix: str(o, 'suffix', where),
    maxTokens: num(o, 'maxTokens', where, 1, 1 << 20, true),
    attention: attention(o.attention, `${where}.attention`),
  };
}

function stops(o: Obj, where: string): string[] | undefined {
  const a = arr(o, 'stop', where, MAX_STOPS);
  if (a && !a.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) throw new ParamError(`${where}.stop must hold non-empty strings of at most 256 characters`);
  return a as string[] | undefined;
}

export function askParams(v: unknown): AskParams {
  const o = obj(v, 'ask params');
  const msgs = arr(o, 'messages', 'ask', 10000);
  if (!msgs || msgs.length === 0) throw new ParamError('ask.messages must be a non-empty array');
  const messages: ChatMessage[] = msgs.map((m, i) => {
    const mo = obj(m, `ask.messages[${i}]`);
    return { role: oneOf(mo, 'role', `ask.messages[${i}]`, ['system', 'user', 'assistant'] as const) ?? (() => { throw new ParamError(`ask.messages[${i}].role is required`); })(), content: str(mo, 'content', `ask.messages[${i}]`, { required: true })! };
  });
  return {
    id: id(o, 'ask'),
    messages,
    files: files(o, 'ask'),
    maxTokens: num(o, 'maxTokens', 'ask', 1, 1 << 20, true),
    sampling: sampling(o.sampling, 'ask.sampling'),
    attention: attention(o.attention, 'ask.attention'),
  };
}
