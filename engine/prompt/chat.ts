// Renders an ask conversation: the model's own chat_template (tokenizer_config.json, run by @huggingface/jinja) when
// it has one, else a plain "User:/Assistant:" layout. Repository files go first (in front of the first user message
// for templates, as comment blocks for the plain layout). Over budget: drop files from the end, then the oldest
// messages (never the last), then trim the front of the rendered prompt.
import type { TokenizerLike } from '../generate/types';
import type { ChatMessage, RepoFile } from '../protocol';
import { repositoryContext } from './context-text';
import { CachedTokenizer } from './cached-tokenizer';
import { encodeSegments } from './segments';
import { renderTemplate } from './template';
import type { RenderedPrompt } from './completion';

/** The rendered text may be this many times the characters that went in (a template adds framing per message). */
const TEMPLATE_GROWTH = 4;

async function renderText(tok: TokenizerLike, messages: ChatMessage[], files: RepoFile[]): Promise<{ text: string; bos: boolean }> {
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
    let inChars = 0;
    for (const m of msgs) inChars += m.content.length + 16;
    const text = await renderTemplate(tok.chatTemplate, { messages: msgs, add_generation_prompt: true, bos_token: bosToken, eos_token: eosToken },
      { maxChars: TEMPLATE_GROWTH * inChars + 64 * 1024 });
    return { text, bos: false }; // templates write their own BOS
  }
  const names = { system: 'System', user: 'User', assistant: 'Assistant' } as const;
  const turns = messages.map((m) => `${names[m.role]}: ${m.content.trim()}\n\n`).join('');
  return { text: `${context}${turns}Assistant:`, bos: true };
}

/** Largest n in [lo, hi] with ok(n) (ok monotone: true up to some n, false after); lo is assumed ok. */
async function largest(lo: number, hi: number, ok: (n: number) => Promise<boolean>): Promise<number> {
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (await ok(mid)) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/**
 * Every step is bounded by the budget, never by the request: files and messages are first cut by characters (no
 * token is longer than ~32), then the most files and the most recent turns that fit are found by binary search, so a
 * request with 10,000 messages costs a few renders, not 10,000.
 */
export async function renderChat(tok: TokenizerLike, messages: ChatMessage[], files: RepoFile[], budget: number): Promise<RenderedPrompt> {
  // Text beyond budget × 32 characters can never fit, so it is cut before rendering and tokenizing (tokenizing is
  // slow, and a hostile request may carry megabytes).
  const maxChars = budget * 32;
  let chars = 0;
  let kept = 0;
  while (kept < files.length && (chars += files[kept].text.length + files[kept].path.length) <= maxChars) kept++;
  // A leading system message stays; of the rest, the most recent turns within maxChars (the last one always, cut).
  const system = messages[0].role === 'system' && messages.length > 1 ? [messages[0]] : [];
  const turns = messages.slice(system.length);
  let first = turns.length - 1;
  let turnChars = Math.min(turns[first].content.length, maxChars);
  while (first > 0 && (turnChars += turns[first - 1].content.length) <= maxChars) first--;
  const cut = (m: ChatMessage) => (m.content.length > maxChars ? { ...m, content: m.content.slice(m.content.length - maxChars) } : m);
  const sys = system.map(cut);
  const recent = turns.slice(first).map(cut);
  const shortened = first > 0 || sys.some((m, i) => m !== system[i]) || recent.some((m, i) => m !== turns[first + i]);
  const encode = async (nFiles: number, nTurns: number) => {
    const r = await renderText(tok, [...sys, ...recent.slice(recent.length - nTurns)], files.slice(0, nFiles));
    // Tokenize in slices first where the tokenizer can (the render's text is bounded by the budget, not small).
    if (tok instanceof CachedTokenizer) await tok.warm([r.text]);
    return encodeSegments(tok, [{ text: r.text }], r.bos);
  };
  let nTurns = recent.length;
  let ids = await encode(kept, nTurns);
  const full = ids.length + (kept < files.length || shortened ? Math.ceil(Math.max(0, chars - maxChars) / 4) : 0);
  if (ids.length > budget && kept > 0) {
    // Most files that fit (token count grows with every file kept).
    kept = await largest(0, kept - 1, async (n) => (await encode(n, nTurns)).length <= budget);
    ids = await encode(kept, nTurns);
  }
  if (ids.length > budget && nTurns > 1) {
    // Then the most recent turns that fit (never fewer than the last one).
    nTurns = await largest(1, nTurns - 1, async (n) => (await encode(kept, n)).length <= budget);
    ids = await encode(kept, nTurns);
  }
  if (ids.length > budget) ids = ids.slice(ids.length - budget);
  const truncatedTokens = Math.max(0, full - ids.length);
  return { ids, truncatedTokens, overflowTokens: truncatedTokens, filesKept: kept };
}
