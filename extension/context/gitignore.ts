// git's ignore sources, honoured the way git honours them (gitignore(5)), with the `ignore` package as the matcher:
//   .gitignore in the path's own folder and every folder above it up to the repository root (deeper ones win; this
//     includes folders above the workspace when the workspace is a subfolder of a repository),
//   then $GIT_DIR/info/exclude,
//   then core.excludesFile (default $XDG_CONFIG_HOME/git/ignore, i.e. ~/.config/git/ignore).
// Within one source the last matching pattern decides (a "!" pattern re-includes); the first source with a decision
// wins. A path inside an ignored folder is ignored whatever a later pattern says (git never enters the folder).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';

/** One source of patterns: paths are tested relative to `base` (a folder, as an absolute path). */
export interface IgnoreSource {
  base: string;
  ig: Ignore;
}

const readText = (file: string) => fs.readFile(file, 'utf8').catch(() => undefined);

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}

/** The repository holding `dir`: its work-tree root and the git directory shared by its worktrees. */
export async function findRepository(dir: string): Promise<{ root: string; gitDir: string; commonDir: string } | undefined> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const dotGit = path.join(d, '.git');
    let gitDir: string | undefined;
    if (await isDir(dotGit)) gitDir = dotGit;
    else {
      const text = await readText(dotGit); // a worktree or submodule: "gitdir: <path>"
      const m = text && /^gitdir:\s*(.+?)\s*$/m.exec(text);
      if (m) gitDir = path.resolve(d, m[1]);
    }
    if (gitDir) {
      const common = await readText(path.join(gitDir, 'commondir'));
      return { root: d, gitDir, commonDir: common ? path.resolve(gitDir, common.trim()) : gitDir };
    }
    if (path.dirname(d) === d) return undefined;
  }
}

/** core.excludesFile from the git config files (repository config wins over the user's), else git's default. */
async function globalExcludesFile(commonDir: string | undefined): Promise<string | undefined> {
  const home = process.env.HOME || os.homedir();
  const xdg = process.env.XDG_CONFIG_HOME || path.join(home, '.config');
  const configs = [path.join(xdg, 'git', 'config'), path.join(home, '.gitconfig'), ...(commonDir ? [path.join(commonDir, 'config')] : [])];
  let value: string | undefined;
  for (const file of configs) {
    const text = await readText(file);
    if (!text) continue;
    let inCore = false;
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      const section = /^\[\s*([^\]\s"]+)[^\]]*\]\s*(.*)$/.exec(line);
      if (section) { inCore = section[1].toLowerCase() === 'core'; continue; }
      const kv = inCore && /^excludesfile\s*=\s*(.*?)\s*$/i.exec(line);
      if (kv) value = kv[1].replace(/^"(.*)"$/, '$1');
    }
  }
  if (value === undefined) return path.join(xdg, 'git', 'ignore');
  if (value === '') return undefined;
  return value.startsWith('~/') ? path.join(home, value.slice(2)) : path.resolve(commonDir ? path.dirname(commonDir) : home, value);
}

async function source(file: string, base: string): Promise<IgnoreSource | undefined> {
  const text = await readText(file);
  return text === undefined ? undefined : { base, ig: ignore().add(text) };
}

/** The .gitignore of folder `dir` (absolute), if any. */
export const folderSource = (dir: string) => source(path.join(dir, '.gitignore'), dir);

/**
 * The sources that apply to a whole workspace folder, lowest precedence first: the global excludes file, info/exclude,
 * then the .gitignore files of the folders above the workspace up to the repository root. (The workspace's own
 * .gitignore files are read by the scan as it walks.)
 */
export async function outerSources(workspace: string): Promise<IgnoreSource[]> {
  const repo = await findRepository(workspace);
  const out: IgnoreSource[] = [];
  const root = repo?.root ?? path.resolve(workspace);
  const global = await globalExcludesFile(repo?.commonDir);
  const g = global ? await source(global, root) : undefined;
  if (g) out.push(g);
  if (!repo) return out;
  const info = await source(path.join(repo.commonDir, 'info', 'exclude'), root);
  if (info) out.push(info);
  const above: string[] = [];
  for (let d = path.resolve(workspace); d !== root && path.dirname(d) !== d; ) above.unshift((d = path.dirname(d)));
  for (const d of above) {
    const s = await folderSource(d);
    if (s) out.push(s);
  }
  return out;
}

/**
 * Whether `abs` (a file, or a folder when `isDir`) is ignored by `sources` (lowest precedence first): the
 * highest-precedence source with a decision decides.
 */
export function ignoredBySources(sources: readonly IgnoreSource[], abs: string, isDir: boolean): boolean {
  for (let i = sources.length - 1; i >= 0; i--) {
    const s = sources[i];
    const rel = path.relative(s.base, abs).split(path.sep).join('/');
    if (rel === '' || rel.startsWith('..')) continue;
    const r = s.ig.test(isDir ? rel + '/' : rel);
    if (r.ignored) return true;
    if (r.unignored) return false;
  }
  return false;
}
