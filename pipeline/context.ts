import { readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LayerSelection } from './config/layers.js';
import { loadLayers } from './config/layers.js';
import { resolveConfig, type ResolvedConfig } from './config/resolve.js';
import { InputError, LocalFsError } from './errors.js';
import { defaultCacheRoot } from './paths.js';
import { DownloadCache } from './sources/cache.js';
import { StageStore } from './engine/store.js';

/** Where a run keeps things: the download cache and the stage cache, under one root. */
export interface CacheDirs {
  root: string;
  downloads: DownloadCache;
  store: StageStore;
}

/** Written into a cache root by the run that creates it: `clean` touches no directory without it. */
export const CACHE_MARKER = '.tor-ramdisk-cache';
/** What the tool makes inside a cache root, and nothing else. */
const CACHE_LAYOUT = ['downloads', 'logs', 'stages'] as const;

export function cacheDirs(root: string = defaultCacheRoot()): CacheDirs {
  return { root, downloads: new DownloadCache(root), store: new StageStore(root) };
}

/** The cache root a command was given (`--cache`, made absolute), or the default; an empty one is refused, never replaced. */
export function cacheRootFrom(option: unknown): string {
  if (option === undefined) return defaultCacheRoot();
  const text = String(option);
  if (text.trim() === '') {
    throw new InputError('--cache is empty', { hint: 'Name a directory, or leave --cache out for the default ($TOR_RAMDISK_CACHE, else ~/.cache/tor-ramdisk).' });
  }
  return resolve(text);
}

export async function isCache(root: string): Promise<boolean> {
  return (await stat(join(root, CACHE_MARKER)).catch(() => undefined))?.isFile() ?? false;
}

/**
 * The cache a build writes into: created with its marker if it does not exist; an existing
 * directory must carry the marker, or be empty or hold only the cache's own layout (a cache
 * from before the marker), and is then marked. Anything else is refused, never written into.
 */
export async function openCache(root: string): Promise<CacheDirs> {
  if (/\s/.test(root)) {
    throw new InputError(`the cache path "${root}" contains whitespace, which the packages' configure scripts and makefiles cannot build under`, {
      hint: 'Choose a --cache (or $TOR_RAMDISK_CACHE) without spaces.',
    });
  }
  const info = await stat(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new LocalFsError(root, error.code ?? 'EIO', 'cannot open the cache', { cause: error });
  });
  if (info && !info.isDirectory()) throw new LocalFsError(root, 'ENOTDIR', 'the cache is not a directory');
  if (!info || !(await isCache(root))) {
    const entries = info ? await readdir(root) : [];
    const foreign = entries.filter((e) => !(CACHE_LAYOUT as readonly string[]).includes(e));
    if (foreign.length > 0) {
      throw new InputError(`${root} is not a tor-ramdisk cache: it has no ${CACHE_MARKER} and holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}`, {
        hint: 'Choose a new or empty directory for --cache: the tool writes only into a cache it made.',
      });
    }
    await mkdir(root, { recursive: true });
    await writeFile(join(root, CACHE_MARKER), 'A tor-ramdisk cache: downloads/, stages/ and logs/ are the tool\'s own.\n');
  }
  return cacheDirs(root);
}

export async function configFor(selection: LayerSelection): Promise<ResolvedConfig> {
  return resolveConfig(await loadLayers(selection));
}
