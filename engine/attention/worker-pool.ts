// Worker threads for decode steps (methods/threads.ts decides the split): the cache, tables and norms are
// SharedArrayBuffers / shared WebAssembly memories, so a worker reads them in place. Synchronous hand-off (forward()
// is synchronous): Atomics.notify to start, Atomics.wait for the rest.
// Layout changes (cache growth, folds) are posted to a worker's port before the job that needs them; the worker
// pulls them with receiveMessageOnPort, so its loop never returns to the event loop.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import path from 'node:path';
import type { HeadCache } from './head-cache';
import type { HeadIndex } from './head-index';

/** ctl[GEN]: job generation (negative = stop); ctl[DONE]: workers finished with the current job. */
export const GEN = 0, DONE = 1;
/** Job ints: see JobField. */
export const enum JobField { Method, Layer, Heads, KvHeads, HeadDim, Sinks, IndexedEnd, Length, K, L, Seed, CodesReady, Threads, Size }

export interface HeadMessage {
  type: 'head';
  layer: number;
  g: number;
  mem: WebAssembly.Memory;
  dtype: 'float32' | 'bfloat16';
  d: number;
  capacity: number;
  /** The index (null for an exact layer: dense decode steps need the cache only). */
  K: number;
  L: number;
  base: number;
  count: number;
  /** The tables' room per table (lsh-tables.ts: folds and cuts change count in place, a regrow makes a new memory). */
  tableCapacity: number;
  /** The table set's shared memory (LshTables.attach), or null when the layer has no index. */
  tables: { buffer: SharedArrayBuffer; memory: WebAssembly.Memory | null } | null;
  norms: Float32Array<ArrayBufferLike>;
  /** k̄ (keys are stored raw; the sampling probability needs q·k̄). */
  kbar: Float32Array | null;
}

export interface BufferMessage {
  type: 'buffers';
  job: Int32Array<ArrayBufferLike>;
  q: Float32Array<ArrayBufferLike>;
  out: Float32Array<ArrayBufferLike>;
  codes: Int32Array<ArrayBufferLike>;
  used: Int32Array<ArrayBufferLike>;
}

const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));

function spawn(workerData: unknown, transferList: MessagePort[]): Worker {
  // Bundled: dist/attention-worker.js beside this bundle. Under tsx (tests, benches): the TypeScript source through
  // tsx's require hook (Node 20 workers ignore --import tsx for a .ts entry).
  if (__filename.endsWith('.ts')) {
    const src = `require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'worker.ts'))});`;
    return new Worker(src, { eval: true, workerData, transferList });
  }
  return new Worker(path.join(__dirname, 'attention-worker.js'), { workerData, transferList });
}

interface PoolWorker {
  worker: Worker;
  port: MessagePort;
  /** What this worker last got per layer·65536 + g: the objects whose identity marks a layout change. */
  sent: Map<number, unknown[]>;
}

export class AttentionPool {
  readonly ctl = new Int32Array(sab(8));
  readonly job = new Int32Array(sab(4 * JobField.Size));
  q: Float32Array<ArrayBufferLike> = new Float32Array(0);
  out: Float32Array<ArrayBufferLike> = new Float32Array(0);
  codes: Int32Array<ArrayBufferLike> = new Int32Array(0);
  used: Int32Array<ArrayBufferLike> = new Int32Array(0);
  private readonly workers: PoolWorker[] = [];

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = spawn({ port: port2, wid: i, ctl: this.ctl }, [port2]);
      worker.unref();
      port1.unref();
      this.workers.push({ worker, port: port1, sent: new Map() });
    }
  }

  /** Size the shared job buffers (re-posted to workers when they grow). */
  ensure(H: number, d: number, L: number): void {
    if (this.q.length >= H * d && this.codes.length >= H * L && this.used.length >= H) return;
    this.q = new Float32Array(sab(4 * H * d));
    this.out = new Float32Array(sab(4 * H * d));
    this.codes = new Int32Array(sab(4 * H * L));
    this.used = new Int32Array(sab(4 * H));
    const msg: BufferMessage = { type: 'buffers', job: this.job, q: this.q, out: this.out, codes: this.codes, used: this.used };
    for (const w of this.workers) w.port.postMessage(msg);
  }

  /** Post KV head g of `layer` to the worker that owns it this step, if its layout changed since the last post. */
  share(worker: number, layer: number, g: number, cache: HeadCache, index: HeadIndex): void {
    const w = this.workers[worker], t = index.tables;
    const key = layer * 65536 + g, prev = w.sent.get(key);
    // A fold or a cut changes the count in the same memory; a regrow makes a new memory.
    if (prev && prev[0] === cache && prev[1] === t?.buffer && prev[2] === t?.count && prev[3] === index.norms
      && prev[4] === index.kbar) return;
    w.sent.set(key, [cache, t?.buffer, t?.count, index.norms, index.kbar]);
    const msg: HeadMessage = {
      type: 'head', layer, g, mem: cache.memory!, dtype: cache.dtype, d: cache.d, capacity: cache.capacity,
      K: t?.K ?? 0, L: t?.L ?? 0, base: t?.base ?? 0, count: t?.count ?? 0, tableCapacity: t?.capacity ?? 0,
      tables: t ? { buffer: t.buffer, memory: t.memory } : null,
      norms: index.norms, kbar: index.kbar,
    };
    w.port.postMessage(msg);
  }

  /** Start the job written into `job`/`q`/`codes`. */
  start(): void {
    Atomics.store(this.ctl, DONE, 0);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
  }

  /** Block until every worker finished the current job (a worker that never answers is a bug: fail loudly). */
  wait(): void {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const done = Atomics.load(this.ctl, DONE);
      if (done >= this.size) return;
      if (Date.now() > deadline) throw new Error('attention worker threads did not finish a decode step within 60 s');
      Atomics.wait(this.ctl, DONE, done, 1000);
    }
  }

  dispose(): void {
    Atomics.store(this.ctl, GEN, -1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) void w.worker.terminate();
  }
}

let shared: AttentionPool | null = null;

/** Workers in the process-wide pool (0 before the first threaded step or reserve; tests). */
export function attentionPoolSize(): number {
  return shared?.size ?? 0;
}

/** The process-wide pool with `size` workers (recreated when the size changes). */
export function attentionPool(size: number): AttentionPool {
  if (!shared || shared.size !== size) {
    shared?.dispose();
    shared = new AttentionPool(size);
  }
  return shared;
}
