import { open } from 'node:fs/promises';
import { execa, type Options, type ResultPromise } from 'execa';
import type { Readable } from 'node:stream';
import { BuildError } from './errors.js';

export interface RunOptions {
  cwd?: string;
  /** Added to the clean base environment; the caller's environment never leaks in. */
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Append stdout and stderr to this file instead of keeping them in memory. */
  logPath?: string;
  /** Called with each output line (progress display). */
  onLine?: (line: string) => void;
  /** The stage on whose behalf the command runs, for error messages. */
  stage?: string;
  input?: string;
  /**
   * The build's job budget (engine/jobserver.ts): its pipe becomes the command's fds 3 and 4
   * and MAKEFLAGS names them, so every make the command starts takes its jobs from there.
   */
  jobserver?: { childFd: number; makeflags: string };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const TAIL_LINES = 25;

/**
 * The environment every external command starts from: a fixed locale and time zone and the
 * host PATH, nothing else. Compilers, flags and sysroots come from the toolchain stage.
 */
export function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LC_ALL: 'C',
    TZ: 'UTC',
  };
}

/** Runs one external command; every command of the pipeline goes through here. */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const commandLine = [command, ...args].join(' ');
  if (options.logPath) {
    const handle = await open(options.logPath, 'a');
    await handle.write(`$ ${commandLine}\n`);
    await handle.close();
  }
  const onLine = options.onLine;
  const lineTap = onLine
    ? function* (line: unknown) {
        onLine(String(line));
        yield line;
      }
    : undefined;
  const sink = options.logPath ? { file: options.logPath, append: true } : 'pipe';
  const output = lineTap ? [lineTap, sink] : sink;
  const jobserver = options.jobserver;
  const subprocess: ResultPromise = execa(command, args as string[], {
    cwd: options.cwd,
    env: { ...baseEnv(), ...(jobserver ? { MAKEFLAGS: jobserver.makeflags } : {}), ...options.env },
    extendEnv: false,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    input: options.input,
    stdio: ['pipe', output, output, ...(jobserver ? [jobserver.childFd, jobserver.childFd] : [])],
    stripFinalNewline: true,
    reject: false,
    forceKillAfterDelay: 5000,
  } as Options);
  const result = await subprocess;
  const stdout = typeof result.stdout === 'string' ? result.stdout : '';
  const stderr = typeof result.stderr === 'string' ? result.stderr : '';
  if (!result.failed) return { stdout, stderr };

  const why = result.timedOut
    ? `timed out after ${options.timeoutMs} ms`
    : result.isCanceled
      ? 'was cancelled'
      : result.signal
        ? `was killed by ${result.signal}`
        : result.exitCode !== undefined
          ? `exited with code ${result.exitCode}`
          : `could not start (${result.originalMessage ?? result.shortMessage})`;
  const tail = options.logPath ? await logTail(options.logPath) : lastLines(`${stdout}\n${stderr}`);
  const where = options.stage ? `stage ${options.stage}: ` : '';
  const message = [
    `${where}command ${why}: ${commandLine}`,
    ...(options.cwd ? [`  in ${options.cwd}`] : []),
    ...(options.logPath ? [`  log: ${options.logPath}`] : []),
    ...(tail ? ['  last lines:', ...tail.split('\n').map((line) => `    ${line}`)] : []),
  ].join('\n');
  throw new BuildError(message, options.stage, options.logPath, {
    cause: result,
    hint: options.logPath ? `Read the full log: ${options.logPath}` : undefined,
  });
}

/** The end of a log that may be hundreds of megabytes: read only its last 64 KiB. */
async function logTail(path: string): Promise<string> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return lastLines(buffer.toString('utf8'));
  } finally {
    await handle.close();
  }
}

function lastLines(text: string): string {
  return text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n').trim();
}

/**
 * Starts a command whose stdout is consumed as a stream (a decompressor feeding an
 * extractor). `done` rejects with the command, its exit code and its stderr.
 */
export function runStreaming(command: string, args: readonly string[], options: { env?: Record<string, string> } = {}): { stdout: Readable; done: Promise<void> } {
  const subprocess = execa(command, args as string[], { env: { ...baseEnv(), ...options.env }, extendEnv: false, buffer: { stdout: false, stderr: true }, reject: false, stdin: 'ignore' });
  const done = subprocess.then((result) => {
    if (result.failed) {
      const why = result.exitCode !== undefined ? `exited with code ${result.exitCode}` : (result.signal ?? 'failed');
      throw new BuildError(`command ${why}: ${[command, ...args].join(' ')}: ${String(result.stderr).trim()}`, undefined, undefined, { cause: result });
    }
  });
  return { stdout: subprocess.stdout, done };
}

/**
 * Starts a long-running command whose console is driven by the caller (a QEMU guest's serial
 * line): stdin and stdout are pipes, stderr is kept, and it is killed at the timeout.
 */
export function startInteractive(command: string, args: readonly string[], options: { timeoutMs: number; signal?: AbortSignal }): ResultPromise {
  return execa(command, args as string[], {
    env: baseEnv(),
    extendEnv: false,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    forceKillAfterDelay: 2000,
  } as Options);
}
