// `npm run demo`: build the engine if needed, then complete a small repository-style fill-in-the-middle prompt with the
// default model (tiny-coder-hf, or env SNOUT_MODEL), streaming the text as it is generated, then print the stats.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
const model = process.env.SNOUT_MODEL ?? path.join(shared, 'models', 'tiny-coder-hf');
const cli = path.join(repoRoot, 'dist', 'cli.js');

if (!existsSync(path.join(repoRoot, 'node_modules', 'onnxruntime-node'))) {
  console.error('snout demo: dependencies are missing; run: ONNXRUNTIME_NODE_INSTALL=skip npm install');
  process.exit(1);
}
if (!existsSync(path.join(model, 'config.json'))) {
  console.error(`snout demo: no model at ${model} (set SNOUT_MODEL to a Hugging Face Llama/Qwen2 folder)`);
  process.exit(1);
}

// Build when dist/cli.js is missing or older than any engine source.
const newest = (dir) => readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
  const p = path.join(dir, e.name);
  return Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
}, 0);
if (!existsSync(cli) || statSync(cli).mtimeMs < newest(path.join(repoRoot, 'engine'))) {
  console.error('snout demo: building…');
  const b = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

// A repository-style FIM prompt in the model's own format (Qwen2.5-Coder tokens): one file of context, then the file
// being edited with the cursor inside replace(); the model fills in the middle.
const prefix = [
  'import re',
  '',
  String.raw`ESCAPE = re.compile(r'[\x00-\x1f\\"\b\f\n\r\t]')`,
  '',
  '',
  'def py_encode_basestring(s):',
  '    """Return a JSON representation of a Python string',
  '',
  '    """',
  '    def replace(match):',
  '',
].join('\n');
const suffix = ["    return '\"' + ESCAPE.sub(replace, s) + '\"'", '', ''].join('\n');
const prompt = '<|repo_name|>json\n<|file_sep|>json/__init__.py\nfrom .encoder import JSONEncoder\n' +
  `<|file_sep|>json/encoder.py\n<|fim_prefix|>${prefix}<|fim_suffix|>${suffix}<|fim_middle|>`;

console.log(`model: ${model}`);
console.log('--- prompt (file json/encoder.py, cursor at ▮) ---');
console.log(`${prefix}▮${suffix}`);
console.log('--- completion (streamed) ---');

const child = spawn(process.execPath, [cli, 'generate', '--model', model, '--prompt', prompt, '--max-tokens', '48', '--greedy', '--stop', '\n\n', '--json'],
  { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
// Stream everything but the final JSON line (the stats), which the CLI prints after the text.
let pending = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  pending += chunk;
  const cut = pending.lastIndexOf('\n{"ids"');
  let safe = cut >= 0 ? cut : Math.max(0, pending.length - 8);
  if (safe > 0 && /[\uD800-\uDBFF]/.test(pending[safe - 1])) safe--; // never split a surrogate pair
  process.stdout.write(pending.slice(0, safe));
  pending = pending.slice(safe);
});
child.on('close', (code) => {
  const jsonAt = pending.indexOf('{"ids"');
  if (code !== 0 || jsonAt < 0) {
    process.stdout.write(pending);
    process.exit(code || 1);
  }
  process.stdout.write(pending.slice(0, jsonAt));
  const { stats, finish_reason: finish } = JSON.parse(pending.slice(jsonAt));
  const rate = (tokens, ms) => (ms > 0 ? (tokens / (ms / 1000)).toFixed(1) : '-');
  console.log('--- stats ---');
  console.log(`prefill: ${stats.prefill_tokens} tokens in ${stats.prefill_ms} ms (${rate(stats.prefill_tokens, stats.prefill_ms)} tokens/s)`);
  console.log(`decode:  ${stats.decode_tokens} tokens in ${stats.decode_ms} ms (${rate(stats.decode_tokens, stats.decode_ms)} tokens/s)`);
  console.log(`finish: ${finish}; attention: ${stats.attention}; provider: ${stats.provider}`);
});
