// Files that must never reach a model's context, even a local one: prompts end up in logs, caches and bug reports.

/** File-name patterns of secrets (matched against the base name, case-insensitive). */
const secretNames: RegExp[] = [
  /^\.env(\..*)?$/, // .env, .env.local, .env.production ...
  /\.(pem|key|p12|pfx|jks|keystore|ppk|asc|gpg|kdbx|ovpn)$/,
  /^id_(rsa|dsa|ecdsa|ed25519)(\.pub)?$/,
  /^(credentials|secrets?)(\.[a-z0-9]+)?$/, // credentials, credentials.json, secrets.yaml ...
  /^\.(netrc|pgpass|npmrc|pypirc|git-credentials|htpasswd)$/,
  /^(service-account|serviceaccount).*\.json$/,
  /^known_hosts$|^authorized_keys$/,
];

/** Folders whose whole content is secret. */
const secretDirs = new Set(['.ssh', '.gnupg', '.aws', '.azure', '.kube', '.docker']);

export function isSecretPath(relPath: string): boolean {
  const parts = relPath.toLowerCase().split('/');
  if (parts.slice(0, -1).some((p) => secretDirs.has(p))) return true;
  const base = parts[parts.length - 1];
  return secretNames.some((re) => re.test(base));
}

// PEM private keys of every flavour, PuTTY keys, and the common cloud credential shapes.
const secretContent: RegExp[] = [
  /-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----/,
  /PuTTY-User-Key-File-\d:/,
  /\bAKIA[0-9A-Z]{16}\b/, // AWS access key id
  /"type"\s*:\s*"service_account"[\s\S]*"private_key"/,
];

/** True when the text holds private key material or a known credential format. */
export function looksLikeSecret(text: string): boolean {
  return secretContent.some((re) => re.test(text));
}
