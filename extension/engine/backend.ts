// What the completion provider and the Ask panel talk to: the local engine process or a remote OpenAI-compatible
// server (snout.backend.type), behind one surface. Switching stops the one not in use (the local engine frees its RAM).
// No vscode import.
import type { AskParams, CompleteParams, CompleteResult, IndexParams, IndexResult, ModelInfo } from '../../engine/protocol';
import type { CancelToken, EngineState } from './client';

export interface Backend {
  readonly state: EngineState;
  readonly model: ModelInfo | undefined;
  start(): Promise<ModelInfo>;
  complete(params: CompleteParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult>;
  ask(params: AskParams, token?: CancelToken, onText?: (text: string) => void): Promise<CompleteResult>;
  /** Background indexing; only the local engine has it (a remote server keeps its own cache). */
  index?(params: IndexParams, token?: CancelToken): Promise<IndexResult>;
  restart(): Promise<ModelInfo>;
  /** Stops (frees the engine's RAM, closes remote requests); start() brings it back. */
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

export type BackendKind = 'local' | 'openai';

export class BackendSwitch implements Backend {
  private remote: Backend | undefined;
  private kind: BackendKind = 'local';

  constructor(readonly local: Backend, private readonly makeRemote: () => Backend) {}

  get current(): Backend {
    return this.kind === 'openai' ? (this.remote ??= this.makeRemote()) : this.local;
  }

  get isRemote(): boolean {
    return this.kind === 'openai';
  }

  get state(): EngineState { return this.current.state; }
  get model(): ModelInfo | undefined { return this.current.model; }
  start(): Promise<ModelInfo> { return this.current.start(); }
  complete(p: CompleteParams, t?: CancelToken, on?: (text: string) => void): Promise<CompleteResult> { return this.current.complete(p, t, on); }
  ask(p: AskParams, t?: CancelToken, on?: (text: string) => void): Promise<CompleteResult> { return this.current.ask(p, t, on); }
  get canIndex(): boolean { return this.current.index !== undefined; }
  index(p: IndexParams, t?: CancelToken): Promise<IndexResult> {
    const b = this.current;
    if (!b.index) return Promise.reject(new Error('this backend does not index'));
    return b.index(p, t);
  }

  /** Starts over with `kind` (and, for a remote, its current settings). */
  async use(kind: BackendKind): Promise<ModelInfo> {
    const old = this.remote;
    this.remote = undefined;
    await old?.dispose();
    if (kind === 'openai') await this.local.stop();
    this.kind = kind;
    return this.current.restart();
  }

  restart(): Promise<ModelInfo> {
    return this.use(this.kind);
  }

  stop(): Promise<void> {
    return this.current.stop();
  }

  async dispose(): Promise<void> {
    await Promise.all([this.local.dispose(), this.remote?.dispose()]);
  }
}
