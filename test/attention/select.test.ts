// Selection and sorting helpers of the decode step against the built-in sort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kthLargest, radixSort, sortRange } from '../../engine/attention/select';
import { rng } from './reference';

test('radixSort and sortRange sort a sub-range in place (ids up to 2^30), leaving the rest untouched', () => {
  const rand = rng(4), tmp = new Int32Array(4000), count = new Int32Array(2048);
  for (let t = 0; t < 60; t++) {
    const n = Math.floor(rand() * 3000), range = [70_000, 5_000_000, 1 << 30][t % 3];
    const a = Int32Array.from({ length: n + 10 }, () => Math.floor(rand() * range));
    const want = [...a.subarray(5, n + 5)].sort((x, y) => x - y);
    const b = a.slice();
    radixSort(a, 5, n + 5, tmp, count);
    sortRange(b, 5, n + 5);
    assert.deepEqual([...a.subarray(5, n + 5)], want);
    assert.deepEqual([...b.subarray(5, n + 5)], want);
    assert.deepEqual([...a.subarray(0, 5), ...a.subarray(n + 5)], [...b.subarray(0, 5), ...b.subarray(n + 5)]);
  }
});

test('kthLargest returns the k-th largest value', () => {
  const rand = rng(8);
  for (let t = 0; t < 50; t++) {
    const n = 1 + Math.floor(rand() * 500), k = 1 + Math.floor(rand() * n);
    const a = Float32Array.from({ length: n }, () => Math.round(rand() * 50)); // ties on purpose
    const want = [...a].sort((x, y) => y - x)[k - 1];
    assert.equal(kthLargest(a.slice(), n, k), want);
  }
});
