// Attack table, row 1: secrets and ignored files must not reach a prompt. A scratch repository whose workspace is a
// subfolder, with every kind of leak the issue found; the whole path (scan → read → pack) is checked on what the
// engine would receive.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WorkspaceFiles } from '../../extension/context/files';
import { ContextPacker } from '../../extension/context/packer';
import { Recency } from '../../extension/context/recency';
import { isExcludedFile, scanWorkspace } from '../../extension/context/scan';
import { TokenEstimator } from '../../extension/context/tokens';

let tmp: string;
let repo: string;
let ws: string;
const saved = { HOME: process.env.HOME, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
const put = (file: string, text: string) => { mkdirSync(path.dirname(file), { recursive: true }); writeFileSync(file, text); };

const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const GITHUB = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
const STRIPE = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const SLACK = 'xoxb-2638481924-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';
const DB_PASSWORD = 's3cr3t-Pa55';
const OUTSIDE = 'OUTSIDE-THE-WORKSPACE-7d1e';

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-secrets-'));
  repo = path.join(tmp, 'repo');
  ws = path.join(repo, 'packages', 'app'); // the workspace folder is a subfolder of the repository
  const home = path.join(tmp, 'home');
  process.env.HOME = home;
  process.env.XDG_CONFIG_HOME = path.join(home, '.config');
  put(path.join(home, '.gitconfig'), '[user]\n\tname = x\n[core]\n\texcludesFile = ~/global-ignore\n');
  put(path.join(home, 'global-ignore'), 'global-ignored.ts\n');
  put(path.join(repo, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  put(path.join(repo, '.git', 'info', 'exclude'), 'info-excluded.ts\n');
  put(path.join(repo, '.gitignore'), 'parent-ignored.ts\nscratch/\n');
  put(path.join(repo, 'packages', '.gitignore'), '!keep-me.ts\n');
  const file = (rel: string, text: string) => put(path.join(ws, rel), text);
  file('src/main.ts', 'import { f } from "./util";\nexport const main = () => f();\n');
  file('src/util.ts', 'export const f = () => 1;\n');
  // name variants
  for (const n of ['.envrc', 'prod.env', '.env-production', 'config/secrets.prod.yaml', 'config/credentials.local.json']) file(n, `NAME_VARIANT_${n.replace(/\W/g, '_')}=1\n`);
  // credential files of cloud, database, package-manager, infrastructure and cluster tools
  for (const n of ['.aws/credentials', '.pgpass', '.npmrc', '.pypirc', '.netrc', '.kube/config', 'kubeconfig', 'infra/terraform.tfvars',
    'infra/terraform.tfstate', '.docker/config.json']) file(n, `TOOL_CREDENTIAL_${n.replace(/\W/g, '_')}=1\n`);
  // tokens inside otherwise useful files
  file('src/aws.py', `import boto3\naws_secret_access_key = "${AWS_SECRET}"\nsession = boto3.Session()\n`);
  file('src/tokens.ts', `export const gh = "${GITHUB}";\nexport const stripe = "${STRIPE}";\nexport const slack = "${SLACK}";\n` +
    `export const db = "postgres://app:${DB_PASSWORD}@db:5432/app";\n`);
  // git ignore sources
  file('info-excluded.ts', 'export const INFO_EXCLUDED = 1;\n');
  file('parent-ignored.ts', 'export const PARENT_IGNORED = 1;\n');
  file('global-ignored.ts', 'export const GLOBAL_IGNORED = 1;\n');
  file('scratch/notes.ts', 'export const PARENT_IGNORED_FOLDER = 1;\n');
  // links out of the workspace
  put(path.join(tmp, 'outside', 'credentials'), `${OUTSIDE}\n`);
  linkSync(path.join(tmp, 'outside', 'credentials'), path.join(ws, 'src', 'hardlink.ts'));
  symlinkSync(path.join(tmp, 'outside', 'credentials'), path.join(ws, 'src', 'symlink.ts'));
  symlinkSync(path.join(tmp, 'outside'), path.join(ws, 'linked-folder'));
});

after(() => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  rmSync(tmp, { recursive: true, force: true });
});

/** Everything the engine would receive for an Ask with src/main.ts open (no token budget pressure). */
async function promptText(activeText = 'export const active = 1;\n'): Promise<{ text: string; paths: string[] }> {
  const store = new WorkspaceFiles(ws);
  store.setFiles(await scanWorkspace(ws));
  const packer = new ContextPacker(store, new Recency(), new TokenEstimator());
  const q = await packer.packForQuestion({ path: 'src/main.ts', text: activeText }, { contextTokens: 100000, maxTokens: 64 });
  return { text: q.files.map((f) => `${f.path}\n${f.text}`).join('\n'), paths: q.files.map((f) => f.path) };
}

describe('attack row 1: secrets reach the prompt', () => {
  test('secret name variants (.envrc, prod.env, .env-production, secrets.prod.yaml, credentials.local.json)', async () => {
    const { text, paths } = await promptText();
    assert.ok(paths.includes('src/util.ts'), 'ordinary files still get in');
    assert.ok(!text.includes('NAME_VARIANT'), text);
  });

  test('credential files of cloud, database, package-manager, infrastructure and cluster tools', async () => {
    assert.ok(!(await promptText()).text.includes('TOOL_CREDENTIAL'));
  });

  test('AWS secret keys without an AKIA/ASIA id', async () => {
    const { text, paths } = await promptText();
    assert.ok(paths.includes('src/aws.py'), 'the file stays useful');
    assert.ok(!text.includes(AWS_SECRET) && text.includes('boto3.Session()'));
  });

  test('tokens in code: GitHub, Stripe, Slack, database URL passwords', async () => {
    const { text } = await promptText();
    for (const s of [GITHUB, STRIPE, SLACK, DB_PASSWORD]) assert.ok(!text.includes(s), s);
    assert.ok(text.includes('export const gh = "'));
  });

  test('files excluded by .git/info/exclude', async () => {
    assert.ok(!(await promptText()).text.includes('INFO_EXCLUDED'));
  });

  test("files excluded by a parent folder's .gitignore when the workspace is a subfolder", async () => {
    const { text } = await promptText();
    assert.ok(!text.includes('PARENT_IGNORED'), 'file and folder patterns of the repository root apply');
  });

  test('files excluded by the global excludes file (core.excludesFile)', async () => {
    assert.ok(!(await promptText()).text.includes('GLOBAL_IGNORED'));
  });

  test('hard links and symlinks to files outside the repository', async () => {
    const { text, paths } = await promptText();
    assert.ok(!text.includes(OUTSIDE), text);
    assert.ok(!paths.some((p) => p.includes('hardlink') || p.includes('symlink') || p.startsWith('linked-folder')));
    // Swapped for a link after the scan: the read refuses it too.
    const store = new WorkspaceFiles(ws);
    store.setFiles([{ path: 'src/hardlink.ts', size: 10, mtimeMs: 0 }, { path: 'src/symlink.ts', size: 10, mtimeMs: 0 }]);
    assert.equal(await store.read('src/hardlink.ts'), undefined);
    assert.equal(await store.read('src/symlink.ts'), undefined);
  });

  test('the current file, even when it is ignored or holds tokens', async () => {
    for (const rel of ['parent-ignored.ts', 'info-excluded.ts', 'global-ignored.ts', 'scratch/notes.ts', '.envrc', 'src/hardlink.ts']) {
      assert.ok(await isExcludedFile(ws, rel), `${rel} must get no completions`);
    }
    assert.ok(!(await isExcludedFile(ws, 'src/main.ts')));
    assert.ok(!(await isExcludedFile(ws, 'src/new-unsaved.ts')));
    const { text } = await promptText(`const key = "${GITHUB}";\nexport const active = 1;\n`);
    assert.ok(!text.includes(GITHUB) && text.includes('export const active = 1;'));
  });
});
