// One model, many requests: a priority lock over the model. Completions go before asks (FIFO within a class); when a
// completion waits while an ask holds the model, the ask is told to yield (it aborts its current decode step, releases
// the lock and re-queues; its sequence keeps the KV of what it generated, so resuming costs one step). The queue is
// bounded: past `maxQueued` waiters a request is refused (Overloaded) rather than piling up memory.
export type Priority = 'completion' | 'ask';

export class Overloaded extends Error {}
export class Superseded extends Error {}

interface Waiter {
  priority: Priority;
  grant: (release: () => void) => void;
  fail: (err: Error) => void;
  onYield?: () => void;
}

export class ModelScheduler {
  private holder?: Waiter;
  private waiters: Waiter[] = [];

  constructor(readonly maxQueued = 32) {}

  get queued(): number {
    return this.waiters.length;
  }

  get busy(): boolean {
    return this.holder !== undefined;
  }

  /**
   * Resolves with a release function once this request may use the model. `signal` abandons the wait; `onYield` is
   * called (once per grant) when a completion starts waiting while this ask holds the model.
   */
  acquire(priority: Priority, signal?: AbortSignal, onYield?: () => void): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new Superseded('cancelled before it started'));
    if (this.waiters.length >= this.maxQueued) {
      return Promise.reject(new Overloaded(`engine busy: ${this.waiters.length} requests already queued`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { priority, onYield, grant: resolve, fail: reject };
      const abandon = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) { this.waiters.splice(i, 1); reject(new Superseded('cancelled while queued')); }
      };
      signal?.addEventListener('abort', abandon, { once: true });
      w.grant = (release) => { signal?.removeEventListener('abort', abandon); resolve(release); };
      // Completions jump ahead of every waiting ask.
      const at = priority === 'completion' ? this.waiters.findIndex((x) => x.priority === 'ask') : -1;
      if (at >= 0) this.waiters.splice(at, 0, w); else this.waiters.push(w);
      if (priority === 'completion' && this.holder?.priority === 'ask') this.holder.onYield?.();
      this.pump();
    });
  }

  private pump() {
    if (this.holder || this.waiters.length === 0) return;
    const w = this.waiters.shift()!;
    this.holder = w;
    let released = false;
    w.grant(() => {
      if (released) return;
      released = true;
      this.holder = undefined;
      this.pump();
    });
  }

  /** True when a completion is waiting (an ask checks this before resuming). */
  completionWaiting(): boolean {
    return this.waiters.some((w) => w.priority === 'completion');
  }
}
