// The MagicPIG tests again through the TypeScript kernels (WebAssembly SIMD off), so the fallback used for bfloat16,
// head dims not divisible by 8 and runtimes without SIMD is held to the same references.
process.env.SNOUT_NO_WASM = '1';
require('./magicpig.test');
