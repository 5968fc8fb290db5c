// Python difflib.SequenceMatcher's matching, reproduced exactly (isjunk = None, autojunk = True), because RepoBench's
// Edit Similarity and LongBench's code_sim are fuzzywuzzy's fuzz.ratio, which is difflib's ratio() when
// python-Levenshtein is absent. Sequences are arrays of Unicode code points (what a Python str indexes), not UTF-16.

export interface MatchBlock {
  /** Start in a. */
  i: number;
  /** Start in b. */
  j: number;
  /** Length. */
  size: number;
}

/** Code points of a string, as Python's str sees them. */
export function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

export class SequenceMatcher {
  private readonly b2j = new Map<number, number[]>();

  constructor(readonly a: readonly number[], readonly b: readonly number[]) {
    // difflib.__chain_b: index b's elements, then drop the "popular" ones (autojunk): for len(b) >= 200, an element
    // occurring more than len(b) // 100 + 1 times is never used to start a match (it can still extend one).
    b.forEach((elt, j) => {
      const list = this.b2j.get(elt);
      if (list) list.push(j);
      else this.b2j.set(elt, [j]);
    });
    const n = b.length;
    if (n >= 200) {
      const ntest = Math.floor(n / 100) + 1;
      for (const [elt, idxs] of [...this.b2j]) if (idxs.length > ntest) this.b2j.delete(elt);
    }
  }

  /** Longest matching block in a[alo:ahi] and b[blo:bhi]; ties go to the earliest in a, then in b (difflib). */
  findLongestMatch(alo: number, ahi: number, blo: number, bhi: number): MatchBlock {
    const { a, b } = this;
    let besti = alo, bestj = blo, bestsize = 0;
    // j2len[j] = length of the longest match ending at a[i-1] and b[j].
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      const js = this.b2j.get(a[i]);
      if (js) {
        for (const j of js) {
          if (j < blo) continue;
          if (j >= bhi) break;
          const k = (j2len.get(j - 1) ?? 0) + 1;
          next.set(j, k);
          if (k > bestsize) { besti = i - k + 1; bestj = j - k + 1; bestsize = k; }
        }
      }
      j2len = next;
    }
    // Extend by equal elements on both ends (there is no junk with isjunk = None, but popular elements may extend).
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) { besti--; bestj--; bestsize++; }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) bestsize++;
    return { i: besti, j: bestj, size: bestsize };
  }

  /** Non-overlapping matching blocks in increasing order, adjacent blocks merged (without difflib's final sentinel). */
  getMatchingBlocks(): MatchBlock[] {
    const la = this.a.length, lb = this.b.length;
    // difflib uses a LIFO queue; the resulting set of blocks does not depend on the order, only on the recursion.
    const queue: Array<[number, number, number, number]> = [[0, la, 0, lb]];
    const blocks: MatchBlock[] = [];
    while (queue.length) {
      const [alo, ahi, blo, bhi] = queue.pop()!;
      const m = this.findLongestMatch(alo, ahi, blo, bhi);
      if (m.size) {
        blocks.push(m);
        if (alo < m.i && blo < m.j) queue.push([alo, m.i, blo, m.j]);
        if (m.i + m.size < ahi && m.j + m.size < bhi) queue.push([m.i + m.size, ahi, m.j + m.size, bhi]);
      }
    }
    blocks.sort((x, y) => x.i - y.i || x.j - y.j || x.size - y.size);
    const merged: MatchBlock[] = [];
    for (const m of blocks) {
      const last = merged[merged.length - 1];
      if (last && last.i + last.size === m.i && last.j + last.size === m.j) last.size += m.size;
      else merged.push({ ...m });
    }
    return merged;
  }

  /** Number of matched elements M. */
  matches(): number {
    return this.getMatchingBlocks().reduce((s, m) => s + m.size, 0);
  }

  /** difflib ratio(): 2M / (|a| + |b|), 1 when both are empty. */
  ratio(): number {
    const total = this.a.length + this.b.length;
    return total ? (2.0 * this.matches()) / total : 1.0;
  }
}
