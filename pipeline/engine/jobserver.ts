import { closeSync, constants, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../exec.js';

/** How often a stage waiting for a token looks in the pipe (tokens come back when a make's job ends). */
const POLL_MS = 20;

/**
 * One job budget for a whole build, spoken as GNU make's jobserver (make 4.3 is its client):
 * `jobs` tokens, one held by this process and `jobs − 1` as bytes in a pipe. A stage runs only
 * while it holds a token: its own work, or the one job its make runs without asking. Every
 * make a stage starts finds the pipe on its fds 3 and 4 (`MAKEFLAGS=--jobserver-auth=3,4`) and
 * takes a byte for each further job: at most `jobs` jobs run at once, across all stages.
 *
 * The pipe is a FIFO opened twice and unlinked at once: a blocking descriptor for the makes
 * (they expect one) and a non-blocking one for this process, which must never block.
 */
export class Jobserver {
  /** The descriptor the children get as fds 3 and 4. */
  readonly childFd: number;
  /** MAKEFLAGS for the children: the jobserver, never a `-jN` of their own. */
  readonly makeflags: string;
  private readonly ownFd: number;
  private implicitFree = true;
  private readonly lanes: Lanes;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly jobs: number,
    childFd: number,
    ownFd: number,
  ) {
    this.childFd = childFd;
    this.ownFd = ownFd;
    this.makeflags = `-j${jobs} --jobserver-auth=3,4`;
    this.lanes = new Lanes(jobs);
    if (jobs > 1) writeSync(ownFd, Buffer.alloc(jobs - 1, '+'));
  }

  /** Opens a budget of `jobs` tokens (the FIFO's name exists only while it is opened). */
  static async open(jobs: number): Promise<Jobserver> {
    const fifo = join(tmpdir(), `.jobserver-${process.pid}-${randomBytes(4).toString('hex')}`);
    await run('mkfifo', ['-m', '600', fifo]);
    try {
      const child = openSync(fifo, constants.O_RDWR);
      const own = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
      return new Jobserver(jobs, child, own);
    } finally {
      unlinkSync(fifo);
    }
  }

  /**
   * Waits for a token, first come first served; `lane` numbers the stages running at once (the
   * timeline's rows). `release` gives the token back.
   */
  async acquire(signal?: AbortSignal): Promise<{ lane: number; release: () => void }> {
    const lane = await this.lanes.take();
    const turn = this.queue.then(() => this.takeToken(signal));
    this.queue = turn.then(
      () => {},
      () => {},
    );
    let implicit: boolean;
    try {
      implicit = await turn;
    } catch (error) {
      this.lanes.give(lane);
      throw error;
    }
    let released = false;
    return {
      lane,
      release: () => {
        if (released) return;
        released = true;
        if (implicit) this.implicitFree = true;
        else if (!this.closed) writeSync(this.ownFd, Buffer.from('+'));
        this.lanes.give(lane);
      },
    };
  }

  /** True when the token is this process's own, false when it came from the pipe. */
  private async takeToken(signal?: AbortSignal): Promise<boolean> {
    const byte = Buffer.alloc(1);
    for (;;) {
      signal?.throwIfAborted();
      if (this.implicitFree) {
        this.implicitFree = false;
        return true;
      }
      try {
        if (readSync(this.ownFd, byte, 0, 1, null) === 1) return false;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
      await sleep(POLL_MS, undefined, signal ? { signal } : {});
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.childFd);
    closeSync(this.ownFd);
  }
}

/** The lanes of the timeline: the lowest free number goes to the next stage. */
class Lanes {
  private waiting: ((lane: number) => void)[] = [];
  private free: number[];
  constructor(count: number) {
    this.free = Array.from({ length: count }, (_, i) => i);
  }

  async take(): Promise<number> {
    return this.free.length > 0 ? this.free.shift()! : new Promise<number>((resolve) => this.waiting.push(resolve));
  }

  give(lane: number): void {
    const next = this.waiting.shift();
    if (next) next(lane);
    else this.free = [...this.free, lane].sort((a, b) => a - b);
  }
}
