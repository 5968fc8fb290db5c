// The repository files as chat context text ("Repository files:" then `# Path:` blocks). Shared by the engine's chat
// rendering and by clients that send chat messages to a remote OpenAI-compatible server.
import type { RepoFile } from '../protocol';

export const filesText = (files: RepoFile[]) =>
  files.map((f) => `# Path: ${f.path}\n${f.text.endsWith('\n') || f.text === '' ? f.text : f.text + '\n'}\n`).join('');

/** What goes in front of the first user message; empty without files. */
export const repositoryContext = (files: RepoFile[]) => (files.length ? `Repository files:\n\n${filesText(files)}` : '');
