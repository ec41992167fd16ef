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
      hint: `Install them with: ${installCommand}`,
    });
  }
}
