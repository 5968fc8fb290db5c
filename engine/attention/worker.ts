// An attention worker thread (see worker-pool.ts, methods/threads.ts): waits on the shared control word, pulls layout
// updates from its port, runs the job's decode method for the KV heads it owns, and signals done.
// Bundled as dist/attention-worker.js (esbuild.mjs); loaded from source under tsx.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { HeadCache } from './head-cache';
import { HeadIndex } from './head-index';
import { LshTables } from './lsh-tables';
import { decodeMethod, METHOD_NAMES, type DecodeStep } from './methods/index';
import { simhashFor } from './simhash';
import { DONE, GEN, JobField, type BufferMessage, type HeadMessage } from './worker-pool';

const { port, wid, ctl } = workerData as { port: MessagePort; wid: number; ctl: Int32Array };
const heads = new Map<number, { cache: HeadCache; index: HeadIndex }>(); // key: layer·65536 + g
let buffers: BufferMessage | null = null;
const step: DecodeStep = {
  q: new Float32Array(0), out: new Float32Array(0), numHeads: 0, numKvHeads: 0, headDim: 0, caches: [], indexes: [],
  ranges: { sinks: 0, indexedEnd: 0, length: 0 }, count: 0, K: 0, L: 0, budget: 'auto', codes: new Int32Array(0),
  hash: null, used: new Int32Array(0), observer: null,
};

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
  const layer = job[JobField.Layer], G = job[JobField.KvHeads], d = job[JobField.HeadDim], T = job[JobField.Threads];
  step.q = b.q as Float32Array; step.out = b.out as Float32Array;
  step.codes = b.codes as Int32Array; step.used = b.used as Int32Array;
  step.numHeads = job[JobField.Heads]; step.numKvHeads = G; step.headDim = d;
  step.ranges.sinks = job[JobField.Sinks]; step.ranges.indexedEnd = job[JobField.IndexedEnd]; step.ranges.length = job[JobField.Length];
  step.count = step.ranges.indexedEnd - step.ranges.sinks;
  step.K = job[JobField.K]; step.L = job[JobField.L];
  const method = decodeMethod(METHOD_NAMES[job[JobField.Method]], d);
  step.hash = job[JobField.CodesReady] || method.name !== 'magicpig' ? null : simhashFor(d, step.K, step.L, job[JobField.Seed]);
  for (let g = 0; g < G; g++) {
    if (g % T !== wid + 1) continue;
    const head = heads.get(layer * 65536 + g)!;
    step.caches[g] = head.cache;
    step.indexes[g] = head.index;
  }
  for (let g = 0; g < G; g++) if (g % T === wid + 1) method.group(step, g);
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
