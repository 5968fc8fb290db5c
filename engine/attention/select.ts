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
