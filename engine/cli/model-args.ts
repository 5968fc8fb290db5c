// Flag parsing shared by the model commands (logits, generate): `--name value` pairs and bare switches, with every
// mistake reported as one UserError line.
import { LSH_LIMITS, type AttentionConfig } from '../attention/types';
import { UserError } from '../errors';
import { weightsSettings, type WeightsSetting } from '../model/safetensors-source';

export interface ParsedArgs {
  values: Map<string, string[]>;
  switches: Set<string>;
}

/** `spec` maps each flag (without --) to 'value' or 'switch'. */
export function parseArgs(command: string, argv: string[], spec: Record<string, 'value' | 'switch'>): ParsedArgs {
  const values = new Map<string, string[]>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UserError(`${command}: unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    const kind = spec[name];
    if (!kind) throw new UserError(`${command}: unknown option --${name} (options: ${Object.keys(spec).map((k) => '--' + k).join(' ')})`);
    if (kind === 'switch') { switches.add(name); continue; }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UserError(`${command}: --${name} needs a value`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { values, switches };
}

export function stringArg(a: ParsedArgs, name: string): string | undefined {
  const v = a.values.get(name);
  return v ? v[v.length - 1] : undefined;
}

export function numberArg(command: string, a: ParsedArgs, name: string, check: (x: number) => boolean, what: string): number | undefined {
  const raw = stringArg(a, name);
  if (raw === undefined) return undefined;
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UserError(`${command}: --${name} must be ${what}, got "${raw}"`);
  return x;
}

/** --weights auto|f32|int8|int4 and --cache-dir DIR: how a safetensors checkpoint is held (engine/model/safetensors-source.ts). */
export const weightFlags = { weights: 'value', 'cache-dir': 'value' } as const;

export function weightArgs(command: string, a: ParsedArgs): { weights?: WeightsSetting; cacheDir?: string } {
  const weights = stringArg(a, 'weights');
  if (weights !== undefined && !(weightsSettings as readonly string[]).includes(weights)) {
    throw new UserError(`${command}: --weights must be one of ${weightsSettings.join(', ')}, got "${weights}"`);
  }
  return { weights: weights as WeightsSetting | undefined, cacheDir: stringArg(a, 'cache-dir') };
}

/** --model DIR, else env SNOUT_MODEL. */
export function modelArg(command: string, a: ParsedArgs): string {
  const dir = stringArg(a, 'model') ?? process.env.SNOUT_MODEL;
  if (!dir) throw new UserError(`${command}: --model DIR is required (or set SNOUT_MODEL)`);
  return dir;
}

const providers = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export function providerArg(command: string, a: ParsedArgs): (typeof providers)[number] {
  const p = stringArg(a, 'provider') ?? 'auto';
  if (!(providers as readonly string[]).includes(p)) throw new UserError(`${command}: --provider must be one of ${providers.join(', ')}`);
  return p as (typeof providers)[number];
}

const methods = ['dense', 'magicpig', 'topk', 'quest'] as const;
export function attentionArg(command: string, a: ParsedArgs): (typeof methods)[number] | undefined {
  const m = stringArg(a, 'attention');
  if (m === undefined) return undefined;
  if (!(methods as readonly string[]).includes(m)) throw new UserError(`${command}: --attention must be one of ${methods.join(', ')}`);
  return m as (typeof methods)[number];
}

/** "1,2,3" → [1, 2, 3]. */
export function idsArg(command: string, raw: string, flag = 'ids'): number[] {
  const parts = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const ids = parts.map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new UserError(`${command}: --${flag} must be comma-separated whole numbers, got "${raw}"`);
  }
  return ids;
}

/** The attention knobs every model command takes (issue: K, L, sinks, window, dense layers, budget per request). */
export const attentionFlags = {
  attention: 'value', k: 'value', l: 'value', sinks: 'value', window: 'value', 'dense-layers': 'value', budget: 'value',
  'kv-dtype': 'value', 'min-indexed': 'value',
} as const;

/** --attention/--k/--l/--sinks/--window/--dense-layers/--budget/--kv-dtype/--min-indexed → config overrides (undefined if none). */
export function attentionConfigArg(command: string, a: ParsedArgs): Partial<AttentionConfig> | undefined {
  const c: Partial<AttentionConfig> = {};
  const method = attentionArg(command, a);
  if (method) c.method = method;
  const whole = (name: string, min: number) => numberArg(command, a, name, (x) => Number.isInteger(x) && x >= min, `a whole number >= ${min}`);
  const within = (name: string, r: { min: number; max: number }) =>
    numberArg(command, a, name, (x) => Number.isInteger(x) && x >= r.min && x <= r.max, `a whole number in ${r.min}..${r.max}`);
  const K = within('k', LSH_LIMITS.K), L = within('l', LSH_LIMITS.L), sinks = whole('sinks', 0), window = whole('window', 0);
  if (K !== undefined) c.K = K;
  if (L !== undefined) c.L = L;
  if (sinks !== undefined) c.sinks = sinks;
  if (window !== undefined) c.window = window;
  const minIndexed = whole('min-indexed', 0);
  if (minIndexed !== undefined) c.minIndexed = minIndexed;
  const dense = stringArg(a, 'dense-layers');
  if (dense !== undefined) c.denseLayers = dense.trim() === '' || dense === 'none' ? [] : idsArg(command, dense, 'dense-layers');
  const budget = stringArg(a, 'budget');
  if (budget !== undefined) {
    c.budget = budget === 'auto' ? 'auto' : numberArg(command, a, 'budget', (x) => x > 0 && x <= 1, '"auto" or a fraction in (0, 1]');
  }
  const dtype = stringArg(a, 'kv-dtype');
  if (dtype !== undefined) {
    if (dtype !== 'float32' && dtype !== 'bfloat16') throw new UserError(`${command}: --kv-dtype must be float32 or bfloat16`);
    c.kvDtype = dtype;
  }
  return Object.keys(c).length ? c : undefined;
}
