import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageInputs } from './inputs.js';

export interface StageManifest {
  key: string;
  inputs: StageInputs;
  builtAt: string;
  durationMs: number;
}

/**
 * The stage cache: `stages/<name>/<key>/{out/,manifest.json}`. A build writes into a
 * `.tmp-*` directory and renames it to its key only after success, so a killed build
 * leaves nothing that a later run trusts; the manifest is the last thing written.
 */
export class StageStore {
  readonly root: string;
  readonly logRoot: string;

  constructor(cacheRoot: string) {
    this.root = join(cacheRoot, 'stages');
    this.logRoot = join(cacheRoot, 'logs');
  }

  entryDir(stage: string, key: string): string {
    return join(this.root, stage, key);
  }

  outDir(stage: string, key: string): string {
    return join(this.entryDir(stage, key), 'out');
  }

  logPath(stage: string, key: string): string {
    return join(this.logRoot, stage, `${key}.log`);
  }

  async lookup(stage: string, key: string): Promise<StageManifest | undefined> {
    try {
      const manifest = JSON.parse(await readFile(join(this.entryDir(stage, key), 'manifest.json'), 'utf8')) as StageManifest;
      return manifest.key === key ? manifest : undefined;
    } catch {
      return undefined;
    }
  }

  /** A fresh private directory for one build attempt, with `out/`, `work/` and the `path/` of its tool links. */
  async begin(stage: string, key: string): Promise<{ dir: string; out: string; work: string; path: string }> {
    const dir = join(this.root, stage, `.tmp-${key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(dir, 'out'), { recursive: true });
    await mkdir(join(dir, 'work'), { recursive: true });
    await mkdir(join(this.logRoot, stage), { recursive: true });
    return { dir, out: join(dir, 'out'), work: join(dir, 'work'), path: join(dir, 'path') };
  }

  async commit(stage: string, tempDir: string, manifest: StageManifest): Promise<void> {
    for (const scratch of ['work', 'path']) await rm(join(tempDir, scratch), { recursive: true, force: true });
    await writeFile(join(tempDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const final = this.entryDir(stage, manifest.key);
    // Another run may have finished the same key meanwhile: same inputs, same output; keep theirs.
    await rm(final, { recursive: true, force: true });
    await rename(tempDir, final);
  }

  async discard(tempDir: string): Promise<void> {
    await rm(tempDir, { recursive: true, force: true });
  }

  /** The inputs last built or used for this stage and arch: what `plan` compares against. */
  async lastInputs(stage: string, slot: string): Promise<StageInputs | undefined> {
    try {
      return JSON.parse(await readFile(join(this.root, stage, `last-${slot}.json`), 'utf8')) as StageInputs;
    } catch {
      return undefined;
    }
  }

  async recordLast(stage: string, slot: string, inputs: StageInputs): Promise<void> {
    await mkdir(join(this.root, stage), { recursive: true });
    const path = join(this.root, stage, `last-${slot}.json`);
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, `${JSON.stringify(inputs, null, 2)}\n`);
    await rename(temp, path);
  }

  /**
   * Holds `stages/<name>/<key>.lock` while this process builds that key, so two runs sharing a
   * cache (two CI jobs, two test files) build it once: the second waits, then finds it cached.
   * A lock whose owner died is taken over.
   */
  async lock(stage: string, key: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const path = join(this.root, stage, `${key}.lock`);
    await mkdir(join(this.root, stage), { recursive: true });
    for (;;) {
      try {
        await writeFile(path, String(process.pid), { flag: 'wx' });
        return () => rm(path, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
        await rm(path, { force: true });
        continue;
      }
      if (signal?.aborted) throw signal.reason;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  /** Removes build directories left by runs that died; returns how many. */
  async sweepAbandoned(): Promise<number> {
    let removed = 0;
    const stages = await readdir(this.root).catch(() => [] as string[]);
    for (const stage of stages) {
      for (const entry of await readdir(join(this.root, stage)).catch(() => [] as string[])) {
        const match = /^\.tmp-[0-9a-f]+-(\d+)-/.exec(entry);
        if (!match || isAlive(Number(match[1]))) continue;
        await rm(join(this.root, stage, entry), { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
