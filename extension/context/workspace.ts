// VS Code glue for the packer: one WorkspaceFiles + ContextPacker per workspace folder, fed by editor events.
// Recency comes from editor focus and edits; a save refreshes the file (and, if it is in the packed context, the
// context from that file on); creates/deletes and ignore-file or files.exclude changes rescan (dropping context files
// that are gone). The file list is re-ranked only on a file switch or settings change, so the prompt before the
// current file stays byte-identical while the user types and auto-save saves.
import * as vscode from 'vscode';
import { filesExclude, type SnoutSettings } from '../settings';
import { WorkspaceFiles } from './files';
import { ContextPacker, type PackBudget, type PackedContext } from './packer';
import { Recency } from './recency';
import { inSkippedDir, isExcludedFile, scanWorkspace } from './scan';
import { isSecretPath } from './secrets';
import { TokenEstimator } from './tokens';

/** Files indexed per workspace folder: the packer needs the nearest few hundred, huge trees only cost time. */
const MAX_FILES = 20_000;

interface Root {
  folder: vscode.WorkspaceFolder;
  store: WorkspaceFiles;
  packer: ContextPacker;
  scanned: Promise<void>;
}

export class WorkspaceContext implements vscode.Disposable {
  private roots = new Map<string, Root>();
  private disposables: vscode.Disposable[] = [];
  private rescanTimer: NodeJS.Timeout | undefined;
  readonly estimator = new TokenEstimator();

  constructor(private readonly settings: () => SnoutSettings, private readonly log: (line: string) => void) {
    const w = vscode.workspace;
    this.disposables.push(
      vscode.window.onDidChangeActiveTextEditor((e) => e && this.touch(e.document.uri)),
      w.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length === 0) return;
        const r = this.locate(e.document.uri);
        if (!r) return;
        if (e.document.isDirty) r.root.store.overlay.set(r.rel, e.document.getText());
        else r.root.store.overlay.delete(r.rel);
        r.root.packer.recency.edited(r.rel, Date.now());
      }),
      w.onDidSaveTextDocument(async (doc) => {
        const r = this.locate(doc.uri);
        if (!r) return;
        r.root.store.overlay.delete(r.rel);
        await r.root.store.refresh(r.rel);
        r.root.packer.fileChanged(r.rel);
        if (/(^|\/)\.gitignore$/.test(r.rel)) this.scheduleRescan();
      }),
      w.onDidCloseTextDocument((doc) => {
        const r = this.locate(doc.uri);
        if (r) r.root.store.overlay.delete(r.rel);
      }),
      w.onDidChangeWorkspaceFolders(() => this.scheduleRescan()),
      w.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('files.exclude') || e.affectsConfiguration('snout.maxFileKB')) this.scheduleRescan();
      }),
    );
    const watcher = w.createFileSystemWatcher('**/*', false, true, false);
    // npm install, git operations and caches create files by the thousand where the scan never looks.
    const changed = (uri: vscode.Uri) => {
      if (!inSkippedDir(vscode.workspace.asRelativePath(uri, false).replace(/\\/g, '/'))) this.scheduleRescan();
    };
    watcher.onDidCreate(changed);
    watcher.onDidDelete(changed);
    this.disposables.push(watcher);
  }

  private scheduleRescan(): void {
    clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.refused.clear();
      for (const root of this.roots.values()) root.scanned = this.scan(root);
    }, 1500);
  }

  private async scan(root: Root): Promise<void> {
    const t0 = Date.now();
    const s = this.settings();
    // Indexing is usually instant; a notification appears only when it is not.
    let done = false;
    const slow = setTimeout(() => {
      if (done) return;
      void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Snout: indexing ${root.folder.name}…` },
        () => root.scanned);
    }, 1000);
    try {
      // One past the cap, to tell a tree of exactly MAX_FILES from a bigger one.
      const found = await scanWorkspace(root.folder.uri.fsPath, { exclude: filesExclude(root.folder), maxFileBytes: s.maxFileBytes, maxFiles: MAX_FILES + 1 });
      const files = found.slice(0, MAX_FILES);
      root.store.setFiles(files);
      // New files wait for the next ranking; files that are gone leave the context from where they were.
      for (const p of root.packer.contextPaths) if (!root.store.has(p)) root.packer.fileChanged(p);
      this.log(`indexed ${root.folder.name}: ${files.length} files in ${Date.now() - t0} ms`);
      if (found.length > MAX_FILES) this.tellFileCap(root.folder);
    } catch (e) {
      this.log(`indexing ${root.folder.name} failed: ${(e as Error).message}`);
    } finally {
      done = true;
      clearTimeout(slow);
    }
  }

  private toldFileCap = new Set<string>();

  /** Once per folder and session: indexing stopped at the cap, so some files never become context. */
  private tellFileCap(folder: vscode.WorkspaceFolder): void {
    const msg = `Snout: ${folder.name} has more than ${MAX_FILES.toLocaleString('en')} files; indexing stopped there, so files past them are never used as context.`;
    this.log(`${msg} Exclude generated or vendored folders with files.exclude or .gitignore.`);
    if (this.toldFileCap.has(folder.uri.toString())) return;
    this.toldFileCap.add(folder.uri.toString());
    void vscode.window.showInformationMessage(`${msg} Exclude generated or vendored folders (files.exclude or .gitignore) to choose which.`, 'Open files.exclude')
      .then((a) => { if (a) void vscode.commands.executeCommand('workbench.action.openSettings', 'files.exclude'); });
  }

  private rootFor(folder: vscode.WorkspaceFolder): Root {
    const key = folder.uri.toString();
    let root = this.roots.get(key);
    if (!root) {
      const store = new WorkspaceFiles(folder.uri.fsPath, this.settings().maxFileBytes);
      const packer = new ContextPacker(store, new Recency(), this.estimator, folder.name);
      root = { folder, store, packer, scanned: Promise.resolve() };
      const r = root;
      root.scanned = this.scan(r);
      this.roots.set(key, root);
    }
    return root;
  }

  /** The workspace folder holding `uri` and the '/'-separated path inside it. */
  private locate(uri: vscode.Uri): { root: Root; rel: string } | undefined {
    if (uri.scheme !== 'file' && uri.scheme !== 'vscode-remote') return undefined;
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    if (!folder) return undefined;
    const rel = vscode.workspace.asRelativePath(uri, false).replace(/\\/g, '/');
    return { root: this.rootFor(folder), rel };
  }

  touch(uri: vscode.Uri): void {
    const r = this.locate(uri);
    if (r) r.root.packer.recency.touch(r.rel);
  }

  /** Starts indexing every open workspace folder (on activation). */
  warmUp(): void {
    for (const f of vscode.workspace.workspaceFolders ?? []) this.rootFor(f);
    // Files left open from the last session are the best recency signal there is at startup; the active one last.
    for (const tab of vscode.window.tabGroups.all.flatMap((g) => g.tabs)) {
      if (tab.input instanceof vscode.TabInputText) this.touch(tab.input.uri);
    }
    const active = vscode.window.activeTextEditor?.document.uri;
    if (active) this.touch(active);
  }

  /**
   * Packs the context for a completion in `doc` (whose text, possibly with a suggestion applied, is `text`) at `offset`;
   * a file outside any workspace folder gets FIM only.
   */
  async pack(doc: vscode.TextDocument, text: string, offset: number, budget: PackBudget): Promise<PackedContext> {
    const r = this.locate(doc.uri);
    if (!r) {
      const name = doc.isUntitled ? 'untitled' : vscode.workspace.asRelativePath(doc.uri, false);
      const packer = this.loose ??= new ContextPacker(new WorkspaceFiles(''), new Recency(), this.estimator, 'scratch');
      return packer.pack({ path: name, text, offset }, budget);
    }
    await r.root.scanned;
    return r.root.packer.pack({ path: r.rel, text, offset }, budget);
  }

  private loose: ContextPacker | undefined;
  /** Per document URI: kept out of prompts by name, ignore rules or links (re-decided at each rescan). */
  private refused = new Map<string, Promise<boolean>>();

  /**
   * True when the file of `uri` must not enter a prompt even as the current file: ignored by git's rules or
   * files.exclude, a secret by name, a link. Files outside any workspace folder are judged by name only.
   */
  refuses(uri: vscode.Uri): Promise<boolean> {
    const key = uri.toString();
    let r = this.refused.get(key);
    if (!r) {
      const loc = this.locate(uri);
      r = loc ? isExcludedFile(loc.root.folder.uri.fsPath, loc.rel, { exclude: filesExclude(loc.root.folder) }).catch(() => true)
        : Promise.resolve(isSecretPath(uri.path));
      if (this.refused.size > 256) this.refused.clear();
      this.refused.set(key, r);
    }
    return r;
  }

  /** Context for "Ask about repository": around the active editor's file if any, else the first folder. */
  async packForQuestion(doc: vscode.TextDocument | undefined, budget: PackBudget, questionChars = 0, question?: string) {
    const r = doc ? this.locate(doc.uri) : undefined;
    const folder = r?.root ?? (vscode.workspace.workspaceFolders?.[0] && this.rootFor(vscode.workspace.workspaceFolders[0]));
    if (!folder) return { files: [], sources: [], estimatedTokens: 0, root: undefined };
    await folder.scanned;
    const usable = r && doc && !(await this.refuses(doc.uri));
    // The open editors of this folder, for ranking by the question.
    const openEditors = vscode.window.tabGroups.all.flatMap((g) => g.tabs).map((t) => (t.input instanceof vscode.TabInputText ? this.locate(t.input.uri) : undefined))
      .filter((x): x is { root: Root; rel: string } => !!x && x.root === folder).map((x) => x.rel);
    const packed = await folder.packer.packForQuestion(usable ? { path: r.rel, text: doc.getText() } : undefined, budget, questionChars,
      question ? { text: question, openEditors } : undefined);
    return { ...packed, root: folder.folder.uri };
  }

  /** Starts a new ranking epoch everywhere (settings or model changed, or a prompt overflowed the window). */
  invalidate(): void {
    for (const r of this.roots.values()) r.packer.invalidate();
  }

  dispose(): void {
    clearTimeout(this.rescanTimer);
    this.disposables.forEach((d) => d.dispose());
    this.roots.clear();
  }
}
