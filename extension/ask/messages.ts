// Messages between the Ask panel (extension side) and its webview script. Shared by both bundles; no imports.

export interface AskFile {
  path: string;
  kind: 'import' | 'ranked' | 'current' | 'question';
  /** Why the file was chosen. */
  reason?: string;
  shrunk: boolean;
  tokens: number;
}

export type ToWebview =
  | { type: 'start'; question: string; files: AskFile[]; estimatedTokens: number }
  | { type: 'token'; text: string }
  | { type: 'done'; finishReason: string; summary: string }
  | { type: 'error'; message: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'cancel' }
  | { type: 'open'; path: string };
