import { mkdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import * as tar from 'tar';
import { InputError, TorRamdiskError } from '../errors.js';
import { runStreaming } from '../exec.js';

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

function decompressor(archive: string): string[] | undefined {
  if (/\.(tar\.xz|txz)$/.test(archive)) return ['xz', '-dc'];
  if (/\.(tar\.bz2|tbz2)$/.test(archive)) return ['bzip2', '-dc'];
  if (/\.(tar\.gz|tgz|tar)$/.test(archive)) return undefined; // node-tar reads gzip itself
  throw new InputError(`cannot extract ${archive}: unknown archive type`, { hint: 'Supported: .tar, .tar.gz, .tar.xz, .tar.bz2' });
}

export interface ExtractOptions {
  /** Leading path components to drop (1 for the usual `name-version/` top directory). */
  strip?: number;
  /** Name to show in errors (the pin's file name), when `archive` is a cache path. */
  label?: string;
}

/**
 * Extracts a tarball into `destination`, refusing the whole archive if any entry is absolute,
 * climbs out with `..`, is a device or FIFO, or is a link that points outside the tree.
 * Unsafe entries are never written; on refusal the caller discards `destination`.
 */
export async function extractTarball(archive: string, destination: string, options: ExtractOptions = {}): Promise<void> {
  const label = options.label ?? archive;
  await mkdir(destination, { recursive: true });
  let refusal: UnsafeArchiveError | undefined;
  const extractor = tar.x({
    cwd: destination,
    strip: options.strip ?? 0,
    strict: true,
    preserveOwner: false,
    noChmod: false,
    filter: (path, entry) => {
      const type = 'type' in entry ? entry.type : 'File';
      const linkpath = 'linkpath' in entry ? (entry.linkpath as string | undefined) : undefined;
      const why = unsafeEntry(type, path, linkpath);
      if (why && !refusal) refusal = new UnsafeArchiveError(label, path, why);
      return !why && !refusal;
    },
  });
  const command = decompressor(archive);
  if (command) {
    const decompress = runStreaming(command[0]!, [...command.slice(1), archive]);
    try {
      await pipeline(decompress.stdout, extractor);
    } catch (error) {
      throw new InputError(`cannot extract ${label}: ${(error as Error).message}`, { cause: error });
    }
    await decompress.done.catch((error: Error) => {
      throw new InputError(`cannot extract ${label}: ${error.message}`, { cause: error });
    });
  } else {
    try {
      await pipeline(createReadStream(archive), extractor);
    } catch (error) {
      throw new InputError(`cannot extract ${label}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (refusal) throw refusal;
}
