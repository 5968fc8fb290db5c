// The secret rules as a table (extension/context/secrets.ts): file names, folders, key material and token shapes that
// must never reach a prompt, and look-alikes that must (a rule that catches everything is as useless as none).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findSecrets, holdsKeyMaterial, isSecretPath, looksLikeSecret, redactSecrets } from '../../extension/context/secrets';

const secretPaths = [
  '.env', '.env.local', '.envrc', 'prod.env', '.dev.env', '.env-production', '.env_test', 'config/secrets.prod.yaml',
  'secrets.yml', 'config/credentials.local.json', 'app-secrets.toml', 'credentials', 'creds.json',
  // cloud, database, package-manager, infrastructure and cluster tools
  'home/.aws/credentials', 'home/.aws/config', '.azure/accessTokens.json', '.config/gcloud/application_default_credentials.json',
  'service-account-prod.json', 'client_secret_123.json', '.pgpass', '.my.cnf', '.npmrc', '.yarnrc.yml', '.pypirc', '.netrc',
  '_netrc', '.git-credentials', '.docker/config.json', '.dockercfg', '.kube/config', 'kubeconfig', 'kubeconfig.prod',
  'cluster.kubeconfig', 'infra/terraform.tfvars', 'infra/prod.tfvars.json', 'infra/terraform.tfstate',
  'infra/terraform.tfstate.backup', '.terraformrc', 'credentials.tfrc.json', '.vault-token', '.s3cfg', '.boto',
  'keys/server.pem', 'keys/deploy.key', 'id_rsa', 'id_ed25519.pub', 'certs/store.p12', 'x/.ssh/config', '.gnupg/pubring.kbx',
];
const ordinaryPaths = [
  'src/env.ts', 'src/environment.ts', 'keyboard.ts', 'docs/credentials-guide.md', 'pem.py', 'src/keys.ts',
  'extension/context/secrets.ts', 'src/credentials.py', 'lib/secret_santa.rb', 'README.md', 'config.json', 'src/tfvars.ts',
  'docker/config.ts', 'envelope.go',
];

test('secret file names and folders: variants caught, look-alikes kept', () => {
  for (const p of secretPaths) assert.ok(isSecretPath(p), `should be secret: ${p}`);
  for (const p of ordinaryPaths) assert.ok(!isSecretPath(p), `should be ordinary: ${p}`);
});

const tokens: [string, string, string][] = [
  // [shape, text holding it, the secret part that must vanish]
  ['AWS access key id', 'key = "AKIAIOSFODNN7EXAMPLE"', 'AKIAIOSFODNN7EXAMPLE'],
  ['AWS temporary key id', 'id: ASIAY34FZKBOKMUTVV7A', 'ASIAY34FZKBOKMUTVV7A'],
  ['AWS secret key (credentials file, no id)', '[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
  ['AWS secret key (env)', 'export AWS_SECRET_ACCESS_KEY="je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"', 'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY'],
  ['AWS secret key (JSON)', '{"SecretAccessKey": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}', 'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY'],
  ['GitHub token', 'const t = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'],
  ['GitHub fine-grained token', 'GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQR', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQR'],
  ['Stripe key', "stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
  ['Slack token', 'SLACK = "xoxb-2638481924-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"', 'xoxb-2638481924-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
  ['Slack webhook', 'url = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"', 'T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'],
  ['Postgres URL password', 'DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app', 's3cr3t-Pa55'],
  ['MongoDB URL password', 'uri = "mongodb+srv://admin:hunter2hunter2@cluster0.mongodb.net/test"', 'hunter2hunter2'],
  ['Redis URL password', 'REDIS_URL=redis://:r3d1sPass@cache:6379/0', 'r3d1sPass'],
  ['npm auth token', '//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789', 'npm_abcdefghijklmnopqrstuvwxyz0123456789'],
  ['docker registry auth', '{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNzd29yZDEyMw=="}}}', 'dXNlcjpwYXNzd29yZDEyMw=='],
  ['password assignment', 'DB_PASSWORD = "correct-horse-battery"', 'correct-horse-battery'],
];

test('token shapes: each is found and masked, the rest of the file stays', () => {
  for (const [shape, text, secret] of tokens) {
    assert.ok(findSecrets(text).length > 0, `not found: ${shape}`);
    const masked = redactSecrets(text)!;
    assert.ok(!masked.includes(secret), `${shape} survived: ${masked}`);
    assert.equal(masked.length, text.length, `${shape}: masking keeps offsets`);
    assert.ok(looksLikeSecret(text));
  }
  const code = 'def connect(url):\n    return psycopg.connect(url)  # postgres://localhost/app\npassword: str = field()\n';
  assert.deepEqual(findSecrets(code), [], 'code without secrets is untouched');
  assert.equal(redactSecrets(code), code);
});

test('key material refuses the whole file', () => {
  for (const text of ['-----BEGIN RSA PRIVATE KEY-----\nMIIE\n', 'x\n-----BEGIN OPENSSH PRIVATE KEY-----\n', '-----BEGIN PRIVATE KEY-----',
    'PuTTY-User-Key-File-2: ssh-rsa', '{"type": "service_account", "project_id": "p", "private_key": "x"}']) {
    assert.ok(holdsKeyMaterial(text), text);
    assert.equal(redactSecrets(text), undefined);
  }
  assert.ok(!holdsKeyMaterial('-----BEGIN PUBLIC KEY-----\nMIIB\n'));
});

test('service-account check is linear: a 1 MB document takes milliseconds, not seconds', () => {
  // Before: /"type"\s*:\s*"service_account"[\s\S]*"private_key"/ backtracked over the whole rest per occurrence.
  const doc = '{"type": "service_account", '.repeat(40000).slice(0, 1 << 20);
  const t0 = performance.now();
  assert.equal(holdsKeyMaterial(doc), false);
  redactSecrets(doc);
  const ms = performance.now() - t0;
  // A generous bound (the super-linear pattern took ~5 s here): a failure means quadratic, not a slow machine.
  assert.ok(ms < 1500, `${ms.toFixed(0)} ms`);
});
