// Drives the VS Code workbench in code-server through chromium the way a user does: keyboard, command palette,
// quick open, the editor's own DOM (ghost text is rendered by Monaco, so the DOM is the user's view of it).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Monaco's inline-suggestion rendering: the inline part of the first line and, for multi-line suggestions, extra
// lines in a view zone. Class names as in VS Code's ghostTextView.
export const GHOST_SELECTOR = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text';

export class Workbench {
  private constructor(readonly browser: Browser, readonly page: Page, readonly screenshotDir: string) {}

  static async open(executablePath: string, url: string, folder: string, screenshotDir: string): Promise<Workbench> {
    mkdirSync(screenshotDir, { recursive: true });
    const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
    // The explorer shows the folder once the workbench is up and the remote file system answers.
    await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 90_000 });
    return new Workbench(browser, page, screenshotDir);
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(this.screenshotDir, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** F1, type, pick the first matching entry. `prefix` replaces the palette's '>' (quick open uses none). */
  private async quickPick(text: string, rowText: string, commandMode: boolean): Promise<void> {
    const { page } = this;
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(commandMode ? `>${text}` : text);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: rowText }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await page.keyboard.press('Enter');
  }

  /** Runs a command from the palette by its title ("Snout: Ask about repository"). */
  async runCommand(title: string): Promise<void> {
    await this.quickPick(title, title, true);
  }

  /** Titles of the commands the palette lists for `query`. */
  async paletteCommands(query: string): Promise<string[]> {
    const { page } = this;
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(`>${query}`);
    await page.waitForTimeout(500);
    const labels = await page.locator('.quick-input-widget .monaco-list-row .label-name').allInnerTexts();
    await page.keyboard.press('Escape');
    return labels.map((s) => s.replace(/\s+/g, ' ').trim());
  }

  /** Quick open (the palette without '>') a workspace file by relative path and wait for its editor. */
  async openFile(relPath: string): Promise<void> {
    const base = path.basename(relPath);
    await this.quickPick(relPath, base, false);
    await this.page.locator(`.tabs-container .tab[aria-label*="${base}"]`).first().waitFor({ timeout: 30_000 });
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor({ timeout: 30_000 });
  }

  /** Puts the cursor at the start of line `line` (1-based) of the active editor, through quick open's ':line'. */
  async goToLine(line: number): Promise<void> {
    const { page } = this;
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(`:${line}`);
    await page.waitForTimeout(300);
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden', timeout: 15_000 });
  }

  /** The texts of the notification toasts on screen. */
  async notifications(): Promise<string[]> {
    return this.page.evaluate(`Array.from(document.querySelectorAll('.notifications-toasts .notification-list-item-message'))
      .map((e) => e.innerText.replace(/\\s+/g, ' ').trim())`);
  }

  /** Focus the active editor and put the cursor at the end of the document. */
  async focusEditorEnd(): Promise<void> {
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await this.page.keyboard.press('Control+End');
  }

  /**
   * The ghost text as the user sees it; '' when none. Monaco draws the first line's part inline after the cursor
   * (.ghost-text-decoration spans) and further lines in a view zone: one .view-line per line whose .ghost-text spans
   * are the suggestion (the last may also carry the rest of the cursor's line, which is not ghost).
   */
  async ghostText(): Promise<string> {
    // A string, not a function: tsx's helpers (__name) do not exist in the page.
    return this.page.evaluate(`(() => {
      const text = (nodes) => Array.from(nodes).map((e) => (e.textContent || '').replace(/\\u00a0/g, ' ')).join('');
      const editor = document.querySelector('.editor-instance .monaco-editor');
      if (!editor) return '';
      const inline = text(editor.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview'));
      const first = editor.querySelector('.view-line .ghost-text');
      if (!first) return inline;
      const zone = first.closest('.view-line').parentElement;
      const lines = Array.from(zone.children).filter((c) => c.classList.contains('view-line'))
        .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
        .map((l) => text(l.querySelectorAll('.ghost-text')));
      return [inline, ...lines].join('\\n');
    })()`);
  }

  /** The editor DOM around the ghost text (each ghost span's line), for diagnosing a mismatch. */
  async ghostHtml(): Promise<string> {
    return this.page.evaluate(`Array.from(new Set(Array.from(document.querySelectorAll('${GHOST_SELECTOR}'))
      .map((e) => (e.parentElement && e.parentElement.parentElement || e).outerHTML))).join('\\n')`);
  }

  async ghostVisible(): Promise<boolean> {
    return (await this.page.locator(GHOST_SELECTOR).count()) > 0;
  }

  /** The status bar entries (text and accessible label) that mention `needle`. */
  async statusBarItems(needle: string): Promise<string[]> {
    const all: string[] = await this.page.evaluate(`Array.from(document.querySelectorAll('.statusbar-item'))
      .map((e) => e.innerText + ' | ' + (e.getAttribute('aria-label') || '') + ' | ' + e.id)`);
    return all.filter((s) => s.toLowerCase().includes(needle.toLowerCase()));
  }

  /**
   * The innermost frame of a webview (VS Code nests two iframes) that has an element matching `selector`, or, failing
   * that for half the time, any webview frame with text.
   */
  async webviewFrame(selector: string, timeoutMs = 30_000): Promise<Frame> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const nested = this.page.frames().filter((f) => f.parentFrame() && f.parentFrame() !== this.page.mainFrame());
      for (const f of nested) {
        try {
          if (await f.evaluate(`!!document.querySelector(${JSON.stringify(selector)})`)) return f;
          if (Date.now() - t0 > timeoutMs / 2 && String(await f.evaluate('document.body ? document.body.innerText : ""')).trim()) return f;
        } catch { /* frame navigating */ }
      }
      await this.page.waitForTimeout(100);
    }
    throw new Error(`no webview with ${selector} (or any text) appeared within ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
  }
}
