// The environment the engine process should start with. glibc raises its mmap threshold (up to 32 MB) each time a
// large block is freed, after which onnxruntime's load-time buffers (a model file's bytes, initializers it replaces
// with prepacked copies) come from the heap and stay resident once freed: a packed 1.5B model then holds several
// hundred MB more than its weights (bench-results/peer.md). A fixed threshold keeps large blocks in mmap, returned to
// the system when freed. Only glibc reads GLIBC_TUNABLES; elsewhere it is inert.
const TUNABLE = 'glibc.malloc.mmap_threshold=131072';

export function engineEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES;
  if (current?.includes('glibc.malloc.mmap_threshold')) return env;
  return { ...env, GLIBC_TUNABLES: current ? `${current}:${TUNABLE}` : TUNABLE };
}
