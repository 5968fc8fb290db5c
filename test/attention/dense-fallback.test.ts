// The dense tests again through the TypeScript kernels (WebAssembly SIMD off): the float64-accumulating path used for
// bfloat16, head dims not divisible by 8 and runtimes without SIMD.
process.env.SNOUT_NO_WASM = '1';
require('./dense.test');
