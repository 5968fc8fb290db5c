// Per-completion figures and the session's prefix-cache hit rate (cachedTokens / promptTokens summed over requests).
import type { UsageStats } from '../../engine/protocol';

export interface CompletionReport {
  stats: UsageStats;
  latencyMs: number;
  files: number;
  estimatedTokens: number;
  /** The packed file list was reused from the current epoch. */
  reusedContext: boolean;
  chars: number;
}

export class HitRate {
  private prompt = 0;
  private cached = 0;
  private requests = 0;

  add(s: UsageStats): void {
    this.prompt += s.promptTokens;
    this.cached += s.cachedTokens;
    this.requests++;
  }

  get rate(): number {
    return this.prompt === 0 ? 0 : this.cached / this.prompt;
  }

  get count(): number {
    return this.requests;
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** One output-channel line per completion; stable wording (the e2e suite and benchmarks read it). */
export function formatReport(r: CompletionReport, session: HitRate): string {
  const s = r.stats;
  const tps = s.decodeMs > 0 ? (1000 * s.decodeTokens) / s.decodeMs : 0;
  const hit = s.promptTokens > 0 ? s.cachedTokens / s.promptTokens : 0;
  return `completion ${r.latencyMs} ms: prompt ${s.promptTokens} tokens (cached ${s.cachedTokens} = ${pct(hit)}${s.diskCachedTokens !== undefined ? `, from disk ${s.diskCachedTokens}` : ''}, truncated ${s.truncatedTokens}, ` +
    `estimated ${r.estimatedTokens}), ${r.files} files${r.reusedContext ? ' (same context)' : ' (re-ranked)'}, prefill ${Math.round(s.prefillMs)} ms, ` +
    `${s.decodeTokens} tokens at ${tps.toFixed(1)} tok/s, ${s.attention} sampled ${pct(s.sampledFraction)}; ` +
    `prefix cache hit rate ${pct(session.rate)} over ${session.count} requests`;
}
