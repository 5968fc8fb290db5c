// ONNX graph builder + sessions: a built graph runs and computes what it says; provider fallback logs one line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, attr } from '../../engine/runtime/onnx-graph';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createSession, ort, providerCandidates } from '../../engine/runtime/session';

function affineGraph(): Uint8Array {
  // y = x · Wᵀ + b ; s = sum over the last axis of y (dynamic batch 'n').
  const g = new GraphBuilder('affine');
  g.input('x', 'float32', ['n', 3]);
  const w = g.initializer('w', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const b = g.initializer('b', Float32Array.from([0.5, -1]), [2]);
  const y = g.op('Gemm', ['x', w, b], { transB: attr.i(1) });
  g.output(y, 'y', 'float32', ['n', 2]);
  g.output(g.op('ReduceSum', [y, g.int64s('axes', [-1])], { keepdims: attr.i(0) }), 's', 'float32', ['n']);
  return g.serialize({ opset: 17 });
}

describe('runtime', () => {
  it('a built graph computes x·Wᵀ + b for any n', async () => {
    const { session, provider } = await createSession(affineGraph(), 'cpu');
    assert.equal(provider, 'cpu');
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 0, 0, 1, 1, 1]), [2, 3]) });
    assert.deepEqual(Array.from(out.y.data as Float32Array), [1.5, 3, 6.5, 14]);
    assert.deepEqual(Array.from(out.s.data as Float32Array), [4.5, 20.5]);
    await session.release();
  });

  it('rejects IR > 10 and opsets outside 17..21', () => {
    const g = new GraphBuilder('x');
    assert.throws(() => g.serialize({ irVersion: 11 }));
    assert.throws(() => g.serialize({ opset: 16 }));
  });

  it('an unavailable GPU provider falls back to cpu with exactly one log line', async () => {
    for (const setting of ['webgpu', 'cuda'] as const) {
      const lines: string[] = [];
      const { session, provider } = await createSession(affineGraph(), setting, { log: (l) => lines.push(l) });
      if (provider === 'cpu') {
        assert.equal(lines.length, 1);
        assert.match(lines[0], new RegExp(`"${setting}" unavailable .*using cpu`));
      } else {
        assert.equal(provider, setting);
        assert.equal(lines.length, 0);
      }
      await session.release();
    }
  });

  it('auto tries cuda only where its provider library is installed (never from a VSIX): no fallback line on start', async () => {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
    const cudaInstalled = readdirSync(bin).some((f) => f.includes('onnxruntime_providers_cuda'));
    assert.equal(providerCandidates('auto').includes('cuda'), cudaInstalled);
    if (!cudaInstalled) {
      const lines: string[] = [];
      const { session, provider } = await createSession(affineGraph(), 'auto', { log: (l) => lines.push(l) });
      assert.deepEqual([provider, lines], ['cpu', []]);
      await session.release();
    }
  });
});
