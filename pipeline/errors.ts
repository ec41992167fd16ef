/**
 * One error type for everything the user can act on: a code, a message that names the
 * file, URL, key or stage, and a hint that says what to do. Each failure class has its
 * own exit code, so scripts and CI can tell a bad pin from a broken build.
 */
export const ExitCode = {
  internal: 1,
  badInput: 2,
  verification: 3,
  build: 4,
  missingTool: 5,
  fetch: 6,
  localFs: 7,
} as const;

export type ExitCodeName = keyof typeof ExitCode;

export class TorRamdiskError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(code: string, exitClass: ExitCodeName, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = ExitCode[exitClass];
    this.hint = options.hint;
  }
}

/** Bad input: a config file, a key, a pin, a command-line argument. */
export class InputError extends TorRamdiskError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_BAD_INPUT', 'badInput', message, options);
  }
}

/** A file's sha256 is not the pinned one. */
export class IntegrityError extends TorRamdiskError {
  constructor(
    readonly source: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      'ERR_INTEGRITY',
      'verification',
      `sha256 mismatch for ${source}: expected ${expected}, got ${actual}`,
      { hint: 'Incomplete download, a changed upstream file, or a man-in-the-middle attack. The bad file was deleted; nothing was trusted.' },
    );
  }
}

/** An OpenPGP signature did not verify against the pinned keys. */
export class SignatureError extends TorRamdiskError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_SIGNATURE', 'verification', message, options);
  }
}

/** Every URL of a file failed, or the offline cache lacks it. */
export class FetchError extends TorRamdiskError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_FETCH', 'fetch', message, options);
  }
}

/** An external command of a stage failed. */
export class BuildError extends TorRamdiskError {
  constructor(
    message: string,
    readonly stage: string | undefined,
    readonly logPath: string | undefined,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super('ERR_BUILD', 'build', message, options);
  }
}

/** A host tool the build needs is not installed. */
export class MissingToolError extends TorRamdiskError {
  constructor(
    readonly tools: string[],
    readonly installCommand: string,
  ) {
    super('ERR_MISSING_TOOL', 'missingTool', `missing host tools: ${tools.join(', ')}`, {
      hint: `Run ./tor-ramdisk doctor --install, which installs what the stages declare (here: ${installCommand}).`,
    });
  }
}

/** What each local errno means, in words: the only errors that are the local filesystem's. */
const LOCAL_ERRNOS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  EFBIG: 'file too large',
};

/**
 * The local filesystem refused (disk full, read-only, a file where a directory belongs, no
 * permission): never a network fault, never retried, never blamed on the input.
 */
export class LocalFsError extends TorRamdiskError {
  constructor(
    readonly path: string,
    readonly errno: string,
    what: string,
    options: { cause?: unknown } = {},
  ) {
    super('ERR_LOCAL_FS', 'localFs', `${what}: ${path}: ${errno} (${LOCAL_ERRNOS[errno] ?? 'filesystem error'})`, {
      hint: errno === 'ENOSPC' || errno === 'EDQUOT' ? 'Free space there (tor-ramdisk clean removes stage outputs), or choose another --cache.' : 'Fix the path or its permissions, or choose another --cache.',
      ...options,
    });
  }
}

/** The error as a LocalFsError when it is a filesystem call's (it has a syscall and a local errno), else undefined. */
export function localFsError(error: unknown, what = 'local filesystem'): LocalFsError | undefined {
  if (error instanceof LocalFsError) return error;
  const e = error as NodeJS.ErrnoException | undefined;
  if (!e || typeof e.code !== 'string' || !e.syscall || !(e.code in LOCAL_ERRNOS)) return undefined;
  return new LocalFsError(e.path ?? (e as { dest?: string }).dest ?? '(unknown path)', e.code, `${what} (${e.syscall})`, { cause: error });
}
