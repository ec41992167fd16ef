import { readdir, readFile, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../engine/stage.js';
import type { HostTool } from '../engine/tools.js';
import { sha256File } from '../hash.js';
import { projectRoot } from '../paths.js';

/**
 * The project's patch series, one directory per source: `.patch` files applied with -p1 in
 * file-name order, each with a header that says what it fixes and why.
 */
export const PATCH_DIRS: Readonly<Record<string, string>> = {
  linux: 'kernel/patches',
  'uclibc-ng': 'configs/uclibc/patches',
  tor: 'configs/tor/patches',
};

/** What applying a series runs, for the stages that apply one. */
export const PATCH_TOOLS: readonly HostTool[] = [{ command: 'patch', package: 'patch' }];

/** The series of a source, as project-relative paths in the order they apply (none: empty). */
export async function patchSeries(source: string): Promise<string[]> {
  const dir = PATCH_DIRS[source];
  if (!dir) return [];
  const names = await readdir(join(projectRoot, dir)).catch(() => [] as string[]);
  return names.filter((f) => f.endsWith('.patch')).sort().map((f) => `${dir}/${f}`);
}

/** Each patch of the series with its sha256, for the SBOM. */
export async function patchSeriesHashes(source: string): Promise<{ path: string; sha256: string }[]> {
  return Promise.all((await patchSeries(source)).map(async (path) => ({ path, sha256: await sha256File(join(projectRoot, path)) })));
}

/**
 * Applies a source's series to its tree; each patch must apply cleanly. A patched file keeps
 * the time the tarball gave it (a file a patch creates takes the newest of those): an object
 * tree built from the same patched source stays up to date, and no build time reaches a tree.
 */
export async function applyPatchSeries(ctx: Pick<StageContext, 'exec'>, source: string, tree: string): Promise<void> {
  for (const relative of await patchSeries(source)) {
    const path = join(projectRoot, relative);
    const files = [...(await readFile(path, 'utf8')).matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => join(tree, m[1]!));
    const times = new Map<string, Date>();
    for (const file of files) {
      const found = await stat(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (found) times.set(file, found.mtime);
    }
    await ctx.exec('patch', ['-p1', '--forward', '--batch', '-i', path], { cwd: tree });
    const newest = new Date(Math.max(0, ...[...times.values()].map((t) => t.getTime())));
    for (const file of files) {
      const time = times.get(file) ?? newest;
      await utimes(file, time, time);
    }
  }
}
