// Chat-template rendering with limits: time, output size and heap. The template comes from the model folder and is
// a program; it runs in one long-lived worker thread (template-worker.ts) that is terminated and replaced when a
// render runs past its time or out of its heap.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface TemplateLimits {
  /** Wall time of one render (default 2 s). */
  timeoutMs?: number;
  /** Longest rendered text in characters. */
  maxChars: number;
}

/** Heap of the template worker: a render that needs more is a hostile template, not a prompt. */
const HEAP_MB = 256;

type Waiter = { resolve: (s: string) => void; reject: (e: Error) => void };
interface TemplateWorker { w: Worker; waiting: Map<number, Waiter>; idle?: NodeJS.Timeout }
/** An idle worker is stopped after this long (renders of one request come in a burst; nothing stays behind). */
const IDLE_MS = 1000;
let worker: TemplateWorker | undefined;
let seq = 0;

function spawn(): TemplateWorker {
  const resourceLimits = { maxOldGenerationSizeMb: HEAP_MB, maxYoungGenerationSizeMb: 32 };
  // Bundled: dist/template-worker.js beside this bundle; under tsx (tests), the TypeScript source via tsx's hook.
  const w = __filename.endsWith('.ts')
    ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'template-worker.ts'))});`, { eval: true, resourceLimits })
    : new Worker(path.join(__dirname, 'template-worker.js'), { resourceLimits });
  w.unref();
  const waiting = new Map<number, Waiter>();
  const me: TemplateWorker = { w, waiting };
  w.on('message', (m: { id: number; text?: string; error?: string }) => {
    const p = waiting.get(m.id);
    if (!p) return;
    waiting.delete(m.id);
    if (waiting.size === 0) {
      clearTimeout(me.idle);
      me.idle = setTimeout(() => { if (waiting.size === 0) { if (worker === me) worker = undefined; void w.terminate(); } }, IDLE_MS);
      me.idle.unref();
    }
    if (m.error !== undefined) p.reject(new Error(m.error)); else p.resolve(m.text!);
  });
  const fail = (why: string) => {
    if (worker === me) worker = undefined;
    for (const p of waiting.values()) p.reject(new Error(why));
    waiting.clear();
  };
  w.on('error', (e) => fail(/heap|memory/i.test(e.message) ? `the template needs more than ${HEAP_MB} MB` : e.message));
  w.on('exit', () => fail('the template worker stopped'));
  return me;
}

/** Renders `source` with `vars`; rejects with one line when the template fails, runs too long or renders too much. */
export function renderTemplate(source: string, vars: Record<string, unknown>, limits: TemplateLimits): Promise<string> {
  const tw = (worker ??= spawn());
  const { w, waiting } = tw;
  clearTimeout(tw.idle);
  const id = ++seq;
  const timeoutMs = limits.timeoutMs ?? 2000;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (!waiting.delete(id)) return;
      reject(new Error(`rendering took longer than ${timeoutMs} ms`));
      if (worker === tw) worker = undefined;
      void w.terminate();
    }, timeoutMs);
    waiting.set(id, {
      resolve: (s) => { clearTimeout(timer); resolve(s); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
    w.postMessage({ id, source, vars, maxChars: limits.maxChars });
  });
}
