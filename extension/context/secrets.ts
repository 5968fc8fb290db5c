// What never reaches a model's context, even a local one (prompts end up in logs, caches and bug reports), as data:
// secret file names and folders, file contents that are key material (the whole file is refused), token shapes (the
// token is masked, the rest of the file stays useful), and the folders and files that are never context at all.
// git's own ignore sources are honoured by scan.ts/gitignore.ts; everything here applies on top of them, to every file
// that can enter a prompt, the current file included. test/security/secret-rules.test.ts is the table of cases.
//
// Every pattern is linear: a literal start, bounded repeats, no nested quantifiers (a pattern runs on every
// completion over the whole current file, and a 1 MB document must cost milliseconds).

/** File-name patterns of secrets (matched against the base name, lower-cased). */
export const secretNames: RegExp[] = [
  /^\.env(rc)?([._-].*)?$/, // .env, .envrc, .env.local, .env-production, .env_test
  /^.+\.env$/, // prod.env, .dev.env
  /\.(pem|key|p8|p12|pfx|jks|keystore|ppk|asc|gpg|kdbx|ovpn|tfvars|tfstate|kubeconfig)$/,
  /\.(tfvars\.json|tfstate\.backup)$/,
  /^id_(rsa|dsa|ecdsa|ed25519)(\.pub)?$/,
  // credentials, secrets.prod.yaml, credentials.local.json, app-secrets.toml (data files, not code like secrets.ts)
  /^(secrets?|credentials?|creds)$/,
  /^(.{0,64}[._-])?(secrets?|credentials?|creds)([._-].{0,64})?\.(json|ya?ml|toml|ini|env|txt|conf|cfg|properties|xml|csv)$/,
  /^\.(netrc|_netrc|pgpass|npmrc|yarnrc|yarnrc\.yml|pypirc|git-credentials|htpasswd|dockercfg|s3cfg|boto|my\.cnf|vault-token|terraformrc)$/,
  /^_netrc$|^terraform\.rc$|^credentials\.tfrc\.json$/,
  /^(service-account|serviceaccount|client_secrets?|application_default_credentials).*\.json$/,
  /^kubeconfig(\..*)?$/,
  /^known_hosts$|^authorized_keys$/,
];

/** Folders whose whole content is secret (cloud, cluster, container, package-manager and key stores). */
export const secretDirs = new Set(['.ssh', '.gnupg', '.aws', '.azure', '.kube', '.docker', '.gcloud', 'gcloud',
  '.password-store', '.terraform.d', '.gem', '.pulumi', '.oci', '.minikube']);

export function isSecretPath(relPath: string): boolean {
  const parts = relPath.replace(/\\/g, '/').toLowerCase().split('/');
  if (parts.slice(0, -1).some((p) => secretDirs.has(p))) return true;
  const base = parts[parts.length - 1];
  return secretNames.some((re) => re.test(base));
}

/** Contents that make the whole file secret: private keys of every flavour, cloud service-account key files. */
const keyMaterial: RegExp[] = [
  /-----BEGIN ([A-Z0-9]{1,16} ){0,4}PRIVATE KEY( BLOCK)?-----/,
  /PuTTY-User-Key-File-\d:/,
];
// A service-account key file: both fields, found separately (one pattern spanning them with [\s\S]* backtracks
// quadratically over a large document).
const serviceAccount = [/"type"\s{0,64}:\s{0,64}"service_account"/, /"private_key"\s{0,64}:/];

/** True when the text is (or embeds) private key material: such a file is never used, not even redacted. */
export function holdsKeyMaterial(text: string): boolean {
  return keyMaterial.some((re) => re.test(text)) || serviceAccount.every((re) => re.test(text));
}

/**
 * Token shapes. The whole match is masked unless the pattern has a group named `v`, in which case only that group is
 * (the key name around a value stays, so the code still reads naturally).
 */
export const tokenShapes: { name: string; re: RegExp }[] = [
  { name: 'AWS access key id', re: /\b(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[0-9A-Z]{16}\b/g },
  { name: 'AWS secret access key', re: /(aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key|aws_?secret)["']?\s{0,8}[:=]\s{0,8}["']?(?<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi },
  { name: 'GitHub token', re: /\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b/g },
  { name: 'GitHub fine-grained token', re: /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/g },
  { name: 'GitLab token', re: /\bglpat-[A-Za-z0-9_-]{20,64}\b/g },
  { name: 'Stripe key', re: /\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{16,247}\b/g },
  { name: 'Stripe webhook secret', re: /\bwhsec_[A-Za-z0-9]{24,64}\b/g },
  { name: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,250}/g },
  { name: 'Slack webhook', re: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]{20,120}/g },
  { name: 'Google API key', re: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'OpenAI/Anthropic key', re: /\bsk-(proj-|ant-)?[A-Za-z0-9_-]{32,200}/g },
  { name: 'npm token', re: /\bnpm_[A-Za-z0-9]{36}\b/g },
  { name: 'PyPI token', re: /\bpypi-[A-Za-z0-9_-]{50,300}/g },
  // postgres://user:PASSWORD@host, mongodb+srv://..., redis://:PASSWORD@host
  { name: 'database URL password', re: /\b(postgres(ql)?|mysql|mariadb|mongodb(\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|clickhouse|cockroachdb|jdbc:[a-z]{2,16}):\/\/[^\s:/@'"`]{0,256}:(?<v>[^\s@/'"`]{1,256})@/gi },
  // .npmrc: //registry.npmjs.org/:_authToken=...  _auth=...  _password=...
  { name: 'npm auth setting', re: /(_authToken|_auth|_password)\s{0,8}=\s{0,8}(?<v>[^\s'"]{6,512})/g },
  // docker config.json: "auths": {"registry": {"auth": "base64"}} and identity tokens
  { name: 'docker registry auth', re: /"(auth|identitytoken|registrytoken)"\s{0,16}:\s{0,16}"(?<v>[A-Za-z0-9+/=._-]{8,4096})"/gi },
  // password = "..." / api_key: '...' / "client_secret": "..." in code and config
  { name: 'password or key assignment', re: /(password|passwd|pwd|secret|api_?key|access_?token|auth_?token|client_?secret|private_?token)["']?\s{0,8}[:=]\s{0,8}["'](?<v>[^"'\s]{8,512})["']/gi },
];

export interface SecretMatch { name: string; start: number; end: number }

/** Every token-shaped secret in `text` (ranges of what gets masked). */
export function findSecrets(text: string): SecretMatch[] {
  const out: SecretMatch[] = [];
  for (const { name, re } of tokenShapes) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const v = m.groups?.v;
      const start = v !== undefined ? m.index + m[0].lastIndexOf(v) : m.index;
      out.push({ name, start, end: start + (v ?? m[0]).length });
      if (m[0].length === 0) re.lastIndex++;
    }
  }
  return out;
}

/** True when the text holds key material or any token shape. */
export function looksLikeSecret(text: string): boolean {
  return holdsKeyMaterial(text) || findSecrets(text).length > 0;
}

/**
 * The text with every token masked ('*' for each character, so offsets and line structure stay exactly where they
 * were: the cursor of the current file still points at the same place), or undefined when the text is key material.
 */
export function redactSecrets(text: string): string | undefined {
  if (holdsKeyMaterial(text)) return undefined;
  const found = findSecrets(text);
  if (found.length === 0) return text;
  found.sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const f of found) {
    if (f.end <= at) continue;
    const s = Math.max(at, f.start);
    out += text.slice(at, s) + '*'.repeat(f.end - s);
    at = f.end;
  }
  return out + text.slice(at);
}

/** Never context, whatever the ignore files say: VCS data, dependencies, caches. */
export const alwaysSkippedDirs = new Set(['.git', '.hg', '.svn', 'node_modules', '__pycache__', '.venv', 'venv', '.tox',
  '.mypy_cache', '.pytest_cache', '.ruff_cache', '.next', '.nuxt', '.cache', '.idea', '.gradle', 'bower_components',
  '.terraform']);
/** Noise that says nothing about the code: lock files, minified bundles. */
export const noiseFile = /(^|\/)(package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|Cargo\.lock|composer\.lock|Gemfile\.lock|uv\.lock)$|\.min\.(js|css)$/;
