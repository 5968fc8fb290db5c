// Runs a model's chat template (Jinja, from the model folder: untrusted) in a worker thread, so a template that loops
// 10^8 times or builds gigabytes is stopped by a timeout or the worker's heap limit instead of freezing the engine.
import { parentPort } from 'node:worker_threads';
import { Template } from '@huggingface/jinja';

const compiled = new Map<string, Template>();

parentPort!.on('message', (m: { id: number; source: string; vars: Record<string, unknown>; maxChars: number }) => {
  try {
    let t = compiled.get(m.source);
    if (!t) {
      if (compiled.size > 8) compiled.clear();
      t = new Template(m.source);
      compiled.set(m.source, t);
    }
    const text = t.render(m.vars);
    if (text.length > m.maxChars) parentPort!.postMessage({ id: m.id, error: `rendered ${text.length} characters, more than the limit of ${m.maxChars}` });
    else parentPort!.postMessage({ id: m.id, text });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error)?.message ?? String(e) });
  }
});
