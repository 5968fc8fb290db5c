// The Ask panel's webview in a real browser (Debian's chromium via playwright-core): the streamed markdown is
// rendered and sanitised (no script, no event handlers, no remote images), the CSP is in force, the file links and
// Cancel post the right messages. Skipped where chromium is not installed yet (the e2e setup installs it).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { askHtml } from '../../extension/ask/html';
import type { ToWebview } from '../../extension/ask/messages';

const root = path.resolve(__dirname, '../..');
const browserPath = '/usr/bin/chromium';
const bundle = path.join(root, 'dist/ask.js');
const skip = !existsSync(browserPath) ? 'chromium not installed' : !existsSync(bundle) ? 'dist/ask.js not built (npm run build)' : false;
const origin = 'https://webview.test';

test('Ask webview: streams sanitised markdown, links context files, cancels; CSP blocks inline script', { skip, timeout: 60_000 }, async () => {
  const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('request', (r) => requests.push(r.url()));
    const html = askHtml({ cspSource: origin, scriptUri: `${origin}/dist/ask.js`, styleUri: `${origin}/media/ask.css` });
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.origin !== origin) return route.abort();
      if (url.pathname === '/panel.html') return route.fulfill({ contentType: 'text/html', body: html });
      const file = path.join(root, url.pathname);
      if (url.pathname === '/dist/ask.js' || url.pathname === '/media/ask.css') {
        return route.fulfill({ contentType: url.pathname.endsWith('.js') ? 'text/javascript' : 'text/css', body: readFileSync(file) });
      }
      return route.fulfill({ status: 404, body: '' });
    });
    // What VS Code provides inside a webview; posted messages are collected for the assertions.
    // (A string, not a function: tsx's helpers would not exist in the page.)
    await page.addInitScript({ content: 'window.posted = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.posted.push(m) });' });
    await page.goto(`${origin}/panel.html`);
    // Polled with evaluate (CDP), not waitForFunction: the page's CSP forbids the eval that one would need.
    const until = async (fn: () => boolean) => {
      for (let i = 0; i < 200 && !(await page.evaluate(fn)); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await page.evaluate(fn), `timed out; page errors: ${errors.join(' | ')}`);
    };
    await until(() => (window as unknown as { posted: { type: string }[] }).posted.some((m) => m.type === 'ready'));

    const send = (m: ToWebview) => page.evaluate((msg) => window.postMessage(msg, '*'), m);
    await send({ type: 'start', question: 'Where is <b>sum</b> defined?', estimatedTokens: 321, files: [
      { path: 'src/util.ts', kind: 'import', shrunk: true, tokens: 120 }, { path: 'README.md', kind: 'ranked', shrunk: false, tokens: 40 },
    ] });
    const evil = 'It is in `src/util.ts`:\n\n```ts\nexport function sum(xs: number[]) {}\n```\n\n' +
      '<img src="https://evil.example/x.png" onerror="window.pwned = true">\n\n<script>window.pwned = true</script>\n\n' +
      '[click](javascript:window.pwned=true) and <a href="https://evil.example">there</a> <div onclick="window.pwned=true">x</div>\n';
    // Streamed in small pieces, as tokens arrive.
    for (let i = 0; i < evil.length; i += 7) await send({ type: 'token', text: evil.slice(i, i + 7) });
    await send({ type: 'done', finishReason: 'length', summary: '2 files · 42 tokens' });
    await until(() => document.getElementById('state')!.textContent === 'Done');

    const answer = await page.$eval('#answer', (el) => el.innerHTML);
    assert.match(answer, /<pre><code class="language-ts">export function sum/);
    assert.match(answer, /<code>src\/util\.ts<\/code>/);
    assert.ok(!/<script|<img|onerror|onclick|javascript:|href=/i.test(answer), answer);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned), undefined);
    assert.equal(await page.$eval('#question', (el) => el.innerHTML), 'Where is &lt;b&gt;sum&lt;/b&gt; defined?');
    assert.ok(!requests.some((u) => u.includes('evil.example')), requests.join('\n'));
    assert.equal(await page.$eval('#summary', (el) => el.textContent), '2 files · 42 tokens');
    assert.equal(await page.$eval('#context-title', (el) => el.textContent), 'Context: 2 files, ~321 tokens');

    await page.click('#files a >> text=src/util.ts');
    await send({ type: 'start', question: 'again', estimatedTokens: 1, files: [] });
    await page.click('#cancel');
    const posted = await page.evaluate(() => (window as unknown as { posted: unknown[] }).posted);
    assert.deepEqual(posted, [{ type: 'ready' }, { type: 'open', path: 'src/util.ts' }, { type: 'cancel' }]);

    // The CSP in force: an inline script added to the page does not run.
    await page.evaluate("document.body.append(Object.assign(document.createElement('script'), { textContent: 'window.pwned = true' }))");
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned), undefined);
  } finally {
    await browser.close();
  }
});
