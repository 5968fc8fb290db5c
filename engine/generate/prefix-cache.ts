// A pool of recent Sequences (each a KV cache + LSH index). A request takes the one sharing the longest token prefix
// with its prompt; generate() then truncates it to that prefix and prefills only the rest. Idle sequences are evicted
// least-recently-used first when the pool's bytes exceed its RAM budget. Under it, optionally, a disk tier
// (disk-prefix-cache.ts): a released sequence worth keeping is written there, and a prompt that shares a longer prefix
// with a file than with anything in RAM starts from that file.
import type { AttentionConfig } from '../attention/types';
import type { DiskPrefixCache } from './disk-prefix-cache';
import type { Sequence } from './types';

export interface SequenceFactory {
  newSequence(attention?: Partial<AttentionConfig>): Sequence;
}

interface Entry {
  seq: Sequence;
  busy: boolean;
  lastUsed: number;
}

export interface Lease {
  seq: Sequence;
  /** Tokens of the prompt already in the sequence's cache. */
  cachedTokens: number;
  /** Of those, tokens read from the disk tier for this request (0 when the sequence came from RAM). */
  diskTokens: number;
}

export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class PrefixCache {
  private entries: Entry[] = [];
  private clock = 0;

  constructor(private readonly model: SequenceFactory, public budgetBytes: number, readonly maxEntries = 8,
    readonly disk?: DiskPrefixCache) {}

  /**
   * A sequence for a prompt. Reused in place when it shares at least half of the prompt or half of itself with it
   * (typing extends or edits the tail of the last prompt); otherwise a fresh one, so that an unrelated prompt (another
   * file) does not wipe a cache that the next keystroke in the first file will want again.
   */
  acquire(ids: readonly number[], attention?: Partial<AttentionConfig>, needBytes = 0): Lease {
    const lease = this.pick(ids, attention);
    return this.settle(this.fromDisk(attention, lease, this.diskPick(ids, attention, lease), needBytes), needBytes);
  }

  /**
   * acquire() for the service: a disk file is read a slice at a time (seconds at 32K tokens), so the event loop keeps
   * answering cancellations and status meanwhile; `signal` stops the read (the RAM pick is then used).
   */
  async acquireAsync(ids: readonly number[], attention?: Partial<AttentionConfig>, needBytes = 0, signal?: AbortSignal): Promise<Lease> {
    const lease = this.pick(ids, attention);
    const found = this.diskPick(ids, attention, lease);
    if (!found) return this.settle(lease, needBytes);
    this.makeRoom(needBytes, this.entries.find((x) => x.seq === lease.seq)); // before the read allocates, not after
    const seq = this.model.newSequence(attention);
    const ok = await this.disk!.loadAsync(found.file, seq, attention, signal);
    return this.settle(this.adopt(lease, ok ? seq : undefined, seq, found.common), needBytes);
  }

  private settle(lease: Lease, needBytes: number): Lease {
    this.disk?.detach(lease.seq); // a write still reading this sequence must not see the request change it
    // Room for what this request will grow to, made before it allocates: idle sequences go, oldest first.
    const e = this.entries.find((x) => x.seq === lease.seq)!;
    this.makeRoom(Math.max(0, needBytes - e.seq.bytes()), e);
    return lease;
  }

  /** Evicts idle sequences, oldest first, until `extra` more bytes fit the budget (`keep` stays). */
  private makeRoom(extra: number, keep?: Entry): void {
    while (this.bytes() + extra > this.budgetBytes) {
      const victim = this.lruIdle(keep);
      if (!victim) break;
      this.discard(victim.seq);
    }
  }

  private diskPick(ids: readonly number[], attention: Partial<AttentionConfig> | undefined, lease: Lease) {
    return this.disk?.best(ids, attention, lease.cachedTokens) ?? null;
  }

  /**
   * A disk file sharing a longer prefix with the prompt than the RAM pick: read into a fresh sequence that replaces
   * the pick (given back to the pool, or dropped when it was a new, empty one). Unusable files are deleted by the tier.
   */
  private fromDisk(attention: Partial<AttentionConfig> | undefined, lease: Lease, found: { file: string; common: number } | null, needBytes: number): Lease {
    if (!found) return lease;
    this.makeRoom(needBytes, this.entries.find((x) => x.seq === lease.seq)); // before the read allocates, not after
    const seq = this.model.newSequence(attention);
    const ok = this.disk!.load(found.file, seq, attention);
    return this.adopt(lease, ok ? seq : undefined, seq, found.common);
  }

  /** Puts a sequence read from disk in the RAM pick's place (or disposes the fresh one when the read failed). */
  private adopt(lease: Lease, read: Sequence | undefined, fresh: Sequence, common: number): Lease {
    if (!read) { fresh.dispose(); return lease; }
    if (lease.seq.tokens.length === 0) this.discard(lease.seq);
    else this.entries.find((x) => x.seq === lease.seq)!.busy = false;
    if (this.entries.length >= this.maxEntries) { const lru = this.lruIdle(); if (lru) this.discard(lru.seq); }
    const e: Entry = { seq: read, busy: false, lastUsed: 0 };
    this.entries.push(e);
    const taken = this.take(e, common);
    taken.diskTokens = common;
    return taken;
  }

  private pick(ids: readonly number[], attention?: Partial<AttentionConfig>): Lease {
    let best: Entry | undefined;
    let bestLen = -1;
    for (const e of this.entries) {
      if (e.busy) continue;
      const n = commonPrefix(e.seq.tokens, ids);
      if (n > bestLen || (n === bestLen && best && e.lastUsed > best.lastUsed)) { best = e; bestLen = n; }
    }
    if (best && bestLen > 0 && (2 * bestLen >= ids.length || 2 * bestLen >= best.seq.tokens.length)) {
      return this.take(best, bestLen);
    }
    if (this.entries.length >= this.maxEntries) {
      const lru = this.lruIdle();
      if (lru) return this.take(lru, commonPrefix(lru.seq.tokens, ids));
    }
    const e: Entry = { seq: this.model.newSequence(attention), busy: false, lastUsed: 0 };
    this.entries.push(e);
    return this.take(e, 0);
  }

  /** Returns a sequence to the pool (its tokens are now prompt + generated) and evicts down to the budget. */
  release(seq: Sequence): void {
    const e = this.entries.find((x) => x.seq === seq);
    if (!e) return;
    e.busy = false;
    e.lastUsed = ++this.clock;
    // Before eviction: the write holds views of the sequence's memory, so it completes even if the pool drops it.
    this.disk?.persist(seq);
    this.evict(e);
  }

  /** Drops a sequence whose state can no longer be trusted (generation threw midway). */
  discard(seq: Sequence): void {
    const i = this.entries.findIndex((x) => x.seq === seq);
    if (i >= 0) this.entries.splice(i, 1);
    seq.dispose();
  }

  bytes(): number {
    return this.entries.reduce((s, e) => s + e.seq.bytes(), 0);
  }

  get size(): number {
    return this.entries.length;
  }

  clear(): void {
    for (const e of this.entries) if (!e.busy) e.seq.dispose();
    this.entries = this.entries.filter((e) => e.busy);
  }

  private take(e: Entry, cachedTokens: number): Lease {
    e.busy = true;
    e.lastUsed = ++this.clock;
    return { seq: e.seq, cachedTokens, diskTokens: 0 };
  }

  private lruIdle(except?: Entry): Entry | undefined {
    let lru: Entry | undefined;
    for (const e of this.entries) if (!e.busy && e !== except && (!lru || e.lastUsed < lru.lastUsed)) lru = e;
    return lru;
  }

  /** Evicts idle sequences, oldest first, until the pool fits its budget; the one just used is kept if it can be. */
  private evict(keep: Entry) {
    while (this.bytes() > this.budgetBytes) {
      const victim = this.lruIdle(keep) ?? (keep.busy ? undefined : keep);
      if (!victim) return;
      this.discard(victim.seq);
      if (victim === keep) return;
    }
  }
}
