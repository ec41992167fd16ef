import { hostname } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { startInteractive } from '../exec.js';
import { TorRamdiskError } from '../errors.js';

import type { HostTool } from './tools.js';

/** What locking runs: util-linux's flock, holding the lock in `sh -c 'exec cat'`. */
export const LOCK_TOOLS: readonly HostTool[] = [
  { command: 'flock', package: 'util-linux' },
  { command: 'sh', package: 'dash' },
  { command: 'cat', package: 'coreutils' },
];

/** flock(1)'s exit code when `--nonblock` finds the lock taken. */
const BUSY = 75;

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * An exclusive flock(2) on `path`, held by a `flock` child that reads this process's pipe:
 * when this process dies, however it dies (SIGKILL, a container's pid 1), the pipe closes,
 * the holder exits and the kernel releases the lock. No pid is ever trusted. With `wait:
 * false` it gives up at once (undefined) when another process holds it.
 */
export async function acquireLock(path: string, options: { wait: boolean; signal?: AbortSignal }): Promise<HeldLock | undefined> {
  const args = ['--exclusive', ...(options.wait ? [] : ['--nonblock', '--conflict-exit-code', String(BUSY)]), path, 'sh', '-c', 'echo locked && exec cat'];
  const holder = startInteractive('flock', args, { timeoutMs: 0, ...(options.signal ? { signal: options.signal } : {}) });
  const locked = await new Promise<boolean>((resolve) => {
    holder.stdout!.once('data', () => resolve(true));
    void holder.then(() => resolve(false));
  });
  if (!locked) {
    const result = await holder;
    if (result.exitCode === BUSY) return undefined;
    if (options.signal?.aborted) throw options.signal.reason;
    throw new TorRamdiskError('ERR_LOCK', 'build', `cannot lock ${path}: flock ${result.exitCode !== undefined ? `exited with ${result.exitCode}` : 'did not start'}: ${String(result.stderr ?? result.originalMessage ?? '').trim()}`);
  }
  return {
    async release() {
      holder.stdin!.end();
      await holder;
    },
  };
}

/** Who holds a lock, as its holder wrote it (for people: the lock itself is the kernel's). */
export async function lockOwner(path: string): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => '')).trim() || 'a process that wrote nothing yet';
}

export async function recordOwner(path: string): Promise<void> {
  await writeFile(path, `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
}
