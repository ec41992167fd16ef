import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../engine/stage.js';
import { sha256File } from '../hash.js';
import { projectRoot } from '../paths.js';

/**
 * The project's patch series, one directory per source: `.patch` files applied with -p1 in
 * file-name order, each with a header that says what it fixes and why.
 */
export const PATCH_DIRS: Readonly<Record<string, string>> = {
  linux: 'kernel/patches',
  'uclibc-ng': 'configs/uclibc/patches',
};

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
 * the time of the tree's Makefile, as the tarball gave it: an object tree built from the same
 * patched source stays up to date, and no build time reaches an output.
 */
export async function applyPatchSeries(ctx: StageContext, source: string, tree: string): Promise<void> {
  for (const relative of await patchSeries(source)) {
    const path = join(projectRoot, relative);
    await ctx.exec('patch', ['-p1', '--forward', '--batch', '-i', path], { cwd: tree });
    const files = [...(await readFile(path, 'utf8')).matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]!);
    if (files.length > 0) await ctx.exec('touch', ['-r', 'Makefile', ...files], { cwd: tree });
  }
}
