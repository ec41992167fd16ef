import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: configs/, kernel/, initramfs/, qemu/ live here. */
export const projectRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** `$TOR_RAMDISK_CACHE`, else `$XDG_CACHE_HOME/tor-ramdisk`, else `~/.cache/tor-ramdisk`. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TOR_RAMDISK_CACHE) return resolve(env.TOR_RAMDISK_CACHE);
  const xdg = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(resolve(xdg), 'tor-ramdisk');
}
