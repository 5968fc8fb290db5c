// The engine process from the extension's side: spawn under VS Code's own runtime (process.execPath with
// ELECTRON_RUN_AS_NODE=1, so users need no Node), JSON-RPC over stdio, load the model, stream tokens, cancel, and
// restart with backoff after a crash. No vscode import: the adapter passes callbacks, and tests drive the real engine.
import { spawn, type ChildProcess } from 'node:child_process';
import { engineEnv } from '../../engine/runtime/malloc-env';
import {
  CancellationTokenSource, createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  AskRequest, CompleteRequest, IndexRequest, InitializeRequest, LogNotification, ProgressNotification, ShutdownRequest, StatusRequest,
  TokenNotification, type AskParams, type CompleteParams, type CompleteResult, type LoadParams, type ModelInfo,
  type ProgressParams, type StatusResult, type IndexParams, type IndexResult,
} from '../../engine/protocol';

export type EngineState = 'stopped' | 'starting' | 'loading' | 'ready' | 'restarting' | 'error';

/** The part of vscode.CancellationToken the client needs (also satisfied by vscode-jsonrpc's token). */
export interface CancelToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export interface CrashInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Crashes in a row (reset after a stable minute). */
  crashes: number;
  /** Delay before the next start; undefined = giving up. */
  restartInMs: number | undefined;
}

export interface EngineClientOptions {
  /** dist/engine.js. */
  enginePath: string;
  /** The runtime to run it with; default process.execPath (VS Code's Electron, in node mode). */
  runtime?: string;
  /** Evaluated at every (re)start, so changed settings apply. */
  loadParams: () => LoadParams;
  log: (line: string) => void;
  onState?: (state: EngineState, detail?: string) => void;
  onProgress?: (p: ProgressParams) => void;
  onCrash?: (info: CrashInfo) => void;
  onReady?: (model: ModelInfo) => void;
  backoffMs?: { initial: number; max: number };
  /** Consecutive crashes after which the client stops restarting. */
  maxCrashes?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * A load that reports no progress for this long is given up with a message (a model file that is a FIFO or on a
   * hung network disk would otherwise leave the extension "loading" forever). Default 120 s.
   */
  loadStallMs?: number;
}

export class EngineClient {
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  private starting: Promise<ModelInfo> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private crashes = 0;
  private startedAt = 0;
  private tokenListeners = new Map<string, (text: string) => void>();
  private _state: EngineState = 'stopped';
  private _model: ModelInfo | undefined;

  constructor(private readonly o: EngineClientOptions) {}

  get state(): EngineState {
    return this._state;
  }

  get model(): ModelInfo | undefined {
    return this._model;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private setState(s: EngineState, detail?: string): void {
    this._state = s;
    this.o.onState?.(s, detail);
  }

  /** Starts the engine (if not running) and resolves with the loaded model. */
  start(): Promise<ModelInfo> {
    if (this.disposed) return Promise.reject(new Error('engine client disposed'));
    if (this._state === 'ready' && this._model && this.connection) return Promise.resolve(this._model);
    if (!this.starting) {
      const p: Promise<ModelInfo> = this.spawnAndLoad().finally(() => { if (this.starting === p) this.starting = undefined; });
      this.starting = p;
    }
    return this.starting;
  }

  private async spawnAndLoad(): Promise<ModelInfo> {
    clearTimeout(this.restartTimer);
    let params: LoadParams;
    try {
      params = this.o.loadParams();
    } catch (e) {
      this.setState('error', (e as Error).message);
      throw e;
    }
    this.setState('starting');
    const runtime = this.o.runtime ?? process.execPath;
    const child = spawn(runtime, [this.o.enginePath], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: engineEnv({ ...process.env, ...this.o.env, ELECTRON_RUN_AS_NODE: '1' }),
      windowsHide: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    this.o.log(`engine started (pid ${child.pid})`);
    let stderrTail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
      for (const line of chunk.split('\n')) {
        // The service mirrors its log lines to stderr and snout/log; the notification copy is the one shown.
        if (line.trim() && !/^snout engine \[(info|warn|error)\] /.test(line)) this.o.log(line.trimEnd());
      }
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.connection = connection;
    connection.onNotification(LogNotification, (p) => this.o.log(`[${p.level}] ${p.message}`));
    let lastProgress = Date.now();
    connection.onNotification(ProgressNotification, (p) => { lastProgress = Date.now(); this.o.onProgress?.(p); });
    connection.onNotification(TokenNotification, (p) => this.tokenListeners.get(p.id)?.(p.text));
    connection.onError(([err]) => this.o.log(`rpc error: ${err.message}`));
    connection.listen();
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => {
      reject(new Error(`engine exited (code ${code}, signal ${signal})${stderrTail ? `: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
    }));
    exited.catch(() => {});
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    child.once('error', (e) => this.o.log(`engine spawn error: ${e.message}`));

    this.setState('loading');
    try {
      const stallMs = this.o.loadStallMs ?? 120_000;
      let stallTimer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        const check = () => {
          const idle = Date.now() - lastProgress;
          if (idle >= stallMs) reject(new Error(`the model did not finish loading: no progress for ${Math.round(idle / 1000)} s (${params.modelDir}); check that its files are regular files on a working disk`));
          else stallTimer = setTimeout(check, stallMs - idle);
        };
        stallTimer = setTimeout(check, stallMs);
      });
      stalled.catch(() => {});
      let model: ModelInfo;
      try {
        model = await Promise.race([connection.sendRequest(InitializeRequest, params), exited, stalled]);
      } finally {
        clearTimeout(stallTimer);
      }
      if (this.child !== child) throw new Error('engine restarted during load');
      this._model = model;
      this.setState('ready');
      this.o.log(`Snout engine ready: ${model.modelType} from ${model.modelDir}, context ${model.contextLength}, provider ${model.provider}, prompt format ${model.promptFormat}`);
      this.o.onReady?.(model);
      return model;
    } catch (e) {
      const msg = (e as Error).message;
      // A model that fails to load is a setting problem, not a crash: stop the process and wait for the user.
      if (this.child === child && child.exitCode === null) {
        this.setState('error', msg);
        this.stopChild(child);
      }
      throw e;
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return; // an old process we replaced or stopped on purpose
    this.child = undefined;
    this.connection?.dispose();
    this.connection = undefined;
    this._model = undefined;
    if (this.disposed || this._state === 'error' || this._state === 'stopped') return;
    // A minute of good service forgives earlier crashes.
    if (Date.now() - this.startedAt > 60_000) this.crashes = 0;
    this.crashes++;
    const { initial, max } = this.o.backoffMs ?? { initial: 1000, max: 30_000 };
    const giveUp = this.crashes > (this.o.maxCrashes ?? 5);
    const delay = giveUp ? undefined : Math.min(max, initial * 2 ** (this.crashes - 1));
    this.o.log(`engine exited unexpectedly (code ${code}, signal ${signal}); ${delay === undefined ? 'giving up after repeated crashes' : `restarting in ${delay} ms`}`);
    this.o.onCrash?.({ code, signal, crashes: this.crashes, restartInMs: delay });
    if (delay === undefined) {
      this.setState('error', 'engine keeps crashing');
      return;
    }
    this.setState('restarting');
    this.restartTimer = setTimeout(() => { this.start().catch((e) => this.o.log(`restart failed: ${(e as Error).message}`)); }, delay);
  }

  private async ready(): Promise<MessageConnection> {
    if (this._state !== 'ready' || !this.connection) await this.start();
    return this.connection!;
  }

  /** Runs `send` with a jsonrpc cancellation token tied to `token`: cancelling sends $/cancelRequest to the engine. */
  private async withCancel<T>(token: CancelToken | undefined, send: (c: MessageConnection, t: CancellationTokenSource) => Promise<T>): Promise<T> {
    const connection = await this.ready();
    const cts = new CancellationTokenSource();
    const sub = token?.onCancellationRequested(() => cts.cancel());
    if (token?.isCancellationRequested) cts.cancel();
    try {
      return await send(connection, cts);
    } finally {
      sub?.dispose();
      cts.dispose();
    }
  }

  complete(params: CompleteParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult> {
    return this.withCancel(token, async (c, cts) => {
      if (onText) this.tokenListeners.set(params.id, onText);
      try {
        return await c.sendRequest(CompleteRequest, params, cts.token);
      } finally {
        this.tokenListeners.delete(params.id);
      }
    });
  }

  ask(params: AskParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult> {
    return this.withCancel(token, async (c, cts) => {
      if (onText) this.tokenListeners.set(params.id, onText);
      try {
        return await c.sendRequest(AskRequest, params, cts.token);
      } finally {
        this.tokenListeners.delete(params.id);
      }
    });
  }

  /** Background indexing (snout/index); progress arrives through onProgress with kind 'index' and this id. */
  index(params: IndexParams, token?: CancelToken): Promise<IndexResult> {
    return this.withCancel(token, (c, cts) => c.sendRequest(IndexRequest, params, cts.token));
  }

  async status(): Promise<StatusResult | undefined> {
    if (!this.connection || this._state !== 'ready') return undefined;
    return this.connection.sendRequest(StatusRequest);
  }

  /** Stops the running engine (politely, then by signal) and starts a fresh one. */
  async restart(): Promise<ModelInfo> {
    this.crashes = 0;
    await this.stop();
    return this.start();
  }

  /** Stops the engine process (also while the remote backend is in use); a later start() spawns a fresh one. */
  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.setState('stopped');
    // A load in flight belongs to the process being stopped; a fresh start must not wait on it.
    this.starting?.catch(() => {});
    this.starting = undefined;
    if (child) await this.stopChild(child);
  }

  private async stopChild(child: ChildProcess): Promise<void> {
    if (this.child === child) {
      this.child = undefined;
      const c = this.connection;
      this.connection = undefined;
      this._model = undefined;
      if (c) {
        await Promise.race([c.sendRequest(ShutdownRequest).catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
        c.dispose();
      }
    }
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.kill('SIGTERM');
    await gone;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.setState('stopped');
    if (child) await this.stopChild(child);
    this.tokenListeners.clear();
  }
}
