// Runs inside VS Code's extension host (loaded by @vscode/test-electron as extensionTestsPath): `run()` resolves
// when every check passed and rejects on the first failure, which makes VS Code exit non-zero.
// Checks what the API can see: activation, the contributed commands, and an inline suggestion committed into a
// document (trigger + commit are VS Code's own commands; the engine may still be loading, so it retries).
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(): Promise<void> {
  const ext = vscode.extensions.getExtension('snout.snout');
  assert.ok(ext, 'snout.snout is not loaded');
  await ext.activate();
  const all = new Set(await vscode.commands.getCommands(true));
  for (const c of ['snout.askRepository', 'snout.selectModel', 'snout.triggerCompletion', 'snout.restartEngine', 'snout.showMenu', 'snout.toggle']) {
    assert.ok(all.has(c), `command ${c} is not registered`);
  }

  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  assert.ok(folder, 'no workspace folder open');
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'shapes', 'report.py'));
  const editor = await vscode.window.showTextDocument(doc);
  const end = doc.lineAt(doc.lineCount - 1).range.end;
  await editor.edit((e) => e.insert(end, 'def total_area(shapes):\n    return sum('));
  const cursor = doc.lineAt(doc.lineCount - 1).range.end;
  editor.selection = new vscode.Selection(cursor, cursor);
  const before = doc.getText();

  const deadline = Date.now() + 180_000;
  const t0 = Date.now();
  while (doc.getText() === before && Date.now() < deadline) {
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await sleep(1500);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
  }
  const after = doc.getText();
  assert.notEqual(after, before, 'no inline suggestion was committed within 180 s');
  assert.ok(after.startsWith(before), 'the committed suggestion changed text before the cursor');
  const inserted = after.slice(before.length);
  assert.ok(!/<\|[a-z_]+\|>/.test(inserted), `special token in the suggestion: ${JSON.stringify(inserted)}`);
  console.log(`vscode-electron: committed ${JSON.stringify(inserted)} after ${Date.now() - t0} ms`);
}
