// snout bench wake [--n 16k] [--layers 4] [--steps 64] [--rounds 6] [--gap-ms 2] [--json]
// Question: what does handing a decode step's half to the attention worker cost when the worker has been asleep
// (the layer graphs run between two steps), and how much of it does polling save (worker-pool.ts: the caller polls
// for the workers' half, a worker woken ahead of a job by prewake() polls for it)? A Sequence with the 1.5B shape's
// heads (12 query / 2 KV, d = 128, bfloat16 K/V), n random keys per layer, MagicPIG on every layer with 2 threads,
// steps through forwardAsync (the query-hash graph, as the engine runs them); between layers the calling thread is
// busy for --gap-ms (standing in for the layer graphs, during which the worker sleeps). Polling on and off take turns
// by round (the first round warms up). Reported: attention ms per layer-step (the gap left out), medians by setting.
import { Sequence } from '../engine/attention/sequence';
import { attentionPool } from '../engine/attention/worker-pool';
import { defaultAttentionConfig, type AttentionConfig } from '../engine/attention/types';
import { UserError } from '../engine/errors';
import { gaussianStream } from '../engine/random';
import { arg, sizes } from './args';

const H = 12, G = 2, D = 128;

export async function run(argv: string[]): Promise<number> {
  const n = sizes(arg(argv, '--n') ?? '16k')[0];
  const layers = Number(arg(argv, '--layers') ?? 4), steps = Number(arg(argv, '--steps') ?? 64);
  const rounds = Number(arg(argv, '--rounds') ?? 6), gapMs = Number(arg(argv, '--gap-ms') ?? 2);
  if (![n, layers, steps, rounds].every((x) => Number.isInteger(x) && x > 0) || !(gapMs >= 0)) {
    throw new UserError('bench wake: --n, --layers, --steps, --rounds must be positive integers, --gap-ms >= 0');
  }
  const json = argv.includes('--json');
  const say = (s: string) => process.stderr.write(s + '\n');
  const config: AttentionConfig = { ...defaultAttentionConfig(layers), method: 'magicpig', denseLayers: [], kvDtype: 'bfloat16', threads: 2 };
  const seq = new Sequence({ numLayers: layers, numHeads: H, numKvHeads: G, headDim: D }, config);
  const next = gaussianStream(7);
  const fill = (len: number) => Float32Array.from({ length: len }, () => next());
  say(`wake: filling ${layers} layers with ${n} keys`);
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < n; s += 4096) {
      const m = Math.min(4096, n - s);
      seq.cache(l).append(fill(m * G * D), fill(m * G * D), m);
    }
  }
  seq.endPrefill();
  await seq.prepare();
  const q = fill(H * D), k = fill(G * D), v = fill(G * D), out = new Float32Array(H * D);
  const busy = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until) { /* the layer graphs */ } };
  const results: Record<'on' | 'off', number[]> = { on: [], off: [] };
  for (let r = 0; r < rounds; r++) {
    for (const setting of (r % 2 ? ['off', 'on'] : ['on', 'off']) as ('on' | 'off')[]) {
      attentionPool(1).spin = setting === 'on';
      const times: number[] = [];
      for (let s = 0; s < steps; s++) {
        for (let l = 0; l < layers; l++) {
          busy(gapMs);
          const t = performance.now();
          await seq.forwardAsync(l, q, k, v, 1, out);
          times.push(performance.now() - t);
        }
        seq.truncate(n); // every step attends over the same n keys
        seq.endPrefill();
      }
      times.sort((a, b) => a - b);
      if (r > 0) results[setting].push(times[times.length >> 1]);
    }
  }
  attentionPool(1).spin = true;
  seq.dispose();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const row = {
    n, layers, gap_ms: gapMs, steps, rounds: rounds - 1,
    poll_ms_per_layer_step: Math.round(median(results.on) * 1000) / 1000,
    sleep_ms_per_layer_step: Math.round(median(results.off) * 1000) / 1000,
    saved_ms_per_layer_step: Math.round((median(results.off) - median(results.on)) * 1000) / 1000,
    poll_rounds: results.on.map((x) => Math.round(x * 1000) / 1000), sleep_rounds: results.off.map((x) => Math.round(x * 1000) / 1000),
  };
  if (json) process.stdout.write(JSON.stringify(row) + '\n');
  else {
    process.stdout.write(`wake: attention per layer-step at ${n} keys (12q/2kv heads, 2 threads, ${gapMs} ms busy between layers), median of ${rounds - 1} rounds each\n`);
    process.stdout.write(`  polling ${row.poll_ms_per_layer_step} ms, sleeping ${row.sleep_ms_per_layer_step} ms: ${row.saved_ms_per_layer_step} ms saved a layer-step\n`);
    process.stdout.write(`  rounds: polling ${row.poll_rounds.join(' ')}; sleeping ${row.sleep_rounds.join(' ')}\n`);
  }
  return 0;
}
