import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CpioEntry } from './cpio.js';

/**
 * The mode a file or directory gets in the image: only whether it is executable and whether
 * it is private survive (0755 or 0644; 0700/0600 where the tree says private), so the host's
 * umask and checkout never reach the image. Stage keys hash this, not the raw mode.
 */
export function imageMode(info: Pick<Stats, 'mode' | 'isDirectory'>): number {
  const private_ = (info.mode & 0o077) === 0;
  if (info.isDirectory()) return private_ ? 0o700 : 0o755;
  const exec = (info.mode & 0o100) !== 0;
  return exec ? (private_ ? 0o700 : 0o755) : private_ ? 0o600 : 0o644;
}

/** Every file, directory and symlink under `root` as cpio entries owned by root, with their image modes. */
export async function treeEntries(root: string): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const info = await lstat(path);
      if (info.isSymbolicLink()) {
        entries.push({ path: rel, type: 'symlink', target: await readlink(path) });
      } else if (info.isDirectory()) {
        entries.push({ path: rel, type: 'dir', mode: imageMode(info) });
        await walk(path);
      } else if (info.isFile()) {
        entries.push({ path: rel, type: 'file', mode: imageMode(info), data: await readFile(path) });
      }
    }
  };
  await walk(root);
  return entries;
}

/** Every regular file under `root` whose first bytes say ELF. */
export async function elfFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await treeEntries(root)) {
    if (entry.type === 'file' && entry.data.subarray(0, 4).toString('latin1') === '\x7fELF') found.push(join(root, entry.path));
  }
  return found;
}
