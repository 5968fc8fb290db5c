// Key hashing as an ONNX graph on the selected execution provider (spec §3): codes = Σ_b [X·W > 0]_b · 2^b per table.
// X [n, d] float32 → MatMul W [d, K·L] → Greater 0 → Cast int32 → Reshape [n, L, K] → Mul 2^b → ReduceSum → [n, L].
// One session per (d, K, L, seed, provider), cached for the process.
import { GraphBuilder, attr } from '../runtime/onnx-graph';
import { createSession, ort, type ProviderSetting } from '../runtime/session';
import type { SimHash } from './simhash';

export function buildHashGraph(h: SimHash): Uint8Array {
  const g = new GraphBuilder('simhash');
  const x = g.input('x', 'float32', ['n', h.d]);
  const w = g.initializer('W', h.W, [h.d, h.K * h.L]);
  const proj = g.op('MatMul', [x, w]);
  const bits = g.op('Cast', [g.op('Greater', [proj, g.float('zero', 0)])], { to: attr.i(6) }); // 6 = INT32
  const shaped = g.op('Reshape', [bits, g.int64s('shape', [0, h.L, h.K])]);
  const pow2 = g.initializer('pow2', Int32Array.from({ length: h.K }, (_, b) => 1 << b), [h.K]);
  const weighted = g.op('Mul', [shaped, pow2]);
  const codes = g.op('ReduceSum', [weighted, g.int64s('axes', [2])], { keepdims: attr.i(0) });
  g.output(codes, 'codes', 'int32', ['n', h.L]);
  return g.serialize({ opset: 18 });
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();
/** Provider each setting resolved to (so a second graph on 'auto' does not retry and re-log a failed GPU). */
const resolved = new Map<ProviderSetting, ProviderSetting>();

export class KeyHashGraph {
  private constructor(private readonly session: ort.InferenceSession, readonly L: number, readonly d: number) {}

  /**
   * threads: intra-op threads (0 = one per physical core, session.ts). The per-step query hash uses 1: a [heads, d]·W product is
   * too small to split, and an idle pool's spinning threads would take CPU from the attention kernels.
   */
  static async create(h: SimHash, provider: ProviderSetting = 'auto', threads = 0): Promise<KeyHashGraph> {
    const setting = resolved.get(provider) ?? provider;
    const key = `${h.d}/${h.K}/${h.L}/${h.seed}/${setting}/${threads}`;
    let s = sessions.get(key);
    if (!s) {
      s = createSession(buildHashGraph(h), setting, { threads }).then((c) => {
        resolved.set(provider, c.provider);
        return c.session;
      });
      sessions.set(key, s);
    }
    return new KeyHashGraph(await s, h.L, h.d);
  }

  /** Codes [n, L] (int32) of the n rows of x [n, d]. */
  async hash(x: Float32Array, n: number): Promise<Int32Array> {
    const input = new ort.Tensor('float32', x.subarray(0, n * this.d), [n, this.d]);
    const result = await this.session.run({ x: input });
    return result.codes.data as Int32Array;
  }
}
