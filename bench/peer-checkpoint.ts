// Random-weight checkpoints with the exact shapes of Qwen2.5-Coder-1.5B and -7B, for `snout bench peer`: a Hugging Face
// folder (bf16 safetensors) and GGUF Q8_0 and Q4_0 files converted from it (test/fixtures/gguf-writer.ts: llama.cpp's
// tensor names and layout), so Snout and llama.cpp run the same weights. Speed does not depend on the values; they are
// small (std 0.02, norms 1) so the activations stay finite. The 7B shape has zero matrices (norms 1; its safetensors
// file is sparse): a zero Q8_0/Q4_0 block (scale 0) is valid, and 7.6 billion random weights would take long to write
// for no change in speed (MagicPIG's sampled fraction does change: all keys are equal).
// Tokenizer: tiny-coder-hf's (Qwen2.5-Coder's special and FIM tokens, SentencePiece-style BPE with byte fallback),
// its GGUF token list padded with unused `<|extra_N|>` tokens up to the shape's vocabulary. Files are cached under
// .cache/peer/<shape>/ (made once).
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { toBf16Bits } from '../test/fixtures/make-checkpoint';
import { meta, tokenType, tokenizerMetadata, writeHfAsGguf, type MetaValue } from '../test/fixtures/gguf-writer';

export interface PeerShape {
  name: '1.5b' | '7b' | '1.5b-4l';
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
  /** Zero matrices instead of random values (see the header comment). */
  zero: boolean;
}

export const SHAPES: Record<string, PeerShape> = {
  // The 1.5B's layer shapes with 4 layers and a small vocabulary: per-layer behaviour (first-step probes) at a fraction
  // of the time and memory.
  '1.5b-4l': { name: '1.5b-4l', hidden: 1536, layers: 4, heads: 12, kvHeads: 2, intermediate: 8960, vocab: 4096, tied: true, zero: false },
  '1.5b': { name: '1.5b', hidden: 1536, layers: 28, heads: 12, kvHeads: 2, intermediate: 8960, vocab: 151936, tied: true, zero: false },
  '7b': { name: '7b', hidden: 3584, layers: 28, heads: 28, kvHeads: 4, intermediate: 18944, vocab: 152064, tied: false, zero: true },
};

export type PeerFormat = 'q8_0' | 'q4_0';
export const FORMATS: PeerFormat[] = ['q8_0', 'q4_0'];
/** GGUF general.file_type (llama_ftype) of each format. */
const FILE_TYPE: Record<PeerFormat, number> = { q8_0: 7, q4_0: 2 };
const ROPE_THETA = 1e6, CONTEXT = 32768, RMS_EPS = 1e-6, STD = 0.02;

export interface PeerFiles {
  dir: string;
  gguf: Record<PeerFormat, string>;
  /** Hugging Face folder (bf16 safetensors) the GGUF files are converted from. */
  hf: string;
}

interface TensorDef {
  /** Hugging Face name. */
  hf: string;
  /** [out, in] (matrices) or [n] (norms, biases). */
  shape: number[];
  kind: 'matrix' | 'bias' | 'norm';
}

function tensors(s: PeerShape): TensorDef[] {
  const d = s.hidden / s.heads, kv = s.kvHeads * d;
  const t: TensorDef[] = [{ hf: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], kind: 'matrix' }];
  for (let l = 0; l < s.layers; l++) {
    const hf = `model.layers.${l}.`;
    t.push(
      { hf: hf + 'input_layernorm.weight', shape: [s.hidden], kind: 'norm' },
      { hf: hf + 'self_attn.q_proj.weight', shape: [s.hidden, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.q_proj.bias', shape: [s.hidden], kind: 'bias' },
      { hf: hf + 'self_attn.k_proj.weight', shape: [kv, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.k_proj.bias', shape: [kv], kind: 'bias' },
      { hf: hf + 'self_attn.v_proj.weight', shape: [kv, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.v_proj.bias', shape: [kv], kind: 'bias' },
      { hf: hf + 'self_attn.o_proj.weight', shape: [s.hidden, s.hidden], kind: 'matrix' },
      { hf: hf + 'post_attention_layernorm.weight', shape: [s.hidden], kind: 'norm' },
      { hf: hf + 'mlp.gate_proj.weight', shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { hf: hf + 'mlp.up_proj.weight', shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { hf: hf + 'mlp.down_proj.weight', shape: [s.hidden, s.intermediate], kind: 'matrix' },
    );
  }
  t.push({ hf: 'model.norm.weight', shape: [s.hidden], kind: 'norm' });
  if (!s.tied) t.push({ hf: 'lm_head.weight', shape: [s.vocab, s.hidden], kind: 'matrix' });
  return t;
}

/**
 * tiny-coder-hf's tokenizer as llama.cpp's converter writes it (test/fixtures/gguf-writer.ts), its token list padded
 * with unused `<|extra_N|>` tokens to the shape's vocabulary (llama.cpp requires one token per embedding row).
 */
function paddedTokenizerMeta(tokenizerDir: string, vocab: number): Array<[string, MetaValue]> {
  const read = (f: string) => JSON.parse(readFileSync(path.join(tokenizerDir, f), 'utf8'));
  const md = tokenizerMetadata(read('tokenizer.json'), read('tokenizer_config.json'));
  const get = (key: string) => md.find(([k]) => k === key)?.[1] as { value: ArrayLike<number | string> } | undefined;
  const tokens = get('tokenizer.ggml.tokens')!.value as string[];
  const real = tokens.length;
  if (real > vocab) throw new Error(`tokenizer has ${real} tokens, more than the shape's ${vocab}`);
  const pad = <T>(values: ArrayLike<T>, f: (id: number) => T): T[] => Array.from({ length: vocab }, (_, i) => (i < real ? values[i] : f(i)));
  return md.map(([k, v]): [string, MetaValue] => {
    if (k === 'tokenizer.ggml.tokens') return [k, meta.strs(pad(tokens, (i) => `<|extra_${i}|>`))];
    if (k === 'tokenizer.ggml.scores') return [k, meta.f32s(pad(get(k)!.value as ArrayLike<number>, () => -1e9))];
    if (k === 'tokenizer.ggml.token_type') return [k, meta.i32s(pad(get(k)!.value as ArrayLike<number>, () => tokenType.unused))];
    return [k, v];
  });
}

/** Seeded xorshift32 per row; values are a scaled sum of three uniforms (bell-shaped, std `STD`). */
function fillRandom(out: Float32Array, seed: number): void {
  let s = (seed * 2654435761) >>> 0 || 1;
  const k = 2 * STD; // (u1 + u2 + u3 − 1.5) has std 0.5
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const a = (s >>> 0) / 4294967296;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const b = (s >>> 0) / 4294967296;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const c = (s >>> 0) / 4294967296;
    out[i] = (a + b + c - 1.5) * k;
  }
}

/**
 * The checkpoint files of a shape, made once: the Hugging Face folder (bf16 safetensors; sparse zeros for a `zero`
 * shape), then each GGUF format converted from it the way llama.cpp's converter lays a file out. Returns at once for
 * what is cached.
 */
export function peerCheckpoint(shapeName: string, formats: PeerFormat[], cacheRoot: string, tokenizerDir: string, log: (s: string) => void): PeerFiles {
  const s = SHAPES[shapeName];
  if (!s) throw new Error(`unknown shape ${shapeName} (${Object.keys(SHAPES).join(', ')})`);
  const dir = path.join(cacheRoot, 'peer', s.name);
  const files: PeerFiles = {
    dir,
    gguf: { q8_0: path.join(dir, `qwen2.5-coder-${s.name}-shape-q8_0.gguf`), q4_0: path.join(dir, `qwen2.5-coder-${s.name}-shape-q4_0.gguf`) },
    hf: path.join(dir, 'hf-bf16'),
  };
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const took = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  if (!existsSync(path.join(files.hf, '.done'))) {
    log(`peer: writing the ${s.name}-shaped bf16 checkpoint to ${files.hf} (once)`);
    writeHfFolder(s, files.hf, tokenizerDir);
    log(`peer: bf16 checkpoint written (${took()})`);
  }
  for (const format of formats) {
    const file = files.gguf[format];
    if (existsSync(file)) continue;
    log(`peer: converting it to ${path.basename(file)} (once)`);
    const tmp = file + '.partial';
    writeHfAsGguf(files.hf, tmp, format === 'q8_0' ? 'Q8_0' : 'Q4_0', {
      zero: s.zero ? (t) => t.shape.length === 2 : undefined,
      omit: ['tokenizer'], extraMetadata: [['general.file_type', meta.u32(FILE_TYPE[format])], ...paddedTokenizerMeta(tokenizerDir, s.vocab)],
    });
    renameSync(tmp, file);
    log(`peer: ${path.basename(file)} written (${took()})`);
  }
  return files;
}

/**
 * config.json, tokenizer.json, tokenizer_config.json and model.safetensors (bf16, streamed tensor by tensor; a
 * `zero` shape's matrices are left as holes of a sparse file). `.done` is written last.
 */
function writeHfFolder(s: PeerShape, dir: string, tokenizerDir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: s.hidden, intermediate_size: s.intermediate,
    num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, vocab_size: s.vocab,
    max_position_embeddings: CONTEXT, rms_norm_eps: RMS_EPS, rope_theta: ROPE_THETA, tie_word_embeddings: s.tied,
    hidden_act: 'silu', torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 1, use_sliding_window: false,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(path.join(dir, f), readFileSync(path.join(tokenizerDir, f)));

  const defs = tensors(s);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const offsets: number[] = [];
  let at = 0;
  for (const d of defs) {
    const bytes = 2 * d.shape.reduce((a, b) => a * b, 1);
    header[d.hf] = { dtype: 'BF16', shape: d.shape, data_offsets: [at, at + bytes] };
    offsets.push(at);
    at += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  try {
    writeSync(fd, Buffer.concat([len, Buffer.from(json)]));
    const base = 8 + Buffer.byteLength(json);
    for (const [i, d] of defs.entries()) {
      if (d.kind === 'matrix' && s.zero) continue;
      const cols = d.shape.at(-1)!, rows = d.shape.length === 1 ? 1 : d.shape[0];
      const row = new Float32Array(cols), bits = new Uint16Array(cols * Math.min(rows, 256));
      for (let r0 = 0; r0 < rows; r0 += 256) {
        const m = Math.min(256, rows - r0);
        for (let r = 0; r < m; r++) {
          if (d.kind === 'norm') row.fill(1); else fillRandom(row, i * 1_000_003 + r0 + r);
          for (let c = 0; c < cols; c++) bits[r * cols + c] = toBf16Bits(row[c]);
        }
        writeSync(fd, new Uint8Array(bits.buffer, 0, 2 * m * cols), 0, 2 * m * cols, base + offsets[i] + 2 * r0 * cols);
      }
    }
    ftruncateSync(fd, base + at);
  } finally {
    closeSync(fd);
  }
  writeFileSync(path.join(dir, '.done'), new Date().toISOString() + '\n');
}
