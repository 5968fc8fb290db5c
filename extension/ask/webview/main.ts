// The Ask panel's script (bundled for the browser into dist/ask.js). Streams the answer as markdown rendered by
// marked and sanitised by DOMPurify before it touches the DOM; lists the context files as links; Cancel.
import DOMPurify from 'dompurify';
import { marked } from 'marked';
import type { AskFile, FromWebview, ToWebview } from '../messages';

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void };
const vscode = acquireVsCodeApi();

const $ = (id: string) => document.getElementById(id)!;
const answer = $('answer');
const state = $('state');
const cancel = $('cancel') as HTMLButtonElement;
let markdown = '';
let frame = 0;

marked.setOptions({ gfm: true, breaks: false });
// Links in an answer never navigate the webview: everything but the file list is inert text.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.removeAttribute('href');
    node.removeAttribute('target');
  }
});

function render(): void {
  frame = 0;
  const html = marked.parse(markdown, { async: false }) as string;
  answer.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'img', 'form', 'input'] });
}

function schedule(): void {
  if (!frame) frame = requestAnimationFrame(render);
}

function showFiles(files: AskFile[], estimatedTokens: number): void {
  const list = $('files');
  list.replaceChildren();
  $('context-title').textContent = `Context: ${files.length} files, ~${estimatedTokens} tokens`;
  for (const f of files) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '#';
    a.textContent = f.path;
    a.addEventListener('click', (e) => {
      e.preventDefault();
      vscode.postMessage({ type: 'open', path: f.path });
    });
    const note = document.createElement('span');
    note.className = 'note';
    note.textContent = ` ${f.reason ?? (f.kind === 'import' ? 'imported by the active file' : f.kind === 'current' ? 'active file' : 'recent or nearby')}${f.shrunk ? ', definitions only' : ''} · ${f.tokens} tokens`;
    li.append(a, note);
    list.append(li);
  }
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const m = event.data;
  switch (m.type) {
    case 'start':
      markdown = '';
      answer.replaceChildren();
      $('question').textContent = m.question;
      $('summary').textContent = '';
      showFiles(m.files, m.estimatedTokens);
      state.textContent = 'Thinking…';
      cancel.disabled = false;
      break;
    case 'token':
      markdown += m.text;
      state.textContent = 'Answering…';
      schedule();
      break;
    case 'done':
      render();
      state.textContent = m.finishReason === 'cancelled' ? 'Cancelled' : 'Done';
      $('summary').textContent = m.summary;
      cancel.disabled = true;
      break;
    case 'error':
      state.textContent = 'Error';
      $('summary').textContent = m.message;
      cancel.disabled = true;
      break;
  }
});

cancel.addEventListener('click', () => {
  cancel.disabled = true;
  state.textContent = 'Cancelling…';
  vscode.postMessage({ type: 'cancel' });
});

vscode.postMessage({ type: 'ready' });
