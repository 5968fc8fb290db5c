// k-th largest of a[0..n) by quickselect (in place, O(n) expected, no allocation). Used for TopK and Quest budgets.
export function kthLargest(a: Float32Array, n: number, k: number): number {
  let lo = 0, hi = n - 1;
  const target = k - 1; // index of the k-th largest in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

const GAPS = [1750, 701, 301, 132, 57, 23, 10, 4, 1]; // Ciura's shell sort gaps
/** Sort a[lo..hi) ascending in place (shell sort: no allocation, fast for the few thousand ids of one step). */
export function sortRange(a: Int32Array, lo: number, hi: number): void {
  for (const gap of GAPS) {
    for (let i = lo + gap; i < hi; i++) {
      const x = a[i];
      let j = i;
      for (; j - gap >= lo && a[j - gap] > x; j -= gap) a[j] = a[j - gap];
      a[j] = x;
    }
  }
}

/**
 * Sort a[lo..hi) ascending (non-negative ints) by LSD radix, 11 bits per pass (two passes below 4M, three below 8G),
 * through `tmp` (≥ hi − lo entries) and `count` (≥ 2048 entries). O(n) with no allocation: ~5× the shell sort at the
 * ~1000 sampled ids of a 64K step.
 */
export function radixSort(a: Int32Array, lo: number, hi: number, tmp: Int32Array, count: Int32Array): void {
  const n = hi - lo;
  if (n < 64) return sortRange(a, lo, hi);
  let max = 0;
  for (let i = lo; i < hi; i++) if (a[i] > max) max = a[i];
  let src = a, srcOff = lo, dst = tmp, dstOff = 0;
  for (let shift = 0; shift === 0 || max >>> shift > 0; shift += 11) {
    count.fill(0, 0, 2048);
    for (let i = 0; i < n; i++) count[(src[srcOff + i] >>> shift) & 2047]++;
    let sum = 0;
    for (let b = 0; b < 2048; b++) { const c = count[b]; count[b] = sum; sum += c; }
    for (let i = 0; i < n; i++) { const v = src[srcOff + i]; dst[dstOff + count[(v >>> shift) & 2047]++] = v; }
    const s = src, so = srcOff;
    src = dst; srcOff = dstOff; dst = s; dstOff = so;
  }
  if (src !== a) for (let i = 0; i < n; i++) a[lo + i] = src[i];
}
