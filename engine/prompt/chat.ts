// Renders an ask conversation: the model's own chat_template (tokenizer_config.json, run by @huggingface/jinja) when
// it has one, else a plain "User:/Assistant:" layout. Repository files go first (in front of the first user message
// for templates, as comment blocks for the plain layout). Over budget: drop files from the end, then the oldest
// messages (never the last), then trim the front of the rendered prompt.
import { Template } from '@huggingface/jinja';
import type { TokenizerLike } from '../generate/types';
import type { ChatMessage, RepoFile } from '../protocol';
import { repositoryContext } from './context-text';
import { encodeSegments } from './segments';
import type { RenderedPrompt } from './completion';

const templates = new Map<string, Template>();
function compiled(source: string): Template {
  let t = templates.get(source);
  if (!t) { t = new Template(source); templates.set(source, t); }
  return t;
}

function renderText(tok: TokenizerLike, messages: ChatMessage[], files: RepoFile[]): { text: string; bos: boolean } {
  const context = repositoryContext(files);
  if (tok.chatTemplate) {
    const msgs = messages.map((m) => ({ role: m.role, content: m.content }));
    if (context) {
      const i = msgs.findIndex((m) => m.role === 'user');
      const at = i >= 0 ? i : msgs.length;
      if (i >= 0) msgs[at] = { ...msgs[at], content: `${context}${msgs[at].content}` };
      else msgs.push({ role: 'user', content: context });
    }
    const bosToken = tok.bosId !== undefined ? tok.decode([tok.bosId], { skipSpecialTokens: false }) : '';
    const eosToken = tok.eosIds.length ? tok.decode([tok.eosIds[0]], { skipSpecialTokens: false }) : '';
    const text = compiled(tok.chatTemplate).render({ messages: msgs, add_generation_prompt: true, bos_token: bosToken, eos_token: eosToken });
    return { text, bos: false }; // templates write their own BOS
  }
  const names = { system: 'System', user: 'User', assistant: 'Assistant' } as const;
  const turns = messages.map((m) => `${names[m.role]}: ${m.content.trim()}\n\n`).join('');
  return { text: `${context}${turns}Assistant:`, bos: true };
}

export function renderChat(tok: TokenizerLike, messages: ChatMessage[], files: RepoFile[], budget: number): RenderedPrompt {
  // No token is longer than ~32 characters: text beyond budget × 32 characters can never fit, so it is cut before
  // tokenizing (tokenizing is slow, and a hostile request may carry megabytes).
  const maxChars = budget * 32;
  let chars = 0;
  let kept = 0;
  while (kept < files.length && (chars += files[kept].text.length + files[kept].path.length) <= maxChars) kept++;
  let msgs = messages.map((m) => (m.content.length > maxChars ? { ...m, content: m.content.slice(m.content.length - maxChars) } : m));
  const encode = (nFiles: number) => {
    const r = renderText(tok, msgs, files.slice(0, nFiles));
    return encodeSegments(tok, [{ text: r.text }], r.bos);
  };
  let ids = encode(kept);
  const full = ids.length + (kept < files.length || msgs.some((m, i) => m !== messages[i]) ? Math.ceil((chars - maxChars) / 4) : 0);
  if (ids.length > budget && kept > 0) {
    // Most files that fit: binary search (token count grows with every file kept).
    let lo = 0;
    let hi = kept - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (encode(mid).length <= budget) lo = mid; else hi = mid - 1;
    }
    kept = lo;
    ids = encode(kept);
  }
  while (ids.length > budget && msgs.length > 1) {
    // Keep a leading system message; drop the oldest turn after it.
    const drop = msgs[0].role === 'system' && msgs.length > 2 ? 1 : 0;
    msgs = [...msgs.slice(0, drop), ...msgs.slice(drop + 1)];
    ids = encode(kept);
  }
  if (ids.length > budget) ids = ids.slice(ids.length - budget);
  return { ids, truncatedTokens: Math.max(0, full - ids.length), filesKept: kept };
}
