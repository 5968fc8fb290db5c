// Prompt rendering: structured requests → token ids in the model's own format, within the context budget.
export { detectPromptFormat, layoutStops, type PromptFormat, type PromptFormatName } from './format';
export { completionTexts, renderCompletion, renderRepositoryPrefix, type CompletionParts, type RenderedPrompt, type RepositoryPrefix } from './completion';
export { renderChat } from './chat';
export { encodeSegments } from './segments';
export { CachedTokenizer } from './cached-tokenizer';
