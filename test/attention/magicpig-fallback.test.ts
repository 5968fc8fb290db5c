// The MagicPIG and retrieval tests again through the TypeScript kernels (WebAssembly off), so the fallback used for
// head dims not divisible by 8 and runtimes without WebAssembly SIMD is held to the same references.
process.env.SNOUT_NO_WASM = '1';
require('./magicpig.test');
require('./lsh.test');
