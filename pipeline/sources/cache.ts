import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../hash.js';

/**
 * Content-addressed download store: a file lives at `sha256/<its sha256>` and nowhere else.
 * Files enter only by rename after verification, so a killed download never looks complete.
 */
export class DownloadCache {
  readonly root: string;
  readonly dir: string;
  readonly tmpDir: string;

  constructor(cacheRoot: string) {
    this.root = join(cacheRoot, 'downloads');
    this.dir = join(this.root, 'sha256');
    this.tmpDir = join(this.root, 'tmp');
  }

  pathOf(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** The cached file if present and still intact; a corrupt one is deleted. */
  async lookup(sha256: string): Promise<{ path?: string; corrupt?: string }> {
    const path = this.pathOf(sha256);
    if (!(await exists(path))) return {};
    const actual = await sha256File(path);
    if (actual === sha256) return { path };
    await rm(path, { force: true });
    return { corrupt: actual };
  }

  async tempPath(label: string): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return join(this.tmpDir, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}`);
  }

  /**
   * Removes temporary files that no download is writing: a live download writes at least every
   * `timeoutMs` (its longest allowed silence) and is verified in seconds, so a file untouched
   * for an hour belongs to a fetch that was killed. Returns how many.
   */
  async sweepStale(olderThanMs = 60 * 60_000): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info || Date.now() - info.mtimeMs < olderThanMs) continue;
      await rm(path, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  async commit(tempPath: string, sha256: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const path = this.pathOf(sha256);
    await rename(tempPath, path);
    return path;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
