import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageInputs } from './inputs.js';
import { acquireLock, lockOwner, recordOwner } from './lock.js';

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

  /** The picture of the last build for an arch that built something. */
  timelinePath(slot: string): string {
    return join(this.logRoot, `timeline-${slot}.svg`);
  }

  logPath(stage: string, key: string): string {
    return join(this.logRoot, stage, `${key}.log`);
  }

  /** The manifest of a finished output whose `out/` is still there, else undefined. */
  async lookup(stage: string, key: string): Promise<StageManifest | undefined> {
    try {
      const manifest = JSON.parse(await readFile(join(this.entryDir(stage, key), 'manifest.json'), 'utf8')) as StageManifest;
      if (manifest.key !== key || !(await stat(this.outDir(stage, key))).isDirectory()) return undefined;
      return manifest;
    } catch {
      return undefined;
    }
  }

  /** A fresh private directory for one build attempt, with `out/`, `work/` and the `path/` of its tool links. */
  async begin(stage: string, key: string): Promise<{ dir: string; out: string; work: string; path: string }> {
    // Named by the key, whose lock its builder holds: `sweepAbandoned` knows it is over when the lock is free.
    const dir = join(this.root, stage, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(dir, 'out'), { recursive: true });
    await mkdir(join(dir, 'work'), { recursive: true });
    await mkdir(join(this.logRoot, stage), { recursive: true });
    // The log of this attempt only: an earlier, killed attempt's lines would mislead.
    await writeFile(this.logPath(stage, key), '');
    return { dir, out: join(dir, 'out'), work: join(dir, 'work'), path: join(dir, 'path') };
  }

  /**
   * Where a resumable stage keeps its steps' work across attempts at one key (its builder holds
   * the key's lock): removed when the key is committed, or by `clean`.
   */
  resumeDir(stage: string, key: string): string {
    return join(this.root, stage, `.resume-${key}`);
  }

  async commit(stage: string, tempDir: string, manifest: StageManifest): Promise<void> {
    for (const scratch of ['work', 'path']) await rm(join(tempDir, scratch), { recursive: true, force: true });
    await writeFile(join(tempDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const final = this.entryDir(stage, manifest.key);
    // Another run may have finished the same key meanwhile: same inputs, same output; keep theirs.
    await rm(final, { recursive: true, force: true });
    await rename(tempDir, final);
    await rm(this.resumeDir(stage, manifest.key), { recursive: true, force: true });
  }

  async discard(tempDir: string): Promise<void> {
    // A failed step may still be finishing writes in it (an unpacker that gave up midway).
    await rm(tempDir, { recursive: true, force: true, maxRetries: 5 });
  }

  /** The inputs last built or used for this stage and arch: what `plan` compares against. */
  async lastInputs(stage: string, slot: string): Promise<StageInputs | undefined> {
    try {
      return JSON.parse(await readFile(join(this.root, stage, `last-${slot}.json`), 'utf8')) as StageInputs;
    } catch {
      return undefined;
    }
  }

  /** Remembers the inputs for `plan`; on a read-only cache (every stage cached) there is nothing to remember them in, and that is fine. */
  async recordLast(stage: string, slot: string, inputs: StageInputs): Promise<void> {
    const path = join(this.root, stage, `last-${slot}.json`);
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(join(this.root, stage), { recursive: true });
      await writeFile(temp, `${JSON.stringify(inputs, null, 2)}\n`);
      await rename(temp, path);
    } catch (error) {
      if (!READ_ONLY.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
  }

  lockPath(stage: string, key: string): string {
    return join(this.root, stage, `${key}.lock`);
  }

  /**
   * Holds a flock on `stages/<name>/<key>.lock` while this process builds that key, so two runs
   * sharing a cache (two CI jobs, two test files) build it once: the second waits, saying for
   * what and for whom, then finds it cached. The kernel releases the lock when its holder dies.
   */
  async lock(stage: string, key: string, options: { signal?: AbortSignal; onWait?: (message: string) => void } = {}): Promise<() => Promise<void>> {
    const path = this.lockPath(stage, key);
    await mkdir(join(this.root, stage), { recursive: true });
    const signal = options.signal ? { signal: options.signal } : {};
    let held = await acquireLock(path, { wait: false, ...signal });
    if (!held) {
      options.onWait?.(`waiting for ${stage} ${key.slice(0, 12)}…, which another build is making (${await lockOwner(path)})`);
      held = (await acquireLock(path, { wait: true, ...signal }))!;
    }
    await recordOwner(path);
    return () => held.release();
  }

  /**
   * Removes build directories whose build is over (nobody holds their key's lock); returns how
   * many. A failed resumable stage's steps are kept for its next attempt unless `resumable`.
   */
  async sweepAbandoned(options: { resumable?: boolean } = {}): Promise<number> {
    let removed = 0;
    const stages = await readdir(this.root).catch(() => [] as string[]);
    for (const stage of stages) {
      for (const entry of await readdir(join(this.root, stage)).catch(() => [] as string[])) {
        const match = (options.resumable ? /^\.(?:tmp|resume)-([0-9a-f]{64})/ : /^\.tmp-([0-9a-f]{64})-/).exec(entry);
        if (!match) continue;
        const held = await acquireLock(this.lockPath(stage, match[1]!), { wait: false });
        if (!held) continue;
        try {
          await rm(join(this.root, stage, entry), { recursive: true, force: true });
          removed++;
        } finally {
          await held.release();
        }
      }
    }
    return removed;
  }
}

const READ_ONLY = new Set(['EROFS', 'EACCES', 'EPERM']);
