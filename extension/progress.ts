// Engine progress (snout/progress) as VS Code notifications: model load always, prefill only when it runs long.
import * as vscode from 'vscode';
import type { ProgressParams } from '../engine/protocol';

interface Open {
  report: (fraction: number | undefined, message: string) => void;
  close: () => void;
}

export class ProgressNotifications implements vscode.Disposable {
  private open = new Map<string, Open>();
  private firstSeen = new Map<string, number>();

  /** Prefills shorter than this never show a notification. */
  constructor(private readonly prefillAfterMs = 1500) {}

  handle(p: ProgressParams): void {
    const key = `${p.kind}:${p.id ?? ''}`;
    const done = p.fraction !== undefined && p.fraction >= 1;
    if (done) {
      this.close(key);
      return;
    }
    let o = this.open.get(key);
    // Requests cancelled mid-prefill never send a final progress: forget them after a while.
    for (const [k, t] of this.firstSeen) if (Date.now() - t > 60_000) this.firstSeen.delete(k);
    if (!o) {
      if (p.kind !== 'load') {
        const first = this.firstSeen.get(key) ?? Date.now();
        this.firstSeen.set(key, first);
        if (Date.now() - first < this.prefillAfterMs) return;
      }
      o = this.show(p.kind === 'load' ? 'Snout: loading model' : p.kind === 'prefill' ? 'Snout: reading the repository context' : `Snout: ${p.kind}`);
      this.open.set(key, o);
    }
    o.report(p.fraction, p.message);
  }

  private show(title: string): Open {
    let resolve!: () => void;
    let last = 0;
    let progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    const pending: Array<[number | undefined, string]> = [];
    // A request that was cancelled mid-way sends no final progress: close after a quiet spell.
    let idle: NodeJS.Timeout | undefined;
    const close = () => { clearTimeout(idle); resolve?.(); };
    const report = (fraction: number | undefined, message: string) => {
      clearTimeout(idle);
      idle = setTimeout(close, 10_000);
      if (!progress) return void pending.push([fraction, message]);
      const pct = fraction === undefined ? undefined : Math.round(fraction * 100);
      const increment = pct === undefined ? undefined : Math.max(0, pct - last);
      if (pct !== undefined) last = Math.max(last, pct);
      progress.report({ message, increment });
    };
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, (p) => {
      progress = p;
      pending.splice(0).forEach(([f, m]) => report(f, m));
      return new Promise<void>((r) => { resolve = r; });
    });
    return { report, close };
  }

  /** Closes the notifications of a finished or failed request (or all of a kind, e.g. when the engine is ready). */
  close(key: string): void {
    for (const [k, o] of [...this.open]) {
      if (k === key || (key.endsWith(':') && k.startsWith(key))) {
        o.close();
        this.open.delete(k);
      }
    }
    for (const k of [...this.firstSeen.keys()]) if (k === key || (key.endsWith(':') && k.startsWith(key))) this.firstSeen.delete(k);
  }

  dispose(): void {
    for (const o of this.open.values()) o.close();
    this.open.clear();
  }
}
