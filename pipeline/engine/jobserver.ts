import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../exec.js';

/**
 * One job budget for a whole build, spoken as GNU make's jobserver (make 4.3 is its client):
 * `jobs` tokens, one held by this process and `jobs − 1` as bytes in a pipe. A stage runs only
 * while it holds a token: its own work, or the one job its make runs without asking. Every
 * make a stage starts finds the pipe on its fds 3 and 4 (`MAKEFLAGS=--jobserver-auth=3,4`) and
 * takes a byte for each further job: at most `jobs` jobs run at once, across all stages.
 *
 * The pipe is a FIFO opened three times and unlinked at once: a descriptor for the makes (each
 * make sets it non-blocking for all of them), a non-blocking one for this process's writes,
 * which must never block, and a blocking one that only its token reader (`dd`) reads.
 */
export class Jobserver {
  /** The descriptor the children get as fds 3 and 4. */
  readonly childFd: number;
  /** MAKEFLAGS for the children: the jobserver, never a `-jN` of their own. */
  readonly makeflags: string;
  private readonly ownFd: number;
  private readonly readerFd: number;
  private implicitFree = true;
  private readonly lanes = new Lanes();
  /** The stages waiting for a token, highest priority first. */
  private readonly waiters: Waiter[] = [];
  /** The `dd` reading one token from the pipe, while a stage waits for one. */
  private reader: { process: ChildProcess; ended: Promise<void> } | undefined;
  private closed = false;

  private constructor(
    readonly jobs: number,
    childFd: number,
    ownFd: number,
    readerFd: number,
  ) {
    this.childFd = childFd;
    this.ownFd = ownFd;
    this.readerFd = readerFd;
    this.makeflags = `-j${jobs} --jobserver-auth=3,4`;
    if (jobs > 1) writeSync(ownFd, Buffer.alloc(jobs - 1, '+'));
  }

  /** Opens a budget of `jobs` tokens (the FIFO's name exists only while it is opened). */
  static async open(jobs: number): Promise<Jobserver> {
    const fifo = join(tmpdir(), `.jobserver-${process.pid}-${randomBytes(4).toString('hex')}`);
    await run('mkfifo', ['-m', '600', fifo]);
    try {
      const child = openSync(fifo, constants.O_RDWR);
      const own = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
      // Read-only: were this process killed, its reader would see the pipe's end once the makes are gone, not wait forever.
      const reader = openSync(fifo, constants.O_RDONLY);
      return new Jobserver(jobs, child, own, reader);
    } finally {
      unlinkSync(fifo);
    }
  }

  /**
   * Waits for a token; `lane` numbers the stages running at once (the timeline's rows), and
   * `release` gives the token back. Of the stages waiting, the one of highest `priority` gets
   * the next token (the first to ask, among equals), and a token a stage releases goes straight
   * to it: a stage waiting for a slot comes before the next job of a make already running.
   */
  acquire(priority = 0, signal?: AbortSignal): Promise<{ lane: number; release: () => void }> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const waiter: Waiter = { priority, resolve, reject };
      const at = this.waiters.findIndex((w) => w.priority < priority);
      this.waiters.splice(at === -1 ? this.waiters.length : at, 0, waiter);
      signal?.addEventListener('abort', () => this.drop(waiter, signal.reason), { once: true });
      this.pump();
    });
  }

  /**
   * Hands tokens to the waiting stages, highest priority first: this process's own token when it
   * is free, else the next byte of the pipe. That byte is read by a `dd` blocked in read(2), woken
   * when a make's job gives its token back as the make itself is: a waiting stage is not left to
   * look in the pipe between a make's jobs, which find it empty each time.
   */
  private pump(): void {
    if (this.closed) return;
    if (this.implicitFree && this.waiters.length > 0) {
      this.implicitFree = false;
      this.grant(this.waiters.shift()!, true);
    }
    if (this.waiters.length === 0 || this.reader) return;
    const reader = spawn('dd', ['bs=1', 'count=1', 'status=none'], { stdio: [this.readerFd, 'pipe', 'ignore'] });
    const read: Buffer[] = [];
    let failure: Error | undefined;
    reader.stdout!.on('data', (chunk: Buffer) => read.push(chunk));
    reader.on('error', (error) => (failure = error));
    this.reader = {
      process: reader,
      ended: new Promise((ended) =>
        reader.on('close', () => {
          this.reader = undefined;
          ended();
          if (this.closed) return;
          if (failure) {
            for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
            return;
          }
          if (Buffer.concat(read).length === 1) {
            const next = this.waiters.shift();
            if (next) this.grant(next, false);
            else writeSync(this.ownFd, Buffer.from('+'));
          }
          this.pump();
        }),
      ),
    };
  }

  private grant(waiter: Waiter, implicit: boolean): void {
    // A stage holds one token, so with a token in hand there is a free lane.
    const lane = this.lanes.take();
    let released = false;
    waiter.resolve({
      lane,
      release: () => {
        if (released) return;
        released = true;
        this.lanes.give(lane);
        const next = this.closed ? undefined : this.waiters.shift();
        if (next) this.grant(next, implicit);
        else if (implicit) this.implicitFree = true;
        else if (!this.closed) writeSync(this.ownFd, Buffer.from('+'));
      },
    });
  }

  private drop(waiter: Waiter, reason: unknown): void {
    const at = this.waiters.indexOf(waiter);
    if (at === -1) return;
    this.waiters.splice(at, 1);
    waiter.reject(reason);
  }

  /** Ends the budget, and the read of a token if one is under way. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reader) {
      this.reader.process.kill('SIGKILL');
      await this.reader.ended;
    }
    closeSync(this.childFd);
    closeSync(this.ownFd);
    closeSync(this.readerFd);
  }
}

interface Waiter {
  priority: number;
  resolve: (token: { lane: number; release: () => void }) => void;
  reject: (reason: unknown) => void;
}

/** The lanes of the timeline: the lowest free number goes to the next stage. */
class Lanes {
  private readonly used = new Set<number>();

  take(): number {
    let lane = 0;
    while (this.used.has(lane)) lane++;
    this.used.add(lane);
    return lane;
  }

  give(lane: number): void {
    this.used.delete(lane);
  }
}
