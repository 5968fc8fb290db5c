// The workspace's candidate context files: every file a developer would call "the repository" and nothing else.
// Honours .gitignore files (nested ones too) and VS Code's files.exclude; skips binaries, huge files and secrets by
// name here (by content when read, see files.ts). Node fs only, so it runs in tests without VS Code.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { hasBinaryExtension } from './decode';
import { isSecretPath } from './secrets';

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

/** Never context, whatever the ignore files say: VCS data, dependencies, caches, lock files, minified bundles. */
export const alwaysSkippedDirs = new Set(['.git', '.hg', '.svn', 'node_modules', '__pycache__', '.venv', 'venv', '.tox',
  '.mypy_cache', '.pytest_cache', '.ruff_cache', '.next', '.nuxt', '.cache', '.idea', '.gradle', 'bower_components']);
const noiseFile = /(^|\/)(package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|Cargo\.lock|composer\.lock|Gemfile\.lock|uv\.lock)$|\.min\.(js|css)$/;

/** `a/{b,c}/*.{ts,js}` → four patterns (VS Code globs allow braces, gitignore does not). */
export function expandBraces(glob: string): string[] {
  const m = /\{([^{}]*)\}/.exec(glob);
  if (!m) return [glob];
  return m[1].split(',').flatMap((alt) => expandBraces(glob.slice(0, m.index) + alt + glob.slice(m.index + m[0].length)));
}

interface Rules {
  /** Folder the rules are relative to ('' = root). */
  base: string;
  ig: Ignore;
}

async function readIgnoreFile(dir: string, rel: string): Promise<Rules | undefined> {
  try {
    const text = await fs.readFile(path.join(dir, '.gitignore'), 'utf8');
    return { base: rel, ig: ignore().add(text) };
  } catch {
    return undefined;
  }
}

function ignoredBy(rules: Rules[], rel: string, isDir: boolean): boolean {
  for (const r of rules) {
    const sub = r.base === '' ? rel : rel.slice(r.base.length + 1);
    if (r.ig.ignores(isDir ? sub + '/' : sub)) return true;
  }
  return false;
}

export async function scanWorkspace(root: string, options: ScanOptions = {}): Promise<ScannedFile[]> {
  const maxBytes = options.maxFileBytes ?? 256 * 1024;
  const maxFiles = options.maxFiles ?? 20000;
  const excluded = ignore().add((options.exclude ?? []).flatMap(expandBraces));
  const out: ScannedFile[] = [];

  async function walk(dir: string, rel: string, rules: Rules[]): Promise<void> {
    const own = await readIgnoreFile(dir, rel);
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
      if (excluded.ignores(isDir ? childRel + '/' : childRel) || ignoredBy(active, childRel, isDir)) continue;
      if (isDir) {
        await walk(path.join(dir, e.name), childRel, active);
        continue;
      }
      if (isSecretPath(childRel) || hasBinaryExtension(childRel) || noiseFile.test(childRel)) continue;
      let st;
      try {
        st = await fs.stat(path.join(dir, e.name));
      } catch {
        continue;
      }
      if (st.size > maxBytes) continue;
      out.push({ path: childRel, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  await walk(root, '', []);
  return out;
}

/** True for paths inside folders the scan never enters (file-watcher events there need no rescan). */
export function inSkippedDir(relPath: string): boolean {
  return relPath.split('/').slice(0, -1).some((p) => alwaysSkippedDirs.has(p));
}
