// The engine's one seeded PRNG family, so a seed means the same stream everywhere (sampling, SimHash's W, eval item
// picks, bench data). mulberry32: 32-bit state, public domain; good enough for sampling and synthetic data.

/** Uniforms in [0, 1) from mulberry32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normals: Box–Muller over mulberry32 uniforms, both outputs used in order. */
export function gaussianStream(seed: number): () => number {
  const uniform = mulberry32(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) { const s = spare; spare = null; return s; }
    const u = Math.max(uniform(), 1e-300), v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}
