// The workspace's candidate context files: every file a developer would call "the repository" and nothing else.
// Honours git's ignore sources as git does (gitignore.ts: nested .gitignore, the ones above a workspace that is a
// subfolder, info/exclude, core.excludesFile) and VS Code's files.exclude; skips binaries, huge files, links (a
// symlink or a hard link can point outside the workspace) and secrets by name here (by content when read, see
// files.ts). Node fs only, so it runs in tests without VS Code.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ignore from 'ignore';
import { hasBinaryExtension } from './decode';
import { folderSource, ignoredBySources, outerSources, type IgnoreSource } from './gitignore';
import { alwaysSkippedDirs, isSecretPath, noiseFile } from './secrets';

export { alwaysSkippedDirs };

export interface ScannedFile {
  /** Workspace-relative, '/'-separated. */
  path: string;
  size: number;
  mtimeMs: number;
}

export interface ScanOptions {
  /** Glob patterns whose value is true in files.exclude (VS Code glob syntax, mostly gitignore-compatible). */
  exclude?: string[];
  /** Files larger than this never enter the context (snout.maxFileKB). */
  maxFileBytes?: number;
  /** Stop after this many files (huge monorepos): the packer only needs the nearest few hundred. */
  maxFiles?: number;
}

/** `a/{b,c}/*.{ts,js}` → four patterns (VS Code globs allow braces, gitignore does not). */
export function expandBraces(glob: string): string[] {
  const m = /\{([^{}]*)\}/.exec(glob);
  if (!m) return [glob];
  return m[1].split(',').flatMap((alt) => expandBraces(glob.slice(0, m.index) + alt + glob.slice(m.index + m[0].length)));
}

export async function scanWorkspace(root: string, options: ScanOptions = {}): Promise<ScannedFile[]> {
  const maxBytes = options.maxFileBytes ?? 256 * 1024;
  const maxFiles = options.maxFiles ?? 20000;
  const excluded = ignore().add((options.exclude ?? []).flatMap(expandBraces));
  const out: ScannedFile[] = [];
  const absRoot = path.resolve(root);

  async function walk(dir: string, rel: string, rules: IgnoreSource[]): Promise<void> {
    const own = await folderSource(dir);
    const active = own ? [...rules, own] : rules;
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folder
    }
    // Sorted so the scan (and with it every tie in the ranking) is the same on every run and platform.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (out.length >= maxFiles) return;
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const isDir = e.isDirectory();
      if (!isDir && !e.isFile()) continue; // symlinks, sockets: a link could leave the workspace
      if (isDir && alwaysSkippedDirs.has(e.name)) continue;
      const abs = path.join(dir, e.name);
      if (excluded.ignores(isDir ? childRel + '/' : childRel) || ignoredBySources(active, abs, isDir)) continue;
      if (isDir) {
        await walk(abs, childRel, active);
        continue;
      }
      if (isSecretPath(childRel) || hasBinaryExtension(childRel) || noiseFile.test(childRel)) continue;
      let st;
      try {
        st = await fs.lstat(abs);
      } catch {
        continue;
      }
      // A hard link shares its bytes with another name, possibly outside the workspace (~/.aws/credentials).
      if (!st.isFile() || st.nlink > 1 || st.size > maxBytes) continue;
      out.push({ path: childRel, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  const outer = await outerSources(absRoot);
  // A workspace folder that is itself inside an ignored folder of its repository holds nothing to use.
  if (await insideIgnoredFolder(absRoot, outer)) return out;
  await walk(absRoot, '', outer);
  return out;
}

/** True when `absRoot` or a folder above it (below the repository root) is ignored by the outer sources. */
async function insideIgnoredFolder(absRoot: string, outer: IgnoreSource[]): Promise<boolean> {
  for (let d = absRoot; path.dirname(d) !== d; d = path.dirname(d)) {
    const inside = (s: IgnoreSource) => { const r = path.relative(s.base, d); return r !== '' && !r.startsWith('..'); };
    if (!outer.some(inside)) break;
    if (ignoredBySources(outer, d, true)) return true;
  }
  return false;
}

/**
 * Whether one workspace file (e.g. the one being edited, which the scan may never have listed) is kept out of prompts:
 * by name, by any git ignore source or files.exclude along its path, or because it is a link.
 */
export async function isExcludedFile(root: string, relPath: string, options: ScanOptions = {}): Promise<boolean> {
  const rel = relPath.replace(/\\/g, '/');
  if (isSecretPath(rel) || inSkippedDir(rel)) return true;
  const excluded = ignore().add((options.exclude ?? []).flatMap(expandBraces));
  const absRoot = path.resolve(root);
  const sources = await outerSources(absRoot);
  if (await insideIgnoredFolder(absRoot, sources)) return true;
  const parts = rel.split('/');
  let dir = absRoot;
  for (let i = 0; i < parts.length; i++) {
    const own = await folderSource(dir);
    if (own) sources.push(own);
    const sub = parts.slice(0, i + 1).join('/');
    const isDir = i < parts.length - 1;
    if (excluded.ignores(isDir ? sub + '/' : sub) || ignoredBySources(sources, path.join(absRoot, sub), isDir)) return true;
    dir = path.join(dir, parts[i]);
  }
  try {
    const st = await fs.lstat(path.join(absRoot, rel));
    if (!st.isFile() || st.nlink > 1) return true;
  } catch {
    return false; // not on disk yet (a new, unsaved file): only its name and the ignore rules count
  }
  return false;
}

/** True for paths inside folders the scan never enters (file-watcher events there need no rescan). */
export function inSkippedDir(relPath: string): boolean {
  return relPath.split('/').slice(0, -1).some((p) => alwaysSkippedDirs.has(p));
}
