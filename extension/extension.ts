// Activation and wiring (filled in by the extension issue).
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(vscode.commands.registerCommand('snout.hello', () => undefined));
}

export function deactivate(): void {}
