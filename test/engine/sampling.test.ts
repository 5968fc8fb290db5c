// Sampling statistics against the exact softmax/nucleus distribution, and the stop-string matcher across pieces.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sampler, argmax } from '../../engine/generate/sampling';
import { StopMatcher } from '../../engine/generate/text-stream';

const logits = Float32Array.from([0.5, 3, 2, 1, -1, 2.5]);
const softmax = (xs: ArrayLike<number>, t: number) => {
  const e = Array.from(xs, (x) => Math.exp(x / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
};
const frequencies = (s: Sampler, draws: number, V: number) => {
  const f = new Array(V).fill(0);
  for (let i = 0; i < draws; i++) f[s.next(logits)]++;
  return f.map((x) => x / draws);
};

describe('sampling', () => {
  it('greedy is argmax (first index on ties)', () => {
    assert.equal(new Sampler({ temperature: 0, topP: 1, seed: 1 }).next(logits), 1);
    assert.equal(argmax(Float32Array.from([1, 5, 5, 2])), 1);
  });

  it('temperature sampling follows softmax(logits / T)', () => {
    for (const t of [0.7, 1.5]) {
      const f = frequencies(new Sampler({ temperature: t, topP: 1, seed: 42 }), 20000, logits.length);
      const p = softmax(logits, t);
      // 20000 draws: standard error <= 0.0036; allow 4 sigma.
      p.forEach((pi, i) => assert.ok(Math.abs(f[i] - pi) < 0.015, `T=${t} id ${i}: ${f[i]} vs ${pi}`));
    }
  });

  it('top-p samples only the nucleus, renormalised', () => {
    const p = softmax(logits, 1);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
    // Smallest set of top tokens whose mass reaches 0.8.
    const nucleus: number[] = [];
    let mass = 0;
    for (const i of order) { if (mass >= 0.8) break; nucleus.push(i); mass += p[i]; }
    const f = frequencies(new Sampler({ temperature: 1, topP: 0.8, seed: 9 }), 20000, logits.length);
    for (let i = 0; i < logits.length; i++) {
      const expected = nucleus.includes(i) ? p[i] / mass : 0;
      assert.ok(Math.abs(f[i] - expected) < 0.015, `id ${i}: ${f[i]} vs ${expected}`);
    }
  });

  it('top-p over a large flat tail (nucleus reaches far below the top token)', () => {
    const V = 20_001;
    const big = Float32Array.from({ length: V }, (_, i) => (i === 0 ? 10 : 0));
    const e10 = Math.exp(10);
    const z = e10 + (V - 1);
    // Nucleus: token 0 then tail tokens in id order (ties) until the mass reaches 0.9.
    const tailCount = Math.ceil((0.9 * z - e10) / 1);
    const mass = (e10 + tailCount) / z;
    const s = new Sampler({ temperature: 1, topP: 0.9, seed: 11 });
    let top = 0;
    const draws = 400;
    for (let i = 0; i < draws; i++) {
      const id = s.next(big);
      if (id === 0) top++;
      else assert.ok(id <= tailCount, `id ${id} outside the nucleus (tail ${tailCount})`);
    }
    const expected = e10 / z / mass;
    // 400 draws of p ≈ 0.58: standard error 0.025.
    assert.ok(Math.abs(top / draws - expected) < 0.08, `${top / draws} vs ${expected}`);
  });

  it('the same seed gives the same draws', () => {
    const a = frequencies(new Sampler({ temperature: 1, topP: 0.9, seed: 5 }), 50, logits.length);
    const b = frequencies(new Sampler({ temperature: 1, topP: 0.9, seed: 5 }), 50, logits.length);
    assert.deepEqual(a, b);
  });
});

describe('stop strings', () => {
  it('holds back a possible stop prefix across pieces and cuts at the stop', () => {
    const m = new StopMatcher(['\n\n', 'END']);
    assert.equal(m.push('abc\n'), 'abc');
    assert.equal(m.push('x E'), '\nx ');
    assert.equal(m.push('N'), '');
    assert.equal(m.push('Dtail'), '');
    assert.ok(m.stopped);
    assert.equal(m.flush(), '');
  });

  it('releases held text that never became a stop string', () => {
    const m = new StopMatcher(['END']);
    assert.equal(m.push('the EN'), 'the ');
    assert.equal(m.flush(), 'EN');
    assert.equal(m.stopped, false);
  });
});
