// onnxruntime's saved prepacked weights (engine/model/prepacked.ts): a graph of several small MatMulNBits saved by a
// session, re-laid and loaded again computes what the plain graph computes, bit for bit; a saved graph whose data
// file is cut short or missing is refused before a session maps it; a save that computes other numbers is not kept.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { quantizeRtn, type QuantBits } from '../../engine/model/quant';
import { PREPACKED_ALIGNMENT, checkGraphFile, openSavingPrepacked, realignExternalData } from '../../engine/model/prepacked';
import { GraphBuilder, attr } from '../../engine/runtime/onnx-graph';
import { createSession, ort, type SessionOptions } from '../../engine/runtime/session';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-prepacked-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** x → MatMulNBits → ×0.05 → MatMulNBits → …: matrices [N, K] of one format, weights from `seed`. */
function chain(mats: [number, number][], bits: QuantBits, seed: number): Uint8Array {
  let s = seed;
  const rnd = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32 - 0.5; };
  const g = new GraphBuilder('chain');
  let x = g.input('x', 'float32', ['m', mats[0][1]]);
  mats.forEach(([N, K], i) => {
    const w = quantizeRtn(Float32Array.from({ length: N * K }, rnd), N, K, bits, 32);
    const inputs = [x, g.initializer(`w${i}_q`, w.data, [N, K / 32, (32 * bits) / 8], 'uint8'), g.initializer(`w${i}_s`, w.scales, [N * (K / 32)])];
    if (w.zeroPoints) inputs.push(g.initializer(`w${i}_z`, w.zeroPoints, [w.zeroPoints.length], 'uint8'));
    x = g.node('MatMulNBits', inputs, {
      domain: 'com.microsoft', name: `mm${i}`,
      attrs: { K: attr.i(K), N: attr.i(N), bits: attr.i(bits), block_size: attr.i(32), accuracy_level: attr.i(4) },
    })[0];
    if (i + 1 < mats.length) x = g.op('Mul', [x, g.float(`scale${i}`, 0.05)]);
  });
  g.output(x, 'y', 'float32', ['m', mats[mats.length - 1][0]]);
  return g.serialize();
}

const options = { threads: 1, large: true, log: () => {} };
const open = (graph: Uint8Array | string, savePrepacked?: SessionOptions['savePrepacked']) => createSession(graph, 'cpu', { ...options, savePrepacked });

async function outputOf(session: ort.InferenceSession, K: number, rows: number): Promise<Float32Array> {
  const x = Float32Array.from({ length: rows * K }, (_, i) => Math.sin(i * 0.37));
  return (await session.run({ x: new ort.Tensor('float32', x, [rows, K]) })).y.data as Float32Array;
}

/** Every external piece's offset in a saved model (initializers' and prepacked blobs'). */
function offsets(file: string): number[] {
  const m = onnx.ModelProto.decode(readFileSync(file));
  const out: number[] = [];
  for (const t of m.graph!.initializer!) {
    for (const e of t.externalData ?? []) {
      if (e.key === 'offset') out.push(Number(e.value));
      if (e.key!.startsWith('prepacked_')) out.push(...e.value!.split('|').slice(1).map((b) => Number(b.split(';')[0])));
    }
  }
  return out;
}

describe('saved prepacked weights (prepacked.ts)', () => {
  // Small matrices (under onnxruntime's 1 MB alignment threshold), several per graph: the case its own save gets wrong.
  for (const [bits, mats] of [[8, [[768, 256], [256, 768], [300, 256]]], [4, [[192, 64], [64, 192]]]] as const) {
    it(`${bits}-bit, ${mats.length} small matrices: saved, re-laid and reloaded, the graph computes the plain graph's outputs bit for bit`, async () => {
      const dir = mkdtempSync(path.join(root, 'chain-'));
      const bytes = chain(mats as unknown as [number, number][], bits, 7 + bits);
      const K = mats[0][1];
      const plain = (await open(bytes)).session;
      const { created, saved } = await openSavingPrepacked(bytes, dir, 'g', open, () => {});
      assert.equal(saved, true);
      const again = (await open(path.join(dir, 'g.onnx'))).session;
      for (const rows of [1, 5]) {
        const want = await outputOf(plain, K, rows);
        assert.deepEqual(await outputOf(created.session, K, rows), want);
        assert.deepEqual(await outputOf(again, K, rows), want);
      }
      const offs = offsets(path.join(dir, 'g.onnx'));
      assert.ok(offs.length >= 2 * mats.length, `initializers and blobs: ${offs}`);
      assert.ok(offs.every((o) => o % PREPACKED_ALIGNMENT === 0), `offsets ${offs}`);
      // The resident bytes counted: the blobs and the plain tensors, not the packed matrices' originals.
      const size = checkGraphFile(path.join(dir, 'g.onnx'));
      assert.ok(size > 0 && size < statSync(path.join(dir, 'g.onnx')).size + 2 * bytes.length, String(size));
      await Promise.all([plain.release(), created.session.release(), again.release()]);
    });
  }

  it('re-laying keeps every piece\'s bytes (a realigned copy of a realigned save is byte-identical to it)', async () => {
    const dir = mkdtempSync(path.join(root, 'twice-'));
    await openSavingPrepacked(chain([[256, 256], [256, 256]], 8, 3), dir, 'g', open, () => {});
    const [data] = onnx.ModelProto.decode(readFileSync(path.join(dir, 'g.onnx'))).graph!.initializer![0].externalData!.filter((e) => e.key === 'location');
    realignExternalData(path.join(dir, 'g.onnx'), path.join(dir, 'h.onnx'), path.join(dir, 'h.data'));
    assert.deepEqual(readFileSync(path.join(dir, 'h.data')), readFileSync(path.join(dir, data.value!)));
    assert.deepEqual(offsets(path.join(dir, 'h.onnx')), offsets(path.join(dir, 'g.onnx')));
  });

  it('a data file cut short or missing is refused before a session maps it', async () => {
    const dir = mkdtempSync(path.join(root, 'cut-'));
    await openSavingPrepacked(chain([[512, 256]], 8, 5), dir, 'g', open, () => {});
    const file = path.join(dir, 'g.onnx');
    const data = path.join(dir, onnx.ModelProto.decode(readFileSync(file)).graph!.initializer![0].externalData!.find((e) => e.key === 'location')!.value!);
    checkGraphFile(file);
    truncateSync(data, statSync(data).size - 1);
    assert.throws(() => checkGraphFile(file), /g\.onnx: its data file is truncated/);
    rmSync(data);
    assert.throws(() => checkGraphFile(file), /g\.onnx: its data file .* is missing/);
  });

  it('a saved graph that computes other numbers than the saving session is not kept (logged; the saving session is used)', async () => {
    const dir = mkdtempSync(path.join(root, 'differs-'));
    const bytes = chain([[256, 256]], 8, 11), other = chain([[256, 256]], 8, 12);
    // Reloading the saved file gives a session of another graph: the check must catch it.
    const lying = (graph: Uint8Array | string, save?: SessionOptions['savePrepacked']) => open(typeof graph === 'string' ? other : graph, save);
    const lines: string[] = [];
    const { created, saved } = await openSavingPrepacked(bytes, dir, 'g', lying, (l) => lines.push(l));
    assert.equal(saved, false);
    assert.match(lines.join('\n'), /saved prepacked weights of g give other outputs/);
    const plain = (await open(bytes)).session;
    assert.deepEqual(await outputOf(created.session, 256, 2), await outputOf(plain, 256, 2));
    assert.throws(() => statSync(path.join(dir, 'g.onnx')), /ENOENT/, 'nothing of the save is left');
    await Promise.all([plain.release(), created.session.release()]);
  });

  it('a plain graph file (weights inline) passes the check as its own size', () => {
    const file = path.join(root, 'plain.onnx');
    writeFileSync(file, chain([[64, 64]], 8, 1));
    assert.equal(checkGraphFile(file), statSync(file).size);
  });
});
