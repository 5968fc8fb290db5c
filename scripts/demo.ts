// `npm run demo [-- /path/to/repo [file] [line]]`: what the extension does on a keystroke, minus VS Code. It starts
// the real engine process, packs a repository with the extension's own packer, asks for a completion at a cursor,
// streams it, shapes it into ghost text, then "types" the first characters and asks again to show the prefix cache.
// Settings are the extension's defaults, read from package.json, so the demo is the product as shipped.
// `npm run demo -- --backend http://127.0.0.1:PORT --token-file F [--model NAME] [REPO …]` runs the same flow through a
// remote OpenAI-compatible server (another `snout serve --http`, vLLM, …) with the extension's remote backend.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CompleteResult, LoadParams, ModelInfo } from '../engine/protocol';
import type { Backend } from '../extension/engine/backend';
import type { ContextPacker, PackedContext } from '../extension/context/packer';
import type { WorkspaceFiles } from '../extension/context/files';

const repoRoot = path.resolve(__dirname, '..');
const enginePath = path.join(repoRoot, 'dist', 'engine.js');

function fail(message: string): never {
  console.error(`snout demo: ${message}`);
  process.exit(1);
}

/** Dependencies are checked before anything imports them, so a missing install says what to do. */
function checkDependencies(): void {
  for (const dep of ['onnxruntime-node', 'vscode-jsonrpc', 'web-tree-sitter', 'ignore', 'esbuild']) {
    if (!existsSync(path.join(repoRoot, 'node_modules', dep))) fail(`dependency ${dep} is missing; run: ONNXRUNTIME_NODE_INSTALL=skip npm install`);
  }
}

function modelDir(): string {
  const shared = process.env.SNOUT_SHARED ?? path.resolve(repoRoot, '../shared');
  const dir = process.env.SNOUT_MODEL ?? path.join(shared, 'models', 'tiny-coder-hf');
  if (!existsSync(path.join(dir, 'config.json'))) fail(`no model at ${dir} (set SNOUT_MODEL to a Hugging Face Llama/Qwen2 folder)`);
  return dir;
}

interface Settings { device: string; method: string; K: number; L: number; contextTokens: number; maxTokens: number }

/** The `snout.*` defaults from the extension manifest. */
function defaultSettings(): Settings {
  const props = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration.properties;
  const d = (key: string) => props[`snout.${key}`].default;
  return { device: d('device'), method: d('attention.method'), K: d('attention.K'), L: d('attention.L'), contextTokens: d('contextTokens'), maxTokens: d('maxTokens') };
}

const newestMtime = (dir: string): number => readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
  const p = path.join(dir, e.name);
  return Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
}, 0);

/** Rebuilds dist/ when the engine bundle is missing or older than any engine or extension source. */
function buildIfStale(): void {
  const sources = Math.max(newestMtime(path.join(repoRoot, 'engine')), newestMtime(path.join(repoRoot, 'extension')), statSync(path.join(repoRoot, 'esbuild.mjs')).mtimeMs);
  if (existsSync(enginePath) && statSync(enginePath).mtimeMs >= sources) return;
  console.log('building dist/ (sources changed)…');
  const b = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  if (b.status !== 0) fail('build failed');
}

interface Args { repo: string; file?: string; line?: number; backend?: string; tokenFile?: string; model?: string }

function parseArgs(all: string[]): Args {
  const flags: Record<string, string> = {};
  const argv: string[] = [];
  for (let i = 0; i < all.length; i++) {
    const m = /^--(backend|token-file|model)$/.exec(all[i]);
    if (!m) { argv.push(all[i]); continue; }
    if (all[i + 1] === undefined) fail(`${all[i]} needs a value`);
    flags[m[1]] = all[++i];
  }
  if (flags['token-file'] && !flags.backend) fail('--token-file goes with --backend URL');
  const repo = path.resolve(argv[0] ?? path.join(repoRoot, 'test', 'e2e', 'fixture-repo'));
  if (!existsSync(repo) || !statSync(repo).isDirectory()) fail(`${repo} is not a folder`);
  const line = argv[2] === undefined ? undefined : Number(argv[2]);
  if (line !== undefined && !(Number.isInteger(line) && line >= 1)) fail(`line must be a positive integer, got ${argv[2]}`);
  return { repo, file: argv[1], line, backend: flags.backend, tokenFile: flags['token-file'], model: flags.model };
}

/** The extension's remote backend (snout.backend.type openai) against `url`, the bearer token read from a file. */
async function startRemote(args: Args): Promise<{ engine: Backend; info: ModelInfo }> {
  const { RemoteBackend } = await import('../extension/remote/openai');
  let token: string | undefined;
  if (args.tokenFile) {
    try { token = readFileSync(args.tokenFile, 'utf8').trim(); } catch (e) { fail(`cannot read the token file: ${(e as Error).message}`); }
  }
  console.log(`remote backend: ${args.backend} (OpenAI-compatible: /v1/completions streamed, the prompt rendered here)`);
  const engine = new RemoteBackend({ url: args.backend!, model: args.model, apiKey: () => token, log: () => {}, timeoutMs: 120_000 });
  const t0 = performance.now();
  const info = await engine.start().catch((e: Error) => fail(e.message));
  console.log(`ready in ${ms(performance.now() - t0)}: ${info.modelDir}, context ${info.contextLength}, prompt format ${info.promptFormat}`);
  return { engine, info };
}

async function startEngine(model: string, s: Settings): Promise<{ engine: Backend; info: ModelInfo }> {
  const { EngineClient } = await import('../extension/engine/client');
  const params: LoadParams = { modelDir: model, provider: s.device as LoadParams['provider'], attention: { method: s.method as 'magicpig', K: s.K, L: s.L } };
  console.log(`engine: ${path.relative(repoRoot, enginePath)} (JSON-RPC over stdio), model ${model}`);
  console.log(`attention: ${s.method} K=${s.K} L=${s.L} (the extension's default), device ${s.device}`);
  // The engine attends short contexts exactly (types.ts SHORT_CONTEXT_MIN_INDEXED): the demo model's 1K context always is.
  if (s.method === 'magicpig') console.log(`  (prompts under ~1.35K tokens are attended exactly, where sampling would cost more than it saves: this demo model's context is 1K)`);
  let lastLine = '';
  const engine = new EngineClient({
    enginePath, runtime: process.execPath, loadParams: () => params, maxCrashes: 0,
    log: (line) => { if (/\[(warn|error)\]/.test(line)) console.log(`  engine ${line}`); },
    onProgress: (p) => {
      if (p.kind !== 'load') return; // prefill progress would interleave with the streamed tokens
      const line = `  load: ${p.message}${p.fraction === undefined ? '' : ` (${Math.round(100 * p.fraction)}%)`}`;
      if (line !== lastLine) console.log((lastLine = line));
    },
  });
  const t0 = performance.now();
  const info = await engine.start();
  console.log(`ready in ${ms(performance.now() - t0)}: ${info.modelType}, ${info.numLayers} layers, vocab ${info.vocabSize}, context ${info.contextLength}, provider ${info.provider}, prompt format ${info.promptFormat}`);
  return { engine, info };
}

async function scanRepository(repo: string, info: ModelInfo): Promise<{ store: WorkspaceFiles; packer: ContextPacker }> {
  const { WorkspaceFiles } = await import('../extension/context/files');
  const { scanWorkspace } = await import('../extension/context/scan');
  const { ContextPacker } = await import('../extension/context/packer');
  const { Recency } = await import('../extension/context/recency');
  const { TokenEstimator, initialCharsPerToken } = await import('../extension/context/tokens');
  const store = new WorkspaceFiles(repo);
  store.setFiles(await scanWorkspace(repo));
  if (store.list().length === 0) fail(`no context files in ${repo} (everything ignored, binary or secret?)`);
  const packer = new ContextPacker(store, new Recency(), new TokenEstimator(initialCharsPerToken(info.vocabSize)), path.basename(repo));
  return { store, packer };
}

/**
 * The file to complete in: the one given, else the last file (in path order: package modules after entry scripts)
 * that imports another file of the repository, else the largest code file.
 */
async function pickFile(store: WorkspaceFiles, given?: string): Promise<string> {
  if (given) {
    const rel = path.relative(store.root, path.resolve(store.root, given)).split(path.sep).join('/');
    if (!store.has(rel)) fail(`${rel} is not a context file of the repository (missing, ignored, binary or secret)`);
    return rel;
  }
  const { languageOfPath } = await import('../engine/code/languages');
  const { resolvedImports } = await import('../engine/code/imports');
  const code = store.list().filter((f) => languageOfPath(f.path));
  if (code.length === 0) fail('no source file the packer can parse (TypeScript, JavaScript, Python, …); pass one: npm run demo -- REPO FILE');
  let importer: string | undefined;
  for (const f of code.slice(0, 500)) {
    const text = (await store.read(f.path)) ?? '';
    const imports = await resolvedImports(f.path, text, languageOfPath(f.path)!, (p) => store.has(p)).catch(() => []);
    if (imports.some((i) => i.files.some((p) => p !== f.path))) importer = f.path;
  }
  return importer ?? [...code].sort((a, b) => b.size - a.size)[0].path;
}

const lineStarts = (text: string) => [0, ...[...text.matchAll(/\n/g)].map((m) => m.index! + 1)];

/**
 * The cursor: the end of `line` if given; else the start of the first empty line inside a function body; else the
 * end of the file, where the user is about to write the next definition.
 */
function pickCursor(text: string, line?: number): number {
  const starts = lineStarts(text);
  const lines = text.split('\n');
  if (line !== undefined) {
    const i = Math.min(line, lines.length) - 1;
    return starts[i] + lines[i].replace(/\r$/, '').length;
  }
  const indent = (l: string) => /^\s*/.exec(l)![0].length;
  const header = /^\s*(export\s+)?(async\s+)?(def|function|fn|func)\b/;
  let inFunction = false;
  for (let i = 0; i < lines.length; i++) {
    if (header.test(lines[i])) inFunction = true;
    else if (lines[i].trim() !== '' && indent(lines[i]) === 0) inFunction = false;
    const next = lines.slice(i + 1).find((l) => l.trim() !== '');
    if (inFunction && lines[i].trim() === '' && i > 0 && indent(lines[i - 1]) > 0 && next && indent(next) > 0) return starts[i];
  }
  return text.length;
}

/** The cursor's line split at the cursor, and the document after the line (what the ghost-text filters need). */
function lineContext(text: string, offset: number) {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const nl = text.indexOf('\n', offset);
  const lineEnd = nl < 0 ? text.length : nl;
  return { linePrefix: text.slice(lineStart, offset).replace(/\r$/, ''), lineSuffix: text.slice(offset, lineEnd).replace(/\r$/, ''), suffixAfterLine: text.slice(lineEnd) };
}

function printContext(packed: PackedContext, text: string, offset: number): void {
  console.log(`packed context (${packed.files.length} files, ~${packed.estimatedTokens} tokens estimated), in prompt order:`);
  packed.sources.forEach((s, i) => console.log(`  ${i + 1}. ${s.path}  ${s.kind === 'import' ? `[imported by ${packed.path}${s.shrunk ? ', shrunk to used definitions' : ''}]` : '[ranked]'}  ~${s.tokens} tokens`));
  console.log(`  ${packed.sources.length + 1}. ${packed.path}  [current file, fill-in-the-middle]`);
  const before = text.slice(0, offset).split('\n').slice(-4).join('\n');
  const after = text.slice(offset).split('\n').slice(0, 3).join('\n');
  console.log(`cursor at ${packed.path}:${text.slice(0, offset).split('\n').length} (▮):`);
  console.log(indentBlock(`${before}▮${after}`));
}

const indentBlock = (s: string) => s.split('\n').map((l) => `  │ ${l}`).join('\n');
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`);

interface Turn { result: CompleteResult; ghost: string; ttftMs: number; totalMs: number }

/** What every request shares: the engine, the packer, the loaded model, the settings and the file being edited. */
interface Session { engine: Backend; packer: ContextPacker; info: ModelInfo; settings: Settings; file: string }

/** Packs, sends snout/complete as the provider does (greedy, stop sequences by line), streams, shapes. */
async function completeAt({ engine, packer, info, settings: s, file }: Session, text: string, offset: number, id: string): Promise<Turn> {
  const { shapeCompletion, stopSequences } = await import('../extension/completion/filters');
  const packed = await packer.pack({ path: file, text, offset }, { contextTokens: s.contextTokens, maxTokens: s.maxTokens, modelContextLength: info.contextLength });
  if (id === 'c1') printContext(packed, text, offset);
  else console.log(packed.reused ? `packed context: the same file list as request 1 (the prompt before ${file} is byte-identical)` : 'packed context: re-ranked');
  const ctx = lineContext(text, offset);
  process.stdout.write('streamed tokens: ');
  const t0 = performance.now();
  let ttft = -1;
  const result = await engine.complete({
    id, repoName: packed.repoName, files: packed.files, path: packed.path, prefix: packed.prefix, suffix: packed.suffix,
    maxTokens: s.maxTokens, stop: stopSequences(ctx.lineSuffix), priority: 'completion', sampling: { temperature: 0 },
  }, undefined, (t) => {
    if (ttft < 0) ttft = performance.now() - t0;
    process.stdout.write(t);
  });
  const totalMs = performance.now() - t0;
  process.stdout.write(`⏎ [${result.finishReason}]\n`);
  packer.estimator.observe(packed.chars, result.stats.promptTokens + result.stats.truncatedTokens);
  if (id === 'c1' && result.stats.truncatedTokens > 0) console.log(`(the engine cut ${result.stats.truncatedTokens} tokens from the front to fit the context: the extension would re-rank once with its calibrated estimate, one prefix-cache miss; the demo keeps the file list)`);
  const ghost = shapeCompletion(result.text, ctx);
  console.log(ghost ? `ghost text (after the extension's filters), shown at the cursor:\n${indentBlock(`${ctx.linePrefix}▮${ghost}`)}` : 'ghost text: (none: the filters dropped it)');
  return { result, ghost, ttftMs: ttft < 0 ? totalMs : ttft, totalMs };
}

/** What the user types next: the suggestion's first word (its first few characters if it starts with punctuation). */
function typedFrom(turn: Turn): string {
  const source = turn.ghost.trim() ? turn.ghost : turn.result.text.replace(/<\|[a-z_]+\|>[\s\S]*$/, '');
  const m = /^\s*(\w{1,8}|\S{1,3})/.exec(source);
  return m && m[0].trim() ? m[0] : 'x';
}

function printStats(label: string, t: Turn): void {
  const st = t.result.stats;
  const rate = st.decodeMs > 0 ? (st.decodeTokens / (st.decodeMs / 1000)).toFixed(1) : '-';
  console.log(`${label}: first token ${ms(t.ttftMs)}, total ${ms(t.totalMs)}; cached ${st.cachedTokens}/${st.promptTokens} prompt tokens (${(100 * st.cachedTokens / Math.max(1, st.promptTokens)).toFixed(1)}%)` +
    `${st.truncatedTokens ? `, ${st.truncatedTokens} cut to fit the context` : ''}; prefill ${ms(st.prefillMs)}; decode ${st.decodeTokens} tokens in ${ms(st.decodeMs)} (${rate} tokens/s); ${st.attention} sampled ${(100 * st.sampledFraction).toFixed(1)}% of keys`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  checkDependencies();
  const settings = defaultSettings();
  buildIfStale();
  const { engine, info } = args.backend ? await startRemote(args) : await startEngine(modelDir(), settings);
  try {
    const { store, packer } = await scanRepository(args.repo, info);
    console.log(`\nrepository ${args.repo}: ${store.list().length} context files after .gitignore, binary and secret filters`);
    const file = await pickFile(store, args.file);
    const text = (await store.read(file)) ?? fail(`${file} is not readable text`);
    const offset = pickCursor(text, args.line);

    console.log('\n── request 1: the cursor lands in the file');
    const session: Session = { engine, packer, info, settings, file };
    const first = await completeAt(session, text, offset, 'c1');

    const typed = typedFrom(first);
    console.log(`\n── request 2: the user types ${JSON.stringify(typed)} (the extension would show the rest of the suggestion from its own cache; the demo asks the engine again to show its prefix cache)`);
    const second = await completeAt(session, text.slice(0, offset) + typed + text.slice(offset), offset + typed.length, 'c2');

    console.log('\n── timings');
    printStats('request 1 (cold)', first);
    printStats('request 2 (typed)', second);
  } finally {
    await engine.dispose();
  }
}

main().catch((e) => fail((e as Error).message));
