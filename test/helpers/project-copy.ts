import { cp, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

/**
 * A copy of the compiled project (dist/, the data directories, package.json, node_modules linked), so a
 * test can change its code or its pins and run its real CLI or modules without touching the
 * clone. Returns the copy's root.
 */
export async function projectCopy(): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), 'tor-ramdisk-copy-'));
  await cp(join(repo, 'dist'), join(copy, 'dist'), { recursive: true, filter: (path) => !path.endsWith('.map') });
  for (const dir of ['configs', 'kernel', 'initramfs', 'qemu']) await cp(join(repo, dir), join(copy, dir), { recursive: true });
  // The SBOM and the release name the tool's own version from it.
  await cp(join(repo, 'package.json'), join(copy, 'package.json'));
  await symlink(join(repo, 'node_modules'), join(copy, 'node_modules'));
  return copy;
}
