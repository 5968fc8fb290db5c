// The environment the engine process should start with (glibc reads GLIBC_TUNABLES once, at process start; elsewhere
// it is inert):
// - mmap_threshold: glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, after which
//   onnxruntime's load-time buffers (a model file's bytes, initializers it replaces with prepacked copies) come from
//   the heap and stay resident once freed: a packed 1.5B model then holds several hundred MB more than its weights
//   (bench-results/peer.md). A fixed threshold keeps large blocks in mmap, returned to the system when freed. It is
//   16 MB, not lower: below it are a prompt chunk's activations (large models run without onnxruntime's arena), which
//   at 128 KB were mmap'd, faulted in and unmapped again on every graph call, a third of a 1.5B prefill in page faults
//   (bench-results/prefill-bf16.md).
// - trim_threshold: up to 64 MB free at the top of the heap stays there for the next chunk instead of being returned
//   and faulted in again (with the threshold set, glibc no longer adjusts it itself).
// - hugetlb=1: mmap'd blocks are madvise(MADV_HUGEPAGE)d, so where transparent huge pages are in "madvise" mode
//   (Debian's default) a large buffer is faulted in 2 MB at a time instead of 4 KB. Touching fresh memory is what
//   model loads and KV-cache restores spend most of their time on (bench-results/hugepages.md).
const TUNABLES = ['glibc.malloc.mmap_threshold=16777216', 'glibc.malloc.trim_threshold=67108864', 'glibc.malloc.hugetlb=1'];

export function engineEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES ?? '';
  // A tunable the user set explicitly (any value) is kept as it is.
  const missing = TUNABLES.filter((t) => !current.includes(t.slice(0, t.indexOf('=') + 1)));
  if (missing.length === 0) return env;
  return { ...env, GLIBC_TUNABLES: [current, ...missing].filter(Boolean).join(':') };
}
