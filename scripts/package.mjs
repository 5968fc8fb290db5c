// `npm run package`: build, then pack a platform VSIX (linux-x64 by default) from an explicitly staged folder.
//
// Why stage instead of letting vsce walk node_modules: the only runtime dependency that is not bundled is
// onnxruntime-node (a native addon, external in esbuild.mjs), and of its 288 MB we need the JS, the package.json
// files and this platform's two binaries. vsce's dependency walk would take everything (or fail on the install-time
// deps it lists), so we copy exactly what runs and pack with --no-dependencies.
//
// vsce --no-dependencies never packs a top-level node_modules/, so the addon goes to dist/node_modules/: Node's
// resolution from dist/engine.js finds it there first (in the repository it finds ../node_modules as usual).
//
// Usage: node scripts/package.mjs [--target linux-x64] [--out snout-linux-x64.vsix] [--no-build]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const target = arg('--target', 'linux-x64');
const [platform, arch] = target.split('-');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.resolve(root, arg('--out', `${pkg.name}-${target}.vsix`));
const shared = path.resolve(process.env.SNOUT_SHARED ?? path.join(root, '..', 'shared'));
const stage = path.join(root, '.cache', `vsix-${target}`);

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
};

if (!process.argv.includes('--no-build')) run(process.execPath, ['esbuild.mjs']);

rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
const copy = (from, to, filter) => {
  if (!existsSync(from)) throw new Error(`missing ${path.relative(root, from)}`);
  cpSync(from, path.join(stage, to), { recursive: true, filter, dereference: true });
};

// 1. The bundles and their runtime assets (wasm grammars, workers). Source maps stay out: they double dist/.
copy(path.join(root, 'dist'), 'dist', (src) => !src.endsWith('.map') && !src.includes(`${path.sep}node_modules`));
if (existsSync(path.join(root, 'media'))) copy(path.join(root, 'media'), 'media');
for (const f of ['LICENSE', 'CHANGELOG.md']) if (existsSync(path.join(root, f))) copy(path.join(root, f), f);
// The extension's details page is the user's README: everything from its "details page ends here" comment on (the
// developers' pointers) stays out. The page has no repository to resolve relative links against (vsce refuses them):
// images that point into the repository are dropped and relative links keep only their text.
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const pageEnd = readme.indexOf('<!-- The VSIX\'s details page ends here');
writeFileSync(path.join(stage, 'README.md'), (pageEnd >= 0 ? readme.slice(0, pageEnd).trimEnd() + '\n' : readme)
  .replace(/!\[[^\]]*\]\((?!https?:)[^)]*\)\n?/g, '')
  .replace(/\[([^\]]+)\]\((?!https?:|#)[^)]*\)/g, '$1'));

// 2. onnxruntime-node: package.json, dist/*.js, bin/napi-v*/<platform>/<arch>/*; and onnxruntime-common's CJS build.
const nm = path.join(root, 'node_modules');
const ortDir = path.join(nm, 'onnxruntime-node');
const ortTo = 'dist/node_modules/onnxruntime-node';
copy(path.join(ortDir, 'package.json'), `${ortTo}/package.json`);
copy(path.join(ortDir, 'dist'), `${ortTo}/dist`, (src) => statSync(src).isDirectory() || src.endsWith('.js'));
let binaries = 0;
for (const napi of readdirSync(path.join(ortDir, 'bin'))) {
  const dir = path.join(ortDir, 'bin', napi, platform, arch);
  if (existsSync(dir)) { copy(dir, `${ortTo}/bin/${napi}/${platform}/${arch}`); binaries++; }
}
if (!binaries) throw new Error(`onnxruntime-node has no binaries for ${target}`);
const commonDir = path.join(nm, 'onnxruntime-common');
const commonTo = 'dist/node_modules/onnxruntime-common';
copy(path.join(commonDir, 'package.json'), `${commonTo}/package.json`);
copy(path.join(commonDir, 'dist', 'cjs'), `${commonTo}/dist/cjs`, (src) => statSync(src).isDirectory() || src.endsWith('.js') || src.endsWith('.json'));
// Its package.json says "type": "module" and maps require() to dist/cjs, which carries its own package.json.
for (const lic of ['LICENSE', 'README.md']) {
  if (existsSync(path.join(ortDir, lic))) copy(path.join(ortDir, lic), `${ortTo}/${lic}`);
}

// 3. The default model, so completion works out of the box.
const modelFiles = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'README.md'];
const modelSrc = path.join(shared, 'models', 'tiny-coder-hf');
if (existsSync(path.join(modelSrc, 'model.safetensors'))) {
  for (const f of modelFiles) if (existsSync(path.join(modelSrc, f))) copy(path.join(modelSrc, f), `models/tiny-coder-hf/${f}`);
} else {
  console.warn(`package: ${modelSrc} not found; the VSIX ships without a default model`);
}

// 4. The manifest: everything VS Code reads, nothing it does not (scripts and deps would only confuse vsce).
const manifest = { ...pkg };
delete manifest.scripts;
delete manifest.devDependencies;
delete manifest.dependencies;
delete manifest.bin;
delete manifest.private;
writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');

// The stage holds exactly what ships; an empty ignore file tells vsce so (and stops its warning).
writeFileSync(path.join(stage, '.vscodeignore'), '# staged explicitly by scripts/package.mjs\n');

// 5. Pack. vsce 3.9 runs on Node 20 (newer vsce needs 22).
const vsce = path.join(nm, '@vscode', 'vsce', 'vsce');
rmSync(out, { force: true });
run(process.execPath, [vsce, 'package', '--no-dependencies', '--target', target, '--out', out,
  '--allow-missing-repository', '--skip-license', '--no-update-package-json', '--no-git-tag-version'], { cwd: stage });

const mb = statSync(out).size / 1e6;
console.log(`package: ${path.relative(root, out)} ${mb.toFixed(1)} MB (${(mb / 1.048576).toFixed(1)} MiB)${mb > 40 ? ' (over the 40 MB target)' : ''}`);
