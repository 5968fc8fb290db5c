// Runs Snout's in-editor smoke test in VS Code desktop with @vscode/test-electron (for machines that have VS Code or
// may download it; CI here cannot, so `npm test` does not run this: test/e2e/ covers the same ground in code-server).
//
//   npm run build && npx tsx test/vscode-electron/run.ts
//   VSCODE_EXECUTABLE=/usr/share/code/code npx tsx test/vscode-electron/run.ts   # use an installed VS Code
//
// Headless Linux needs a display: prefix with `xvfb-run -a`.
import { runTests } from '@vscode/test-electron';
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..');

async function main(): Promise<number> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'snout-electron-'));
  try {
    // The suite runs inside the extension host, which loads CommonJS: bundle it (vscode stays external).
    const suite = path.join(tmp, 'suite.js');
    await esbuild.build({ entryPoints: [path.join(__dirname, 'suite.ts')], outfile: suite, bundle: true,
      platform: 'node', format: 'cjs', target: 'node20', external: ['vscode'], logLevel: 'warning' });
    const workspace = path.join(tmp, 'fixture-repo');
    cpSync(path.join(repoRoot, 'test', 'e2e', 'fixture-repo'), workspace, { recursive: true });
    const userData = path.join(tmp, 'user-data');
    mkdirSync(path.join(userData, 'User'), { recursive: true });
    writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
      'snout.debounceMs': 25, 'snout.maxTokens': 24, 'editor.inlineSuggest.enabled': true,
      'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none', 'editor.autoIndent': 'none',
      'editor.autoClosingBrackets': 'never', 'editor.quickSuggestions': { other: false, comments: false, strings: false },
    }, null, 2));
    await runTests({
      vscodeExecutablePath: process.env.VSCODE_EXECUTABLE || undefined,
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: suite,
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', userData,
        '--extensions-dir', path.join(tmp, 'extensions')],
    });
    return 0;
  } catch (err) {
    console.error(`vscode-electron: ${(err as Error)?.message ?? err}`);
    return 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then((code) => { process.exitCode = code; });
