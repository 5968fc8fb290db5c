// The Ask panel's HTML: local script and stylesheet only, a strict Content-Security-Policy and a per-load nonce.
import { randomBytes } from 'node:crypto';

export interface AskHtmlInput {
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  nonce?: string;
}

export const newNonce = () => randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** No remote anything: default-src 'none'; scripts only with the nonce; styles and images only from the extension. */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "connect-src 'none'",
    "frame-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export function askHtml(i: AskHtmlInput): string {
  const nonce = i.nonce ?? newNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${esc(contentSecurityPolicy(i.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${esc(i.styleUri)}">
<title>Snout: Ask</title>
</head>
<body>
<header>
  <h1 id="question">Snout</h1>
  <div class="bar"><span id="state">Waiting…</span><button id="cancel" type="button" disabled>Cancel</button></div>
</header>
<details id="context" open><summary id="context-title">Context files</summary><ul id="files"></ul></details>
<main id="answer" aria-live="polite"></main>
<footer id="summary"></footer>
<script nonce="${nonce}" src="${esc(i.scriptUri)}"></script>
</body>
</html>`;
}
