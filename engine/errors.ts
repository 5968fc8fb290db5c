// Errors caused by the user's input (bad model folder, bad flag, malformed request). They are reported as one clear
// line naming the file/field and the problem; anything else is a bug and keeps its stack.
export class UserError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'UserError';
  }
}
