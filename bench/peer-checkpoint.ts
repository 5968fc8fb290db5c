// Random-weight checkpoints with the exact shapes of Qwen2.5-Coder-1.5B and -7B, for `snout bench peer`: one set of
// weights written as GGUF Q8_0 and Q4_0 (and, for 1.5B, a Hugging Face folder with bf16 safetensors), so Snout and
// llama.cpp run the same numbers. Speed does not depend on the values; they are small (std 0.02, norms 1) so the
// activations stay finite. The 7B shape is written with zero matrices (norms 1) as sparse files: a zero Q8_0/Q4_0
// block (scale 0) is valid, and writing 7.6 billion random weights would take long for no change in speed.
// Tokenizer: tiny-coder-hf's (Qwen2.5-Coder's special and FIM tokens, SentencePiece-style BPE with byte fallback),
// its list padded with unused `<|extra_N|>` tokens up to the shape's vocabulary. Files are cached under
// .cache/peer/<shape>/ (made once; a `.done` marker is written last).
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { toBf16Bits, toF16Bits } from '../test/fixtures/make-checkpoint';

export interface PeerShape {
  name: '1.5b' | '7b';
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
  /** Zero matrices in sparse files instead of random values (see the header comment). */
  zero: boolean;
  safetensors: boolean;
}

export const SHAPES: Record<string, PeerShape> = {
  '1.5b': { name: '1.5b', hidden: 1536, layers: 28, heads: 12, kvHeads: 2, intermediate: 8960, vocab: 151936, tied: true, zero: false, safetensors: true },
  '7b': { name: '7b', hidden: 3584, layers: 28, heads: 28, kvHeads: 4, intermediate: 18944, vocab: 152064, tied: false, zero: true, safetensors: false },
};

export type PeerFormat = 'q8_0' | 'q4_0';
export const FORMATS: PeerFormat[] = ['q8_0', 'q4_0'];
const ROPE_THETA = 1e6, CONTEXT = 32768, RMS_EPS = 1e-6, STD = 0.02;

export interface PeerFiles {
  dir: string;
  gguf: Record<PeerFormat, string>;
  /** Hugging Face folder (bf16 safetensors), when the shape has one. */
  hf?: string;
}

interface TensorDef {
  /** Hugging Face name and GGUF name. */
  hf: string;
  gguf: string;
  /** [out, in] (matrices) or [n] (norms, biases). */
  shape: number[];
  kind: 'matrix' | 'bias' | 'norm';
}

function tensors(s: PeerShape): TensorDef[] {
  const d = s.hidden / s.heads, kv = s.kvHeads * d;
  const t: TensorDef[] = [{ hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', shape: [s.vocab, s.hidden], kind: 'matrix' }];
  for (let l = 0; l < s.layers; l++) {
    const hf = `model.layers.${l}.`, g = `blk.${l}.`;
    t.push(
      { hf: hf + 'input_layernorm.weight', gguf: g + 'attn_norm.weight', shape: [s.hidden], kind: 'norm' },
      { hf: hf + 'self_attn.q_proj.weight', gguf: g + 'attn_q.weight', shape: [s.hidden, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.q_proj.bias', gguf: g + 'attn_q.bias', shape: [s.hidden], kind: 'bias' },
      { hf: hf + 'self_attn.k_proj.weight', gguf: g + 'attn_k.weight', shape: [kv, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.k_proj.bias', gguf: g + 'attn_k.bias', shape: [kv], kind: 'bias' },
      { hf: hf + 'self_attn.v_proj.weight', gguf: g + 'attn_v.weight', shape: [kv, s.hidden], kind: 'matrix' },
      { hf: hf + 'self_attn.v_proj.bias', gguf: g + 'attn_v.bias', shape: [kv], kind: 'bias' },
      { hf: hf + 'self_attn.o_proj.weight', gguf: g + 'attn_output.weight', shape: [s.hidden, s.hidden], kind: 'matrix' },
      { hf: hf + 'post_attention_layernorm.weight', gguf: g + 'ffn_norm.weight', shape: [s.hidden], kind: 'norm' },
      { hf: hf + 'mlp.gate_proj.weight', gguf: g + 'ffn_gate.weight', shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { hf: hf + 'mlp.up_proj.weight', gguf: g + 'ffn_up.weight', shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { hf: hf + 'mlp.down_proj.weight', gguf: g + 'ffn_down.weight', shape: [s.hidden, s.intermediate], kind: 'matrix' },
    );
  }
  t.push({ hf: 'model.norm.weight', gguf: 'output_norm.weight', shape: [s.hidden], kind: 'norm' });
  if (!s.tied) t.push({ hf: 'lm_head.weight', gguf: 'output.weight', shape: [s.vocab, s.hidden], kind: 'matrix' });
  return t;
}

// ---- GGUF layout (v3) ----

const GGML = { F32: 0, Q4_0: 2, Q8_0: 8 } as const;
const FILE_TYPE: Record<PeerFormat, number> = { q8_0: 7, q4_0: 2 };
const ALIGN = 32;
/** Bytes of `n` elements (a multiple of 32 for the block types). */
function typeBytes(type: number, n: number): number {
  if (type === GGML.F32) return 4 * n;
  if (type === GGML.Q8_0) return (n / 32) * 34;
  return (n / 32) * 18;
}

type MetaValue = { t: 'u32' | 'i32' | 'f32' | 'bool' | 'str'; v: number | boolean | string }
  | { t: 'arr'; of: 'str' | 'f32' | 'i32'; v: (string | number)[] };

class ByteWriter {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.parts.push(b); this.length += b.length; }
  u32(x: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(x); this.push(b); }
  i32(x: number): void { const b = Buffer.alloc(4); b.writeInt32LE(x); this.push(b); }
  u64(x: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(x)); this.push(b); }
  f32(x: number): void { const b = Buffer.alloc(4); b.writeFloatLE(x); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  bytes(): Buffer { return Buffer.concat(this.parts); }
}

const META_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9 } as const;

function ggufHeader(meta: Record<string, MetaValue>, infos: { name: string; dims: number[]; type: number; offset: number }[]): Buffer {
  const w = new ByteWriter();
  w.push(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(infos.length);
  w.u64(Object.keys(meta).length);
  for (const [key, m] of Object.entries(meta)) {
    w.str(key);
    w.u32(META_TYPE[m.t]);
    if (m.t === 'arr') {
      w.u32(META_TYPE[m.of]);
      w.u64(m.v.length);
      for (const x of m.v) {
        if (m.of === 'str') w.str(x as string); else if (m.of === 'f32') w.f32(x as number); else w.i32(x as number);
      }
    } else if (m.t === 'u32') w.u32(m.v as number);
    else if (m.t === 'i32') w.i32(m.v as number);
    else if (m.t === 'f32') w.f32(m.v as number);
    else if (m.t === 'bool') w.push(Buffer.from([m.v ? 1 : 0]));
    else w.str(m.v as string);
  }
  for (const t of infos) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(t.offset);
  }
  const pad = (ALIGN - (w.length % ALIGN)) % ALIGN;
  w.push(Buffer.alloc(pad));
  return w.bytes();
}

/** tiny-coder-hf's tokenizer as GGUF `llama` (SentencePiece) vocabulary metadata, padded to `vocab` tokens. */
function tokenizerMeta(tokenizerDir: string, vocab: number): Record<string, MetaValue> {
  const tj = JSON.parse(readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8'));
  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(tj.model.vocab as Record<string, number>)) byId.set(id, tok);
  const special = new Map<number, string>();
  for (const a of tj.added_tokens as { id: number; content: string; special: boolean }[]) {
    byId.set(a.id, a.content);
    if (a.special) special.set(a.id, a.content);
  }
  const real = Math.max(...byId.keys()) + 1;
  if (real > vocab) throw new Error(`tokenizer has ${real} tokens, more than the shape's ${vocab}`);
  const tokens: string[] = [], scores: number[] = [], types: number[] = [];
  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte.
  for (let id = 0; id < vocab; id++) {
    const tok = id < real ? byId.get(id) : undefined;
    if (tok === undefined) { tokens.push(`<|extra_${id}|>`); scores.push(-1e9); types.push(5); continue; }
    tokens.push(tok);
    scores.push(-id);
    types.push(tok === tj.model.unk_token ? 2 : special.has(id) ? 3 : /^<0x[0-9A-F]{2}>$/.test(tok) ? 6 : 1);
  }
  const id = (s: string) => tokens.indexOf(s);
  const ids: Record<string, MetaValue> = {};
  const named: [string, string][] = [['bos', '<|endoftext|>'], ['eos', '<|endoftext|>'], ['padding', '<|endoftext|>'],
    ['unknown', '<unk>'], ['fim_pre', '<|fim_prefix|>'], ['fim_suf', '<|fim_suffix|>'], ['fim_mid', '<|fim_middle|>'],
    ['fim_pad', '<|fim_pad|>'], ['fim_rep', '<|repo_name|>'], ['fim_sep', '<|file_sep|>']];
  for (const [k, s] of named) if (id(s) >= 0) ids[`tokenizer.ggml.${k}_token_id`] = { t: 'u32', v: id(s) };
  return {
    'tokenizer.ggml.model': { t: 'str', v: 'llama' },
    'tokenizer.ggml.tokens': { t: 'arr', of: 'str', v: tokens },
    'tokenizer.ggml.scores': { t: 'arr', of: 'f32', v: scores },
    'tokenizer.ggml.token_type': { t: 'arr', of: 'i32', v: types },
    'tokenizer.ggml.merges': { t: 'arr', of: 'str', v: tj.model.merges as string[] },
    ...ids,
    'tokenizer.ggml.add_bos_token': { t: 'bool', v: false },
    'tokenizer.ggml.add_eos_token': { t: 'bool', v: false },
  };
}

function ggufMeta(s: PeerShape, format: PeerFormat, tokenizerDir: string): Record<string, MetaValue> {
  return {
    'general.architecture': { t: 'str', v: 'qwen2' },
    'general.name': { t: 'str', v: `snout-peer-${s.name} (random weights, Qwen2.5-Coder-${s.name.toUpperCase()} shape)` },
    'general.file_type': { t: 'u32', v: FILE_TYPE[format] },
    'general.quantization_version': { t: 'u32', v: 2 },
    'qwen2.block_count': { t: 'u32', v: s.layers },
    'qwen2.context_length': { t: 'u32', v: CONTEXT },
    'qwen2.embedding_length': { t: 'u32', v: s.hidden },
    'qwen2.feed_forward_length': { t: 'u32', v: s.intermediate },
    'qwen2.attention.head_count': { t: 'u32', v: s.heads },
    'qwen2.attention.head_count_kv': { t: 'u32', v: s.kvHeads },
    'qwen2.rope.freq_base': { t: 'f32', v: ROPE_THETA },
    'qwen2.attention.layer_norm_rms_epsilon': { t: 'f32', v: RMS_EPS },
    ...tokenizerMeta(tokenizerDir, s.vocab),
  };
}

// ---- values and block quantization (llama.cpp's reference rounding: quantize_row_q8_0_ref / q4_0_ref) ----

/** Seeded xorshift32; values are a scaled sum of three uniforms (bell-shaped, std `STD`). */
function fillRandom(out: Float32Array, state: { s: number }): void {
  let s = state.s;
  const k = 2 * STD; // (u1 + u2 + u3 − 1.5) has std 0.5
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const a = (s >>> 0) / 4294967296;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const b = (s >>> 0) / 4294967296;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; const c = (s >>> 0) / 4294967296;
    out[i] = (a + b + c - 1.5) * k;
  }
  state.s = s;
}

function quantQ8(x: Float32Array, out: Buffer): void {
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = amax / 127, id = d ? 1 / d : 0;
    out.writeUInt16LE(toF16Bits(d), o);
    for (let j = 0; j < 32; j++) out[o + 2 + j] = Math.round(x[b + j] * id) & 0xff;
  }
}

function quantQ4(x: Float32Array, out: Buffer): void {
  for (let b = 0, o = 0; b < x.length; b += 32, o += 18) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) { const v = x[b + j]; if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; } }
    const d = max / -8, id = d ? 1 / d : 0;
    out.writeUInt16LE(toF16Bits(d), o);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.trunc(x[b + j] * id + 8.5)), hi = Math.min(15, Math.trunc(x[b + 16 + j] * id + 8.5));
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
}

/** The checkpoint files of a shape, made once (returns at once when the cache is complete). */
export function peerCheckpoint(shapeName: string, cacheRoot: string, tokenizerDir: string, log: (s: string) => void): PeerFiles {
  const s = SHAPES[shapeName];
  if (!s) throw new Error(`unknown shape ${shapeName} (${Object.keys(SHAPES).join(', ')})`);
  const dir = path.join(cacheRoot, 'peer', s.name);
  const files: PeerFiles = {
    dir,
    gguf: { q8_0: path.join(dir, `qwen2.5-coder-${s.name}-shape-q8_0.gguf`), q4_0: path.join(dir, `qwen2.5-coder-${s.name}-shape-q4_0.gguf`) },
    hf: s.safetensors ? path.join(dir, 'hf-bf16') : undefined,
  };
  const done = path.join(dir, '.done');
  if (existsSync(done)) return files;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  log(`peer: writing the ${s.name} checkpoint to ${dir} (once)`);
  const defs = tensors(s);

  // GGUF: header with every tensor's offset, then the data in the same order.
  const outs = FORMATS.map((format) => {
    const type = (d: TensorDef) => (d.kind === 'matrix' ? (format === 'q8_0' ? GGML.Q8_0 : GGML.Q4_0) : GGML.F32);
    let offset = 0;
    const infos = defs.map((d) => {
      const n = d.shape.reduce((a, b) => a * b, 1);
      const info = { name: d.gguf, dims: [...d.shape].reverse(), type: type(d), offset };
      offset += Math.ceil(typeBytes(info.type, n) / ALIGN) * ALIGN;
      return info;
    });
    const header = ggufHeader(ggufMeta(s, format, tokenizerDir), infos);
    const fd = openSync(files.gguf[format], 'w');
    writeSync(fd, header);
    return { format, fd, infos, base: header.length, total: header.length + offset };
  });

  // Safetensors (bf16): header JSON, then the data in the same order.
  let st: { fd: number; base: number; offsets: number[] } | undefined;
  if (files.hf) {
    mkdirSync(files.hf, { recursive: true });
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
    const fd = openSync(path.join(files.hf, 'model.safetensors'), 'w');
    writeSync(fd, Buffer.concat([len, Buffer.from(json)]));
    st = { fd, base: 8 + Buffer.byteLength(json), offsets };
    writeHfFolder(s, files.hf, tokenizerDir);
  }

  const state = { s: 0x9e3779b9 };
  const CHUNK = 1 << 20; // elements per write: a multiple of 32, so no block straddles two writes
  for (const [i, d] of defs.entries()) {
    const n = d.shape.reduce((a, b) => a * b, 1);
    if (d.kind === 'matrix' && s.zero) continue; // sparse: the file is extended to its size at the end
    for (let at = 0; at < n; at += CHUNK) {
      const m = Math.min(CHUNK, n - at);
      const x = new Float32Array(m);
      if (d.kind === 'norm') x.fill(1); else fillRandom(x, state);
      for (const o of outs) {
        const info = o.infos[i];
        const buf = Buffer.alloc(typeBytes(info.type, m));
        if (info.type === GGML.F32) Buffer.from(x.buffer).copy(buf);
        else if (info.type === GGML.Q8_0) quantQ8(x, buf);
        else quantQ4(x, buf);
        writeSync(o.fd, buf, 0, buf.length, o.base + info.offset + typeBytes(info.type, at));
      }
      if (st) {
        const bits = new Uint16Array(m);
        for (let j = 0; j < m; j++) bits[j] = toBf16Bits(x[j]);
        writeSync(st.fd, new Uint8Array(bits.buffer), 0, 2 * m, st.base + st.offsets[i] + 2 * at);
      }
    }
    if (i % 24 === 0) log(`peer: ${i + 1}/${defs.length} tensors (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  for (const o of outs) { ftruncateSync(o.fd, o.total); closeSync(o.fd); }
  if (st) closeSync(st.fd);
  writeFileSync(done, new Date().toISOString() + '\n');
  log(`peer: checkpoint written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return files;
}

/** config.json, tokenizer.json and tokenizer_config.json of the Hugging Face folder (tiny-coder-hf's tokenizer). */
function writeHfFolder(s: PeerShape, dir: string, tokenizerDir: string): void {
  const config = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: s.hidden, intermediate_size: s.intermediate,
    num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, vocab_size: s.vocab,
    max_position_embeddings: CONTEXT, rms_norm_eps: RMS_EPS, rope_theta: ROPE_THETA, tie_word_embeddings: s.tied,
    hidden_act: 'silu', torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 1, use_sliding_window: false,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(path.join(dir, f), readFileSync(path.join(tokenizerDir, f)));
}
