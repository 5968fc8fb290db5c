// snout bench folds [--n 4k,32k,128k] [--folds F] [--K k] [--L l] [--json]
// Question: what does a keystroke that moves a block of context into the MagicPIG index cost in the tables, against
// building them again (what a fold cost before the tables had room, lsh-tables.ts)? One layer's one KV head: a table
// set of n keys, then F folds of 256 keys (the block size), each of fresh random codes; between folds, a cold build
// of the same keys, so both are measured in turn on the same machine state. fold_mean_ms includes the regrows (a
// regrow copies everything into a new memory once per ~n/8 keys); ratio = rebuild_ms / fold_mean_ms.
import { LshTables } from '../engine/attention/lsh-tables';
import { mulberry32 } from '../engine/random';
import { arg, sizes } from './args';

const BLOCK = 256;

interface Row { n: number; folds: number; fold_median_ms: number; fold_mean_ms: number; fold_max_ms: number; regrows: number; rebuild_ms: number; ratio: number }

function codes(n: number, L: number, B: number, rand: () => number): Uint16Array {
  const c = new Uint16Array(n * L);
  for (let i = 0; i < c.length; i++) c[i] = Math.floor(rand() * B);
  return c;
}

function measure(n: number, folds: number, K: number, L: number): Row {
  const B = 1 << K, rand = mulberry32(n);
  const all = codes(n + folds * BLOCK, L, B, rand);
  const t = new LshTables(K, L, 4);
  t.fold(all.subarray(0, n * L), n);
  const times: number[] = [], rebuilds: number[] = [];
  for (let f = 0; f < folds; f++) {
    const at = n + f * BLOCK;
    let t0 = performance.now();
    t.fold(all.subarray(at * L, (at + BLOCK) * L), BLOCK);
    times.push(performance.now() - t0);
    if (f % Math.max(1, Math.floor(folds / 4)) === 0) { // a few cold builds of the same keys, in turn with the folds
      t0 = performance.now();
      new LshTables(K, L, 4).fold(all.subarray(0, (at + BLOCK) * L), at + BLOCK);
      rebuilds.push(performance.now() - t0);
    }
  }
  const sorted = [...times].sort((a, b) => a - b), mean = times.reduce((a, b) => a + b, 0) / folds;
  const rebuild = [...rebuilds].sort((a, b) => a - b)[rebuilds.length >> 1];
  return {
    n, folds, fold_median_ms: sorted[folds >> 1], fold_mean_ms: mean, fold_max_ms: sorted[folds - 1],
    regrows: t.foldStats.regrows - 1, rebuild_ms: rebuild, ratio: rebuild / mean,
  };
}

export async function run(argv: string[]): Promise<number> {
  const K = Number(arg(argv, '--K') ?? 10), L = Number(arg(argv, '--L') ?? 150);
  const folds = Number(arg(argv, '--folds') ?? 64);
  const rows = sizes(arg(argv, '--n') ?? '4k,32k,128k').map((n) => {
    const r = measure(n, folds, K, L);
    process.stderr.write(`n=${n}: fold ${r.fold_median_ms.toFixed(2)} ms median, ${r.fold_mean_ms.toFixed(2)} mean, rebuild ${r.rebuild_ms.toFixed(1)} ms\n`);
    return r;
  });
  if (argv.includes('--json')) {
    process.stdout.write(JSON.stringify({ bench: 'folds', K, L, block: BLOCK, results: rows }, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(`index folds of ${BLOCK} keys, one table set (K ${K}, L ${L}), ${folds} folds each\n`);
  process.stdout.write(' keys   fold median   fold mean   fold max  regrows   rebuild   rebuild / fold\n');
  for (const r of rows) {
    process.stdout.write(`${String(r.n).padStart(6)} ${r.fold_median_ms.toFixed(2).padStart(10)} ms ${r.fold_mean_ms.toFixed(2).padStart(8)} ms ${r.fold_max_ms.toFixed(1).padStart(7)} ms ${String(r.regrows).padStart(6)} ${r.rebuild_ms.toFixed(1).padStart(8)} ms ${r.ratio.toFixed(1).padStart(10)}×\n`);
  }
  return 0;
}
