// snout serve --stdio                       the engine process the extension spawns (JSON-RPC on stdin/stdout)
// snout serve --http 127.0.0.1:PORT --model DIR [--token T] [--provider P] [--context N]
//                                           OpenAI-compatible local HTTP (loopback only, bearer token required)
import { UserError } from '../errors';
import { loadModel } from '../index';
import type { ExecutionProvider } from '../protocol';
import { isLoopback, newToken, serveHttp } from '../server/http';
import { EngineService, type ModelLoader } from '../server/service';
import { serveStdio } from '../server/stdio';

const loader: ModelLoader = (dir, o) => loadModel(dir, {
  provider: o.provider,
  onProgress: o.onProgress,
  contextLimit: o.contextLimit,
  attention: o.attention,
  weights: o.weights,
  cacheDir: o.cacheDir,
  log: (line) => process.stderr.write(`snout engine: ${line}\n`),
});

function flags(argv: string[]): Map<string, string | true> {
  const m = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UserError(`serve: unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) { m.set(a.slice(2), next); i++; } else m.set(a.slice(2), true);
  }
  return m;
}

export async function run(argv: string[]): Promise<number> {
  const f = flags(argv);
  if (f.has('stdio')) {
    const code = await serveStdio(loader);
    // Handles outside our control (onnxruntime threads, workers) must not keep an orphaned engine alive.
    setTimeout(() => process.exit(code), 500).unref();
    return code;
  }
  const http = f.get('http');
  if (typeof http !== 'string') throw new UserError('serve: expected --stdio or --http 127.0.0.1:PORT --model DIR [--token T]');
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(http);
  if (!m) throw new UserError(`serve: --http expects HOST:PORT, got ${http}`);
  const [, host, portText] = m;
  if (!isLoopback(host)) throw new UserError(`serve: refusing to listen on ${host}; --http binds to loopback only (127.0.0.1, ::1, localhost)`);
  const model = f.get('model');
  if (typeof model !== 'string') throw new UserError('serve: --http needs --model DIR');
  const given = f.get('token');
  const token = typeof given === 'string' ? given : newToken();
  const context = f.get('context');
  const service = new EngineService(loader, (level, message) => process.stderr.write(`snout engine [${level}] ${message}\n`));
  try {
    await service.load({
      modelDir: model,
      provider: (typeof f.get('provider') === 'string' ? f.get('provider') : undefined) as ExecutionProvider | undefined,
      contextLength: typeof context === 'string' ? Number(context) : undefined,
    });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const server = await serveHttp(service, { host, port: Number(portText), token, modelName: model });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : Number(portText);
  process.stdout.write(`snout: serving http://${host}:${port}/v1 (OpenAI-compatible)\n`);
  if (typeof given !== 'string') process.stdout.write(`snout: bearer token ${token}\n`);
  return new Promise<number>((resolve) => {
    const stop = () => { server.close(); void service.shutdown().finally(() => resolve(0)); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
