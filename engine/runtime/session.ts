// onnxruntime sessions and the execution-provider choice. Asking onnxruntime-node for a provider it was not built with
// (or that finds no device) throws; we catch that, fall back to cpu and say so in one log line.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultIntraOpThreads } from './cores';

// onnxruntime's own logger prints a second, multi-line copy of every failure (e.g. a missing CUDA library) that we
// already report or throw; it is process-wide and fixed when the first session is created, so set it at import.
ort.env.logLevel = 'fatal';

export type ProviderSetting = 'auto' | 'cpu' | 'cuda' | 'webgpu';
export type Provider = 'cpu' | 'cuda' | 'webgpu';

export interface SessionOptions {
  /**
   * Threads for one operator; unset or 0: one per physical core (cores.ts: counted by Snout on Linux, where
   * onnxruntime's own count can be half of it). Env SNOUT_THREADS overrides.
   */
  threads?: number;
  /** Where the one fallback line goes (stderr by default: stdout may carry a protocol). */
  log?: (line: string) => void;
  /**
   * Large models: no per-session memory arena (each of ~30 sessions would keep its peak prompt-chunk activations,
   * gigabytes together) and only the basic graph rewrites (the extended ones cost most of a session's creation time
   * and gain nothing on graphs whose time is all in MatMulNBits).
   */
  large?: boolean;
  /**
   * Save the optimized graph to `path` with its weights in `dataFile` (a name beside it), MatMulNBits' prepacked
   * weights included (engine/model/prepacked.ts).
   */
  savePrepacked?: { path: string; dataFile: string };
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** Provider actually in use after any fallback. */
  provider: Provider;
}

/** Providers tried for a setting, best first; cpu always ends the list. */
export function providerCandidates(setting: ProviderSetting): Provider[] {
  switch (setting) {
    case 'cpu': return ['cpu'];
    case 'cuda': return ['cuda', 'cpu'];
    case 'webgpu': return ['webgpu', 'cpu'];
    // auto: a GPU provider only where this platform's onnxruntime-node build ships one.
    case 'auto': return [...gpuProvidersBuiltIn(), 'cpu'];
    default: throw new Error(`unknown execution provider "${setting as string}"`);
  }
}

function gpuProvidersBuiltIn(): Provider[] {
  let backends: { name: string; bundled?: boolean }[] = [];
  try {
    backends = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled?: boolean }[] }).listSupportedBackends?.() ?? [];
  } catch { /* older builds: cpu only */ }
  // A backend the build does not bundle (cuda on linux) is there only if its provider library was installed next to
  // the binding; the VSIX never ships one, so auto does not try (and log the failure of) cuda on every start.
  const names = new Set(backends.filter((b) => b.bundled !== false || providerLibraryInstalled(b.name)).map((b) => b.name));
  return (['cuda', 'webgpu'] as Provider[]).filter((p) => names.has(p) && gpuAllowedForAuto(p));
}

function providerLibraryInstalled(name: string): boolean {
  try {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
    return readdirSync(bin).some((f) => f.includes(`onnxruntime_providers_${name}`));
  } catch {
    return false;
  }
}

// webgpu without a real adapter can end up on a software rasteriser that is far slower than the cpu provider, so auto
// uses it only when asked to through env SNOUT_AUTO_WEBGPU=1; an explicit 'webgpu' setting always tries it.
function gpuAllowedForAuto(p: Provider): boolean {
  return p === 'cuda' || process.env.SNOUT_AUTO_WEBGPU === '1';
}

/** Intra-op threads a session gets: env SNOUT_THREADS, else `requested` (when > 0), else the default (0 = onnxruntime's). */
export function intraOpThreads(requested?: number): number {
  const envThreads = Number(process.env.SNOUT_THREADS);
  return Number.isFinite(envThreads) && envThreads > 0 ? Math.floor(envThreads) : requested || defaultIntraOpThreads();
}

export function sessionOptions(provider: Provider, options: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = intraOpThreads(options.threads);
  return {
    executionProviders: [provider],
    graphOptimizationLevel: options.large ? 'basic' : 'all',
    enableCpuMemArena: !options.large,
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    // Pool threads spin while a run is in flight, so an operator's parallel sections (several per MatMulNBits, ~10 a
    // layer graph) do not each wait for a sleeping thread to wake, and stop the moment the run returns
    // (force_spinning_stop): every session has its own pool, and onnxruntime's default spin after a run (~ms) kept one
    // session's thread busy through the next session's run and the attention between them. SNOUT_SPIN=0: never spin.
    // Measured in bench-results/threads-wake.md.
    extra: {
      session: {
        intra_op: { allow_spinning: process.env.SNOUT_SPIN === '0' ? '0' : '1' },
        ...(process.env.SNOUT_SPIN !== '0' && { force_spinning_stop: '1' }),
        ...(options.savePrepacked && {
          save_external_prepacked_constant_initializers: '1',
          optimized_model_external_initializers_file_name: options.savePrepacked.dataFile,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        }),
      },
    },
    ...(options.savePrepacked && { optimizedModelFilePath: options.savePrepacked.path }),
  };
}

/**
 * Create a session for `modelBytes` on the requested provider, falling back to cpu (one log line) if it fails.
 * Callers that build many sessions pass the provider the first one reported, so the fallback is logged once.
 */
export async function createSession(
  modelBytes: Uint8Array | string,
  provider: ProviderSetting = 'auto',
  options: SessionOptions = {},
): Promise<CreatedSession> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const candidates = providerCandidates(provider);
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      const session = typeof modelBytes === 'string'
        ? await ort.InferenceSession.create(modelBytes, sessionOptions(candidate, options))
        : await ort.InferenceSession.create(modelBytes, sessionOptions(candidate, options));
      if (candidate !== candidates[0]) {
        const first = (lastError instanceof Error ? lastError.message : String(lastError)).split('\n')[0];
        const why = first.length > 160 ? '…' + first.slice(-160) : first;
        log(`snout: execution provider "${candidates[0]}" unavailable (${why}); using ${candidate}`);
      }
      return { session, provider: candidate };
    } catch (err) {
      lastError = err;
      if (candidate === 'cpu') throw err;
    }
  }
  throw lastError;
}

export { ort };
