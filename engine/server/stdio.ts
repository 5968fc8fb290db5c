// `snout serve --stdio`: the engine process the extension spawns. JSON-RPC 2.0 (vscode-jsonrpc) on stdin/stdout,
// through SafeMessageReader so malformed input gets an error reply instead of silence. stdout is the protocol
// channel: nothing else may write to it (logs go to stderr and the snout/log notification). The process exits when
// stdin closes (the parent is gone) or after snout/shutdown.
import {
  createMessageConnection, ResponseError, StreamMessageWriter, type CancellationToken, type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  AskRequest, CompleteRequest, ErrorCodes, IndexRequest, InitializeRequest, LogNotification, ProgressNotification, ShutdownRequest,
  StatusRequest, TokenNotification, type LogParams,
} from '../protocol';
import { SafeMessageReader } from './safe-reader';
import { EngineService, ServiceError, type ModelLoader } from './service';
import { askParams, completeParams, indexParams, loadParams, ParamError } from './validate';

function toResponseError(e: unknown): ResponseError<void> {
  if (e instanceof ResponseError) return e;
  if (e instanceof ParamError) return new ResponseError(-32602, `Invalid params: ${e.message}`);
  if (e instanceof ServiceError) return new ResponseError(e.code, e.message);
  return new ResponseError(-32603, `Internal error: ${(e as Error)?.message ?? String(e)}`);
}

const abortOn = (token: CancellationToken) => {
  const c = new AbortController();
  if (token.isCancellationRequested) c.abort();
  else token.onCancellationRequested(() => c.abort());
  return c.signal;
};

export function serveStdio(loader: ModelLoader, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<number> {
  let connection: MessageConnection | undefined;
  const log = (level: LogParams['level'], message: string) => {
    process.stderr.write(`snout engine [${level}] ${message}\n`);
    connection?.sendNotification(LogNotification, { level, message }).catch(() => {});
  };
  const writer = new StreamMessageWriter(output);
  const service = new EngineService(loader, log);
  // Frames are bounded by what the loaded model's context can use (SNOUT_MAX_MESSAGE_BYTES can only lower it).
  const envMax = Number(process.env.SNOUT_MAX_MESSAGE_BYTES) || Infinity;
  const reader = new SafeMessageReader(input, (id, code, message) => {
    writer.write({ jsonrpc: '2.0', id, error: { code, message } } as never).catch(() => {});
  }, (m) => log('warn', m), () => Math.min(envMax, service.maxRequestBytes()));
  connection = createMessageConnection(reader, writer, {
    error: (m) => process.stderr.write(`snout engine [rpc] ${m}\n`),
    warn: (m) => process.stderr.write(`snout engine [rpc] ${m}\n`),
    info: () => {},
    log: () => {},
  });
  const conn = connection;
  const guard = <T>(f: () => Promise<T>) => Promise.resolve().then(f).catch((e) => {
    if (!(e instanceof ParamError || e instanceof ServiceError)) log('error', (e as Error)?.stack ?? String(e));
    throw toResponseError(e);
  });

  conn.onRequest(InitializeRequest.method, (p: unknown) => guard(() => service.load(loadParams(p), (x) => { conn.sendNotification(ProgressNotification, x).catch(() => {}); })));
  conn.onRequest(CompleteRequest.method, (p: unknown, token: CancellationToken) => guard(async () => {
    const params = completeParams(p);
    return service.complete(params, {
      client: 'stdio',
      signal: abortOn(token),
      onText: (text) => { conn.sendNotification(TokenNotification, { id: params.id, text }).catch(() => {}); },
      onProgress: (x) => { conn.sendNotification(ProgressNotification, x).catch(() => {}); },
    });
  }));
  conn.onRequest(AskRequest.method, (p: unknown, token: CancellationToken) => guard(async () => {
    const params = askParams(p);
    return service.ask(params, {
      signal: abortOn(token),
      onText: (text) => { conn.sendNotification(TokenNotification, { id: params.id, text }).catch(() => {}); },
      onProgress: (x) => { conn.sendNotification(ProgressNotification, x).catch(() => {}); },
    });
  }));
  conn.onRequest(IndexRequest.method, (p: unknown, token: CancellationToken) => guard(async () => {
    const params = indexParams(p);
    return service.index(params, {
      client: 'stdio',
      signal: abortOn(token),
      onProgress: (x) => { conn.sendNotification(ProgressNotification, x).catch(() => {}); },
    });
  }));
  conn.onRequest(StatusRequest.method, () => service.status());

  return new Promise<number>((resolve) => {
    let done = false;
    const exit = async (code: number) => {
      if (done) return;
      done = true;
      await service.shutdown().catch(() => {});
      conn.dispose();
      // Stop reading stdin so nothing keeps the process alive after snout/shutdown.
      (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(code);
    };
    conn.onRequest(ShutdownRequest.method, async () => {
      setImmediate(() => { void exit(0); });
      return null;
    });
    conn.onClose(() => { void exit(0); });
    conn.onError(([e]) => log('warn', `protocol: ${e?.message ?? e}`));
    conn.listen();
    log('info', `engine ready (pid ${process.pid}); waiting for snout/load`);
  });
}

export { ErrorCodes };
