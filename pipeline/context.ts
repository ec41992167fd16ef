import type { LayerSelection } from './config/layers.js';
import { loadLayers } from './config/layers.js';
import { resolveConfig, type ResolvedConfig } from './config/resolve.js';
import { defaultCacheRoot } from './paths.js';
import { DownloadCache } from './sources/cache.js';
import { StageStore } from './engine/store.js';

/** Where a run keeps things: the download cache and the stage cache, under one root. */
export interface CacheDirs {
  root: string;
  downloads: DownloadCache;
  store: StageStore;
}

export function cacheDirs(root: string = defaultCacheRoot()): CacheDirs {
  return { root, downloads: new DownloadCache(root), store: new StageStore(root) };
}

export async function configFor(selection: LayerSelection): Promise<ResolvedConfig> {
  return resolveConfig(await loadLayers(selection));
}
