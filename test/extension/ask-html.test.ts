// The Ask panel's HTML: a strict CSP with a fresh nonce, only local resources, and the script carries the nonce.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { askHtml, contentSecurityPolicy, newNonce } from '../../extension/ask/html';

test('Ask panel: strict Content-Security-Policy, nonce on the only script, no remote content', () => {
  const csp = contentSecurityPolicy('vscode-webview://abc', 'N0NCE');
  const directives = new Map(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
  assert.deepEqual(directives.get('default-src'), ["'none'"]);
  assert.deepEqual(directives.get('script-src'), ["'nonce-N0NCE'"]);
  assert.deepEqual(directives.get('style-src'), ['vscode-webview://abc']);
  assert.ok(!/unsafe-(inline|eval)|https?:|\*/.test(csp), csp);

  const html = askHtml({ cspSource: 'vscode-webview://abc', scriptUri: 'vscode-webview://abc/dist/ask.js', styleUri: 'vscode-webview://abc/media/ask.css', nonce: 'N0NCE' });
  const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
  assert.deepEqual(scripts, ['<script nonce="N0NCE" src="vscode-webview://abc/dist/ask.js">']);
  assert.ok(html.includes(`content="${csp.replace(/'/g, '&#39;')}"`));
  assert.ok(!/\son\w+=/.test(html), 'no inline event handlers');
  assert.ok(!/https?:\/\//.test(html), 'no remote URLs');
  const a = newNonce();
  assert.match(a, /^[A-Za-z0-9]{16,}$/);
  assert.notEqual(a, newNonce());
});
