// Key hashing as an ONNX graph on the selected execution provider (spec §3): codes = Σ_b [X·W > 0]_b · 2^b per table.
// X [n, d] float32 → MatMul W [d, K·L] → Greater 0 → Cast int32 → Reshape [n, L, K] → Mul 2^b → ReduceSum → [n, L]
// (addSimHashNodes, which the layer graphs use for the decode step's query too).
// One session per (d, K, L, seed, provider), cached for the process.
import { GraphBuilder, attr } from '../runtime/onnx-graph';
import { createSession, ort, type ProviderSetting } from '../runtime/session';
import type { SimHash } from './simhash';

/** What the SimHash nodes need: W [d, K·L] row-major (SimHash.W) and the code shape. */
export interface SimHashWeights {
  readonly W: Float32Array;
  readonly d: number;
  readonly K: number;
  readonly L: number;
}

/**
 * Appends the SimHash of x [r, d] to g: MatMul W → Greater 0 → Cast int32 → Reshape [r, L, K] → Mul 2^b → ReduceSum
 * over b. Returns the [r, L] int32 codes. Shared by the key-hash graph below and the layer graphs' query hash
 * (engine/model/graphs.ts), so both compute the same product the same way.
 */
export function addSimHashNodes(g: GraphBuilder, x: string, h: SimHashWeights, stem: string, out?: string): string {
  const w = g.initializer(`${stem}_W`, h.W, [h.d, h.K * h.L]);
  const proj = g.op('MatMul', [x, w]);
  const bits = g.op('Cast', [g.op('Greater', [proj, g.float(`${stem}_zero`, 0)])], { to: attr.i(6) }); // 6 = INT32
  // [r, K·L] → [r, L, K]: 0 copies r, which may be 0 (a layer graph hashing no row).
  const shaped = g.op('Reshape', [bits, g.int64s(`${stem}_shape`, [0, h.L, h.K])]);
  const pow2 = g.initializer(`${stem}_pow2`, Int32Array.from({ length: h.K }, (_, b) => 1 << b), [h.K]);
  const weighted = g.op('Mul', [shaped, pow2]);
  return g.node('ReduceSum', [weighted, g.int64s(`${stem}_axes`, [2])], { attrs: { keepdims: attr.i(0) }, outputs: out ? [out] : 1, name: stem })[0];
}

export function buildHashGraph(h: SimHash): Uint8Array {
  const g = new GraphBuilder('simhash');
  const x = g.input('x', 'float32', ['n', h.d]);
  g.output(addSimHashNodes(g, x, h, 'hash', 'codes'), 'codes', 'int32', ['n', h.L]);
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
