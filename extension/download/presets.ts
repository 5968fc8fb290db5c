// Model presets for "Snout: Download model…", sized for the machine. Sizes are the hub's files (rounded); the RAM
// figure is what the engine holds: the packed weights (GGUF as stored; safetensors as int8, the engine's `auto` for
// real models) with onnxruntime's prepacked copies and the process around them, plus the KV cache of a full default
// context (32K tokens, float32 K and V per layer and KV head): the engine keeps the cache in CPU RAM.
export type PresetFormat = 'gguf-q8_0' | 'gguf-q4_k_m' | 'safetensors';

export interface ModelPreset {
  /** Stable id, also the download folder's name. */
  id: string;
  label: string;
  repo: string;
  format: PresetFormat;
  /** For GGUF: the quantisation in the file name (matched case-insensitively). */
  quant?: string;
  params: number;
  /** Bytes on disk (approximate; the listing gives the exact figure before downloading). */
  diskBytes: number;
  /** Bytes of RAM the engine needs with a 32K context (approximate). */
  ramBytes: number;
}

interface Family { size: string; params: number; layers: number; kvHeads: number; headDim: number; q8: number; q4: number; bf16: number }

const GB = 1e9;
// Qwen2.5-Coder shapes from the models' config.json; file sizes from the hub's listings.
const families: Family[] = [
  { size: '0.5B', params: 0.49e9, layers: 24, kvHeads: 2, headDim: 64, q8: 0.68 * GB, q4: 0.49 * GB, bf16: 0.99 * GB },
  { size: '1.5B', params: 1.54e9, layers: 28, kvHeads: 2, headDim: 128, q8: 1.89 * GB, q4: 1.12 * GB, bf16: 3.09 * GB },
  { size: '3B', params: 3.09e9, layers: 36, kvHeads: 2, headDim: 128, q8: 3.62 * GB, q4: 2.1 * GB, bf16: 6.17 * GB },
  { size: '7B', params: 7.62e9, layers: 28, kvHeads: 4, headDim: 128, q8: 8.1 * GB, q4: 4.68 * GB, bf16: 15.2 * GB },
];

export const defaultContextTokens = 32768;

/**
 * Resident bytes per weight as the engine holds them (engine/model/gguf/README.md): Q8_0 1.125, a Q4_K_M mix about
 * 0.9, safetensors quantized to int8 in blocks of 128 about 1.03.
 */
export const bytesPerWeight = { 'gguf-q8_0': 1.125, 'gguf-q4_k_m': 0.9, safetensors: 1.03 } as const;
/** Resident size over packed weights measured for a 1.5B Q8_0 model (prepacked copies, runtime, process). */
const processOverhead = 1.3;

/** Packed weights with the process around them + float32 KV cache for `contextTokens` tokens. */
export function ramNeeded(f: { params: number; layers: number; kvHeads: number; headDim: number }, format: keyof typeof bytesPerWeight = 'safetensors',
  contextTokens = defaultContextTokens): number {
  return f.params * bytesPerWeight[format] * processOverhead + 2 * f.layers * f.kvHeads * f.headDim * 4 * contextTokens;
}

export const presets: ModelPreset[] = families.flatMap((f) => {
  const slug = f.size.toLowerCase().replace('.', '_');
  // Qwen publishes GGUF only for the instruct models (which also do fill-in-the-middle); safetensors for the base ones.
  return [
    { id: `qwen2.5-coder-${slug}-q8_0`, label: `Qwen2.5-Coder ${f.size} · GGUF Q8_0`, repo: `Qwen/Qwen2.5-Coder-${f.size}-Instruct-GGUF`, format: 'gguf-q8_0', quant: 'q8_0', params: f.params, diskBytes: f.q8, ramBytes: ramNeeded(f, 'gguf-q8_0') },
    { id: `qwen2.5-coder-${slug}-q4_k_m`, label: `Qwen2.5-Coder ${f.size} · GGUF Q4_K_M`, repo: `Qwen/Qwen2.5-Coder-${f.size}-Instruct-GGUF`, format: 'gguf-q4_k_m', quant: 'q4_k_m', params: f.params, diskBytes: f.q4, ramBytes: ramNeeded(f, 'gguf-q4_k_m') },
    { id: `qwen2.5-coder-${slug}`, label: `Qwen2.5-Coder ${f.size} · safetensors`, repo: `Qwen/Qwen2.5-Coder-${f.size}`, format: 'safetensors', params: f.params, diskBytes: f.bf16, ramBytes: ramNeeded(f, 'safetensors') },
  ] satisfies ModelPreset[];
});

export const formatBytes = (n: number) => (n >= GB ? `${(n / GB).toFixed(1)} GB` : n >= 1e6 ? `${Math.round(n / 1e6)} MB` : n >= 1e3 ? `${Math.round(n / 1e3)} kB` : `${n} B`);

/**
 * Presets in display order with whether each fits this machine (RAM needed ≤ 75% of `totalRam`, leaving room for the
 * editor) and the one to recommend: the largest Q8_0 that fits (Q4_K_M when no Q8_0 does).
 */
export function presetsFor(totalRam: number, ggufSupported = true): { preset: ModelPreset; fits: boolean; recommended: boolean }[] {
  const list = presets.filter((p) => ggufSupported || p.format === 'safetensors');
  const fits = (p: ModelPreset) => p.ramBytes <= 0.75 * totalRam;
  const pick = [...list].reverse().find((p) => fits(p) && p.format === (ggufSupported ? 'gguf-q8_0' : 'safetensors'))
    ?? [...list].reverse().find(fits);
  return list.map((preset) => ({ preset, fits: fits(preset), recommended: preset === pick }));
}
