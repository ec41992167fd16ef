import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import * as tar from 'tar';
import type { HostTool } from '../engine/tools.js';
import { InputError, TorRamdiskError } from '../errors.js';
import { run, runStreaming } from '../exec.js';

/** What extraction runs: GNU tar, and the decompressors it (and the inspection) call. */
export const UNPACK_TOOLS: readonly HostTool[] = [
  { command: 'tar', package: 'tar' },
  { command: 'gzip', package: 'gzip' },
  { command: 'xz', package: 'xz-utils' },
  { command: 'bzip2', package: 'bzip2' },
];

export class UnsafeArchiveError extends TorRamdiskError {
  constructor(archive: string, entry: string, why: string) {
    super('ERR_UNSAFE_ARCHIVE', 'verification', `refusing ${archive}: entry "${entry}" ${why}`, {
      hint: 'The archive tries to write outside its own tree or create a device; nothing of it was kept.',
    });
  }
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** Why an entry may not be extracted, or undefined when it is safe. */
export function unsafeEntry(type: string, path: string, linkpath: string | undefined): string | undefined {
  if (!ALLOWED_TYPES.has(type)) return `is a ${type}, which a source tree never needs`;
  if (path.startsWith('/')) return 'has an absolute path';
  if (path.split('/').includes('..')) return 'has a ".." component';
  if (type === 'SymbolicLink') {
    if (!linkpath || linkpath.startsWith('/')) return `is a symlink to an absolute path (${linkpath ?? ''})`;
    const target = posix.normalize(posix.join(posix.dirname(path), linkpath));
    if (target === '..' || target.startsWith('../')) return `is a symlink pointing outside the tree (${linkpath})`;
  }
  if (type === 'Link') {
    if (!linkpath || linkpath.startsWith('/') || posix.normalize(linkpath).startsWith('../')) return `is a hard link outside the tree (${linkpath ?? ''})`;
  }
  return undefined;
}

/** The decompressor for an archive, from its first bytes (cache files have no extension). */
async function decompressor(archive: string, label: string): Promise<string[] | undefined> {
  const handle = await open(archive, 'r');
  const magic = Buffer.alloc(262);
  try {
    await handle.read(magic, 0, magic.length, 0);
  } finally {
    await handle.close();
  }
  if (magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return ['xz', '-dc'];
  if (magic.subarray(0, 3).toString('latin1') === 'BZh') return ['bzip2', '-dc'];
  if (magic[0] === 0x1f && magic[1] === 0x8b) return undefined; // node-tar reads gzip itself
  if (magic.subarray(257, 262).toString('latin1') === 'ustar') return undefined;
  throw new InputError(`cannot extract ${label}: not a tar, tar.gz, tar.xz or tar.bz2 archive`);
}

export interface ExtractOptions {
  /** Leading path components to drop (1 for the usual `name-version/` top directory). */
  strip?: number;
  /** Name to show in errors (the pin's file name), when `archive` is a cache path. */
  label?: string;
  /** PATH for tar and the decompressors (a stage's tool links); default: the host's. */
  path?: string;
}

/**
 * Extracts a tarball into `destination`. First every entry is read and checked (without
 * writing anything): one absolute path, `..` component, device, FIFO, or link pointing
 * outside the tree refuses the whole archive. Only then does GNU tar unpack it.
 */
export async function extractTarball(archive: string, destination: string, options: ExtractOptions = {}): Promise<void> {
  const label = options.label ?? archive;
  const env: Record<string, string> = options.path ? { PATH: options.path } : {};
  await inspectTarball(archive, label, options.strip ?? 0, env);
  await mkdir(destination, { recursive: true });
  await run('tar', [
    '-x',
    '-f',
    archive,
    '-C',
    destination,
    `--strip-components=${options.strip ?? 0}`,
    '--no-same-owner',
    '--no-same-permissions',
    '--delay-directory-restore',
  ], { env }).catch((error: Error) => {
    throw new InputError(`cannot extract ${label}: ${error.message}`, { cause: error });
  });
}

/** Reads every entry of the archive and throws on the first unsafe one. */
async function inspectTarball(archive: string, label: string, strip: number, env: Record<string, string>): Promise<void> {
  let refusal: UnsafeArchiveError | undefined;
  const lister = tar.t({
    strict: true,
    onReadEntry: (entry) => {
      // Judge each entry where it will land: a link that stays inside `pkg-1.0/` may escape once that is stripped.
      const landed = entry.path.split('/').slice(strip).join('/');
      const why = entry.path.startsWith('/') ? 'has an absolute path' : landed ? unsafeEntry(entry.type, landed, entry.linkpath) : undefined;
      if (why && !refusal) refusal = new UnsafeArchiveError(label, entry.path, why);
      entry.resume();
    },
  });
  const command = await decompressor(archive, label);
  try {
    if (command) {
      const decompress = runStreaming(command[0]!, [...command.slice(1), archive], { env });
      await pipeline(decompress.stdout, lister);
      await decompress.done;
    } else {
      await pipeline(createReadStream(archive), lister);
    }
  } catch (error) {
    throw new InputError(`cannot read ${label} as a tar archive: ${(error as Error).message}`, { cause: error });
  }
  if (refusal) throw refusal;
}
