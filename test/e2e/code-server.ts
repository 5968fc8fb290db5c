// A throwaway code-server: its own config, user-data and extensions folders in a temp dir, loopback only, no auth.
// Nothing it writes lands in ~/.config or ~/.local (XDG_* point into the temp dir too).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { E2eTools } from '../../scripts/e2e-setup.mjs';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CodeServer {
  readonly userDataDir: string;
  readonly extensionsDir: string;
  private readonly configFile: string;
  private proc?: ChildProcess;
  private logChunks: string[] = [];
  port = 0;
  /** Extra environment for the next start() (e.g. the engine's test-only SNOUT_TEST_DELAY_MS). */
  extraEnv: NodeJS.ProcessEnv = {};

  constructor(private readonly tools: E2eTools, readonly dir: string) {
    this.userDataDir = path.join(dir, 'user-data');
    this.extensionsDir = path.join(dir, 'extensions');
    this.configFile = path.join(dir, 'config.yaml');
    mkdirSync(path.join(this.userDataDir, 'User'), { recursive: true });
    mkdirSync(this.extensionsDir, { recursive: true });
    writeFileSync(this.configFile, 'auth: none\ncert: false\n');
  }

  private env(): NodeJS.ProcessEnv {
    const xdg = path.join(this.dir, 'xdg');
    return {
      ...process.env,
      ...this.tools.codeServerEnv,
      ...this.extraEnv,
      XDG_CONFIG_HOME: path.join(xdg, 'config'),
      XDG_DATA_HOME: path.join(xdg, 'data'),
      XDG_CACHE_HOME: path.join(xdg, 'cache'),
      // The extension under test must not find a Node on PATH by accident: it should use the host's runtime.
      PATH: process.env.PATH,
    };
  }

  private args(): string[] {
    return [this.tools.codeServerEntry, '--config', this.configFile, '--user-data-dir', this.userDataDir,
      '--extensions-dir', this.extensionsDir];
  }

  /**
   * User settings, and the same as the server's Machine settings: the extension host runs on the server, where settings
   * of scope "machine" (snout.modelPath, snout.device) are read from Machine/settings.json only.
   */
  writeSettings(settings: Record<string, unknown>): void {
    writeFileSync(path.join(this.userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
    mkdirSync(path.join(this.userDataDir, 'Machine'), { recursive: true });
    writeFileSync(path.join(this.userDataDir, 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
  }

  /** `code-server --install-extension x.vsix`; returns the CLI output. */
  installExtension(vsix: string): string {
    const r = spawnSync(this.tools.node24, [...this.args(), '--install-extension', vsix, '--force'],
      { env: this.env(), encoding: 'utf8', timeout: 180_000 });
    const out = `${r.stdout}${r.stderr}`;
    if (r.status !== 0) throw new Error(`--install-extension failed (${r.status ?? r.signal}):\n${out}`);
    return out;
  }

  listExtensions(): string[] {
    const r = spawnSync(this.tools.node24, [...this.args(), '--list-extensions', '--show-versions'],
      { env: this.env(), encoding: 'utf8', timeout: 60_000 });
    return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }

  async start(): Promise<string> {
    this.port = await freePort();
    const args = [...this.args(), '--bind-addr', `127.0.0.1:${this.port}`, '--auth', 'none',
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override'];
    // detached: its own process group, so stop() ends the server, its extension host and the engine together.
    this.proc = spawn(this.tools.node24, args, { env: this.env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // If the test process dies without after() (timeout, crash), the detached group must not outlive it.
    const group = this.proc.pid!;
    process.once('exit', () => { try { process.kill(-group, 'SIGKILL'); } catch { /* already gone */ } });
    const keep = (b: Buffer) => { this.logChunks.push(b.toString()); if (this.logChunks.length > 400) this.logChunks.shift(); };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    const url = `http://127.0.0.1:${this.port}`;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`code-server exited (${this.proc.exitCode}):\n${this.log()}`);
      try {
        const res = await fetch(`${url}/healthz`);
        if (res.ok) return url;
      } catch { /* not listening yet */ }
      await sleep(250);
    }
    throw new Error(`code-server did not answer on ${url} within 120 s:\n${this.log()}`);
  }

  log(): string {
    return this.logChunks.join('').split('\n').slice(-60).join('\n');
  }

  /** Pids of processes whose command line mentions `pattern` and lives under our extensions dir. */
  pids(pattern: string): number[] {
    const r = spawnSync('pgrep', ['-f', `${this.extensionsDir}.*${pattern}`], { encoding: 'utf8' });
    return r.stdout.split('\n').map(Number).filter((n) => n > 0);
  }

  /** Every file under the user-data logs folder whose name matches `re`, newest first. */
  logFiles(re: RegExp): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
      if (!existsSync(d)) return;
      for (const n of readdirSync(d)) {
        const p = path.join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (re.test(n)) out.push(p);
      }
    };
    walk(path.join(this.userDataDir, 'logs'));
    return out.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  }

  readLog(re: RegExp): string {
    // Oldest file first (by creation): after a window reload there is one log per window session, and only the newest
    // still grows, so text appended to it stays at the end and offsets into earlier reads stay valid (callers slice
    // "the log since" with them). Newest-written first, the growing file came first and shifted everything after it.
    const born = (f: string) => { const s = statSync(f); return s.birthtimeMs || s.ctimeMs; };
    return this.logFiles(re).sort((a, b) => born(a) - born(b)).map((f) => readFileSync(f, 'utf8')).join('\n');
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.pid === undefined) return;
    const pid = p.pid;
    const engines = this.pids('engine.js');
    try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ }
    const deadline = Date.now() + 5000;
    while (p.exitCode === null && p.signalCode === null && Date.now() < deadline) await sleep(100);
    try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    // An engine that put itself in another group would outlive the server: end it by id.
    for (const e of [...engines, ...this.pids('engine.js')]) { try { process.kill(e, 'SIGKILL'); } catch { /* gone */ } }
  }
}
