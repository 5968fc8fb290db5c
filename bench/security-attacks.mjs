// The issue #18 attack table, measured against one build (dist folder given as argv[2]): wall time and the engine's
// peak RSS (VmHWM) per attack, each under a cap so a build that hangs reports "> cap". Prints one JSON line per attack.
// Run it against two builds side by side (before/after); figures go to bench-results/security.md.
//   node bench/security-attacks.mjs dist [attack ...]
import { spawn, spawnSync } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dist = path.resolve(process.argv[2] ?? 'dist');
const only = process.argv.slice(3);
const model = path.resolve(process.env.SNOUT_SHARED ?? path.join(import.meta.dirname, '../../shared'), 'models/tiny-coder-hf');
const MB = 2 ** 20;

function engine() {
  const child = spawn(process.execPath, [path.join(dist, 'engine.js')], { stdio: ['pipe', 'pipe', 'ignore'] });
  child.stdin.on('error', () => {});
  let buf = Buffer.alloc(0);
  const waiters = new Map();
  child.stdout.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    for (;;) {
      const e = buf.indexOf('\r\n\r\n');
      if (e < 0) return;
      const n = Number(/Content-Length: (\d+)/i.exec(buf.subarray(0, e))[1]);
      if (buf.length < e + 4 + n) return;
      const m = JSON.parse(buf.subarray(e + 4, e + 4 + n));
      buf = buf.subarray(e + 4 + n);
      if (m.id != null && waiters.has(m.id)) { waiters.get(m.id)(m); waiters.delete(m.id); }
    }
  });
  let id = 0;
  const send = (method, params) => {
    const i = ++id;
    const p = new Promise((r) => waiters.set(i, r));
    const b = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: i, method, params }));
    child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${b.length}\r\n\r\n`), b]));
    return p;
  };
  const peak = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) * 1024;
  return { child, send, peak, raw: (s) => child.stdin.write(s) };
}

const capped = (p, ms) => Promise.race([p, new Promise((r) => setTimeout(() => r('timeout'), ms))]);

async function withEngine(run) {
  const e = engine();
  try {
    await e.send('snout/load', { modelDir: model, provider: 'cpu' });
    return await run(e);
  } finally { e.child.kill('SIGKILL'); }
}

async function timed(e, what, promise, capMs) {
  const t0 = Date.now();
  const r = await capped(promise, capMs);
  const ms = Date.now() - t0;
  return { attack: what, ms: r === 'timeout' ? `> ${capMs}` : ms, outcome: r === 'timeout' ? 'no answer' : r.error ? `error: ${r.error.message.slice(0, 90)}` : 'answered', peakRssMB: Math.round(e.peak() / MB) };
}

const attacks = {
  'ask 10,000 messages': () => withEngine(async (e) => {
    const messages = Array.from({ length: 10000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i} `.repeat(8) }));
    messages.at(-1).role = 'user';
    const ask = e.send('snout/ask', { id: 'a', messages, maxTokens: 4 });
    const t0 = Date.now();
    const status = await capped(e.send('snout/status', {}), 120000);
    const statusMs = Date.now() - t0;
    const r = await timed(e, 'ask 10,000 messages', ask, 120000);
    return { ...r, statusAnsweredAfterMs: status === 'timeout' ? '> 120000' : statusMs };
  }),
  'raw 16M-character prompt': () => withEngine((e) => timed(e, 'raw 16M-character prompt', e.send('snout/complete', { id: 'p', prompt: 'x = 1\n'.repeat(16 * MB / 6), maxTokens: 4 }), 120000)),
  '60 MB stdio frame': () => withEngine((e) => {
    const files = Array.from({ length: 4 }, (_, i) => ({ path: `f${i}.py`, text: 'y = 2;'.repeat(15 * MB / 6) }));
    return timed(e, '60 MB stdio frame', e.send('snout/complete', { id: 'f', files, path: 'm.py', prefix: 'x', maxTokens: 1 }), 120000);
  }),
  'junk then a valid frame': () => withEngine((e) => { e.raw('garbage-without-newline'); return timed(e, 'junk then a valid frame', e.send('snout/status', {}), 10000); }),
  'K=12 L=1024, 780-token prompt': () => withEngine((e) => timed(e, 'K=12 L=1024, 780-token prompt', e.send('snout/complete', { id: 'k', prompt: 'def f(x):\n    return x + 1\n'.repeat(60), maxTokens: 8, attention: { method: 'magicpig', K: 12, L: 1024, sinks: 4, window: 16 } }), 300000)),
  'model folder: config.json FIFO': () => withEngine(async (e) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-fifo-'));
    try {
      cpSync(model, dir, { recursive: true });
      unlinkSync(path.join(dir, 'config.json'));
      execFileSync('mkfifo', [path.join(dir, 'config.json')]);
      return await timed(e, 'model folder: config.json FIFO', e.send('snout/load', { modelDir: dir, provider: 'cpu' }), 10000);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  }),
  'model folder: num_hidden_layers 1e9': async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'snout-layers-'));
    try {
      cpSync(model, dir, { recursive: true });
      const c = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...c, num_hidden_layers: 1e9 }));
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [path.join(dist, 'cli.js'), 'logits', '--model', dir, '--ids', '1,2'], { encoding: 'utf8', timeout: 60000 });
      return { attack: 'model folder: num_hidden_layers 1e9', ms: Date.now() - t0, outcome: `rc ${r.status}, ${r.stderr.trim().split('\n').length} stderr lines: ${r.stderr.trim().split('\n').at(-1).slice(0, 90)}` };
    } finally { rmSync(dir, { recursive: true, force: true }); }
  },
  'http port 99999': async () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(dist, 'cli.js'), 'serve', '--http', '127.0.0.1:99999', '--model', model], { encoding: 'utf8', timeout: 60000 });
    return { attack: 'http port 99999', ms: Date.now() - t0, outcome: `rc ${r.status}: ${r.stderr.trim().split('\n').at(-1).slice(0, 90)}` };
  },
};

for (const [name, run] of Object.entries(attacks)) {
  if (only.length && !only.some((o) => name.includes(o))) continue;
  process.stdout.write(JSON.stringify(await run()) + '\n');
}
process.exit(0);
