// snout serve --stdio                       the engine process the extension spawns (JSON-RPC on stdin/stdout)
// snout serve --http 127.0.0.1:PORT --model DIR [--token-file F] [--provider P] [--context N]
//                                           OpenAI-compatible local HTTP (loopback only, bearer token required:
//                                           --token-file F, else env SNOUT_TOKEN, else a new random one printed once;
//                                           --token T still works but shows in the process list, so it warns)
import { readFileSync } from 'node:fs';
import path from 'node:path';
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
  // Checked before the model loads (which takes a while) so a typo fails at once.
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`serve: port ${portText} is out of range (0-65535; 0 picks a free one)`);
  const model = f.get('model');
  if (typeof model !== 'string') throw new UserError('serve: --http needs --model DIR');
  const { token, generated } = tokenFrom(f);
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
  // A name, not the path: replies go to whoever holds the token, and the path says who the user is.
  const server = await serveHttp(service, { host, port, token, modelName: path.basename(path.resolve(model)) });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  process.stdout.write(`snout: serving http://${host}:${bound}/v1 (OpenAI-compatible)\n`);
  if (generated) process.stdout.write(`snout: bearer token ${token}\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      // Requests in flight get a grace period; slow or stuck clients do not keep the process alive after it.
      const grace = Number(process.env.SNOUT_SHUTDOWN_GRACE_MS) || 5000;
      server.close();
      server.closeIdleConnections();
      const force = setTimeout(() => {
        process.stderr.write(`snout: connections still open after ${grace} ms; closing them\n`);
        server.closeAllConnections();
        resolve(0);
        setTimeout(() => process.exit(0), 500).unref();
      }, grace);
      force.unref();
      void service.shutdown().finally(() => server.close(() => { clearTimeout(force); resolve(0); }));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** --token-file, else SNOUT_TOKEN, else --token (visible to every local user in the process list), else a new one. */
function tokenFrom(f: Map<string, string | true>): { token: string; generated: boolean } {
  const file = f.get('token-file');
  const flag = f.get('token');
  let token: string | undefined;
  if (file !== undefined) {
    if (typeof file !== 'string') throw new UserError('serve: --token-file needs a file name');
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new UserError(`serve: cannot read --token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!token) throw new UserError(`serve: --token-file ${file} is empty`);
  } else if (process.env.SNOUT_TOKEN !== undefined) {
    token = process.env.SNOUT_TOKEN.trim();
    if (!token) throw new UserError('serve: SNOUT_TOKEN is empty');
  } else if (flag !== undefined) {
    if (typeof flag !== 'string' || !flag.trim()) throw new UserError('serve: --token needs a non-empty value (nobody could authenticate with an empty one)');
    process.stderr.write('snout: warning: --token is visible to other local users in the process list; prefer --token-file FILE or SNOUT_TOKEN\n');
    token = flag.trim();
  }
  return token ? { token, generated: false } : { token: newToken(), generated: true };
}
