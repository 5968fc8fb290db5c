// The TopK / Quest budget's selection against the built-in sort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kthLargest } from '../../engine/attention/select';
import { rng } from './data';

test('kthLargest returns the k-th largest value', () => {
  const rand = rng(8);
  for (let t = 0; t < 50; t++) {
    const n = 1 + Math.floor(rand() * 500), k = 1 + Math.floor(rand() * n);
    const a = Float32Array.from({ length: n }, () => Math.round(rand() * 50)); // ties on purpose
    const want = [...a].sort((x, y) => y - x)[k - 1];
    assert.equal(kthLargest(a.slice(), n, k), want);
  }
});
