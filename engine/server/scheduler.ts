// One model, many requests: a priority lock over the model. Completions go before asks (FIFO within a class); when a
// completion waits while an ask holds the model, the ask is told to yield (it aborts its current decode step, releases
// the lock and re-queues; its sequence keeps the KV of what it generated, so resuming costs one step). The queue is
// bounded: past `maxQueued` waiters a request is refused (Overloaded) rather than piling up memory.
// Background indexing ('index') comes after both: while it holds the model, any completion or ask that starts
// waiting tells it to yield (it stops at the next prefill chunk boundary, releases its sequence to the prefix cache and
// re-queues behind them).
export type Priority = 'completion' | 'ask' | 'index';

const rank: Record<Priority, number> = { completion: 0, ask: 1, index: 2 };

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
   * called when a request that outranks this one starts waiting while this one holds the model (a completion while
   * an ask holds it; a completion or an ask while an index request holds it).
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
      // Ahead of every waiter of a lower class (completions before asks before index requests), FIFO within a class.
      const at = this.waiters.findIndex((x) => rank[x.priority] > rank[priority]);
      if (at >= 0) this.waiters.splice(at, 0, w); else this.waiters.push(w);
      if (this.holder && rank[priority] < rank[this.holder.priority]) this.holder.onYield?.();
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
