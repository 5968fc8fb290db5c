// An attention worker thread (see worker-pool.ts): waits on the shared control word, pulls layout updates from its
// port, runs MagicPIG (or an exact decode step) for the KV heads it owns in the current job, and signals done.
// Bundled as dist/attention-worker.js (esbuild.mjs); loaded from source under tsx.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { HeadCache, SLOTS } from './head-cache';
import { HeadIndex } from './head-index';
import { LshTables } from './lsh-tables';
import { DecodeKernels, magicpigGroup, type Ranges } from './decode-kernels';
import { simhashFor } from './simhash';
import { DONE, GEN, JobField, type BufferMessage, type HeadMessage } from './worker-pool';

const { port, wid, ctl } = workerData as { port: MessagePort; wid: number; ctl: Int32Array };
const heads = new Map<number, { cache: HeadCache; index: HeadIndex }>(); // key: layer·65536 + g
const kernels = new Map<number, DecodeKernels>();
let buffers: BufferMessage | null = null;
const ranges: Ranges = { sinks: 0, indexedEnd: 0, length: 0 };

function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as HeadMessage | BufferMessage;
    if (msg.type === 'buffers') { buffers = msg; continue; }
    const cache = new HeadCache(msg.dtype, msg.d, msg.capacity, undefined, 0, msg.mem);
    const index = new HeadIndex(msg.g, msg.d);
    index.norms = msg.norms;
    index.kbar = msg.kbar;
    index.tables = msg.tables ? LshTables.attach(msg.K, msg.L, msg.base, msg.count, msg.tableCapacity, msg.tables.buffer, msg.tables.memory) : null;
    heads.set(msg.layer * 65536 + msg.g, { cache, index });
  }
}

function runJob(): void {
  const b = buffers!, job = b.job;
  const layer = job[JobField.Layer], H = job[JobField.Heads], G = job[JobField.KvHeads], d = job[JobField.HeadDim];
  const K = job[JobField.K], L = job[JobField.L], T = job[JobField.Threads];
  ranges.sinks = job[JobField.Sinks];
  ranges.indexedEnd = job[JobField.IndexedEnd];
  ranges.length = job[JobField.Length];
  let ker = kernels.get(d);
  if (!ker) kernels.set(d, (ker = new DecodeKernels(d)));
  ker.reserve(ranges.indexedEnd - ranges.sinks);
  if (job[JobField.Dense]) {
    // Exact decode step: each owned KV head's query heads over keys [0, length), in one pass (attendPrefixGroup).
    const group = H / G, scale = 1 / Math.sqrt(d);
    for (let g = 0; g < G; g++) {
      if (g % T !== wid + 1) continue;
      const cache = heads.get(layer * 65536 + g)!.cache;
      for (let h = g * group; h < (g + 1) * group; h += SLOTS) {
        cache.attendPrefixGroup(b.q as Float32Array, h * d, Math.min(SLOTS, (g + 1) * group - h), ranges.length, scale, b.out as Float32Array, h * d);
      }
    }
    return;
  }
  const hash = job[JobField.CodesReady] ? null : simhashFor(d, K, L, job[JobField.Seed]);
  for (let g = 0; g < G; g++) {
    if (g % T !== wid + 1) continue;
    const head = heads.get(layer * 65536 + g)!;
    magicpigGroup(ker, head.cache, head.index, g, H, G, ranges, K, L, b.q as Float32Array, b.codes as Int32Array, hash,
      b.out as Float32Array, b.sampled as Int32Array);
  }
}

let gen = 0;
for (;;) {
  Atomics.wait(ctl, GEN, gen);
  gen = Atomics.load(ctl, GEN);
  if (gen < 0) break;
  drain();
  try {
    runJob();
  } finally {
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}
