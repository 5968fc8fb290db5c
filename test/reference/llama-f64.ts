// A naive float64 Llama/Qwen2/Mistral forward, written from the transformers modeling code and sharing nothing with
// engine/ (it reads the raw config.json object and the tensor values the fixture generator stored). Slow on purpose:
// plain loops, full causal attention, every position recomputed. Used only to check the engine on small checkpoints.

export interface RefTensor { shape: number[]; values: Float64Array }

type Config = Record<string, any>;

function matVec(w: Float64Array, rows: number, cols: number, x: Float64Array, bias?: Float64Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? bias[r] : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}

/** transformers' rope init functions ('default', 'linear', 'llama3'), in float64. */
function ropeInvFreq(cfg: Config, dim: number): number[] {
  const base = cfg.rope_theta ?? 10000;
  let inv = Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / dim));
  const rs = cfg.rope_scaling;
  const kind = rs ? rs.rope_type ?? rs.type : 'default';
  if (kind === 'linear') inv = inv.map((f) => f / rs.factor);
  if (kind === 'llama3') {
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = rs;
    inv = inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < old / hi) return f;
      if (wavelen > old / lo) return f / factor;
      const smooth = (old / wavelen - lo) / (hi - lo);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  return inv;
}

/** q·cos + rotate_half(q)·sin for one head vector; rotate_half(x) = [-x2, x1]. */
function applyRope(x: Float64Array, offset: number, dim: number, pos: number, inv: number[]): void {
  const half = dim / 2;
  const rotated = new Float64Array(dim);
  for (let i = 0; i < dim; i++) rotated[i] = i < half ? -x[offset + i + half] : x[offset + i - half];
  for (let i = 0; i < dim; i++) {
    const angle = pos * inv[i % half];
    x[offset + i] = x[offset + i] * Math.cos(angle) + rotated[i] * Math.sin(angle);
  }
}

/** Logits for every position of `ids` (a list of Float64Array of vocab size). */
export function referenceForward(cfg: Config, tensors: Map<string, RefTensor>, ids: number[]): Float64Array[] {
  const t = (name: string) => {
    const v = tensors.get(name);
    if (!v) throw new Error(`reference: missing ${name}`);
    return v.values;
  };
  const opt = (name: string) => tensors.get(name)?.values;
  const H = cfg.hidden_size;
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads ?? nH;
  const D = cfg.head_dim ?? H / nH;
  const I = cfg.intermediate_size;
  const V = cfg.vocab_size;
  const eps = cfg.rms_norm_eps;
  const inv = ropeInvFreq(cfg, D);
  const T = ids.length;

  // Residual stream per position.
  let xs: Float64Array[] = ids.map((id) => t('model.embed_tokens.weight').slice(id * H, (id + 1) * H));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
    for (let pos = 0; pos < T; pos++) {
      const h = rmsNorm(xs[pos], t(`${p}input_layernorm.weight`), eps);
      const q = matVec(t(`${p}self_attn.q_proj.weight`), nH * D, H, h, opt(`${p}self_attn.q_proj.bias`));
      const k = matVec(t(`${p}self_attn.k_proj.weight`), nKV * D, H, h, opt(`${p}self_attn.k_proj.bias`));
      const v = matVec(t(`${p}self_attn.v_proj.weight`), nKV * D, H, h, opt(`${p}self_attn.v_proj.bias`));
      for (let hd = 0; hd < nH; hd++) applyRope(q, hd * D, D, pos, inv);
      for (let hd = 0; hd < nKV; hd++) applyRope(k, hd * D, D, pos, inv);
      qs.push(q); ks.push(k); vs.push(v);
    }
    const next: Float64Array[] = [];
    for (let pos = 0; pos < T; pos++) {
      const attn = new Float64Array(nH * D);
      for (let hd = 0; hd < nH; hd++) {
        const kv = Math.floor(hd / (nH / nKV));
        const scores: number[] = [];
        for (let s = 0; s <= pos; s++) {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += qs[pos][hd * D + i] * ks[s][kv * D + i];
          scores.push(dot / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= pos; s++) {
          for (let i = 0; i < D; i++) attn[hd * D + i] += (e[s] / z) * vs[s][kv * D + i];
        }
      }
      const o = matVec(t(`${p}self_attn.o_proj.weight`), H, nH * D, attn, opt(`${p}self_attn.o_proj.bias`));
      const x1 = xs[pos].map((v, i) => v + o[i]);
      const h2 = rmsNorm(x1, t(`${p}post_attention_layernorm.weight`), eps);
      const gate = matVec(t(`${p}mlp.gate_proj.weight`), I, H, h2, opt(`${p}mlp.gate_proj.bias`));
      const up = matVec(t(`${p}mlp.up_proj.weight`), I, H, h2, opt(`${p}mlp.up_proj.bias`));
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matVec(t(`${p}mlp.down_proj.weight`), H, I, act, opt(`${p}mlp.down_proj.bias`));
      next.push(x1.map((v, i) => v + down[i]));
    }
    xs = next;
  }
  const head = cfg.tie_word_embeddings ? t('model.embed_tokens.weight') : t('lm_head.weight');
  return xs.map((x) => matVec(head, V, H, rmsNorm(x, t('model.norm.weight'), eps)));
}
