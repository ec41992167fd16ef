import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { InputError } from '../errors.js';
import { BundleError } from './format.js';
import { tarArchive } from './ustar.js';

/** One file of the relay's persistent state: `torrc` or `keys/<name>`. */
export interface StateFile {
  name: string;
  data: Buffer;
}

// The same rule the image applies: no dot-files, names of at most 90 characters.
const MEMBER = /^(torrc|keys\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,89})$/;

export function checkMemberName(name: string): string | undefined {
  if (name === 'keys/' || name === 'keys') return undefined;
  if (!MEMBER.test(name) || name.split('/').includes('..')) return `member "${name}" is not torrc or keys/<file>`;
  return undefined;
}

/**
 * Reads the state directory: its torrc and every file in keys/. Whatever `open` (here or in
 * the image) would refuse is refused here, before anything is sealed: a name outside the
 * member rule, a subdirectory, a link or device.
 */
export async function readState(dir: string): Promise<StateFile[]> {
  const torrc = await readFile(join(dir, 'torrc')).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`${dir} has no readable torrc (${error.code ?? error.message})`, { hint: 'A state directory holds torrc and keys/ (as the image exports them).' });
  });
  const files: StateFile[] = [{ name: 'torrc', data: torrc }];
  const entries = await readdir(join(dir, 'keys'), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new InputError(`${join(dir, 'keys')} cannot be read (${error.code ?? error.message})`);
  });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = `keys/${entry.name}`;
    const why = checkMemberName(name) ?? (entry.isFile() ? undefined : `${name} is not a regular file (the bundle holds files only, no subdirectories or links)`);
    if (why) throw new InputError(`cannot seal ${dir}: ${why}`, { hint: 'The image would refuse such a bundle: rename or remove it. Names: letters, digits, ".", "_" and "-", at most 90, not starting with ".".' });
    files.push({ name, data: await readFile(join(dir, name)) });
  }
  return files;
}

/** The plaintext of a bundle: a ustar archive, owners and times fixed. */
export function packState(files: StateFile[]): Buffer {
  return tarArchive([{ path: 'keys/', type: 'dir', mode: 0o700 }, ...files.map((f) => ({ path: f.name, body: f.data, mode: 0o600 }))]);
}

/** Every member, checked by name and type before anything is returned. */
export async function unpackState(plaintext: Buffer, source: string): Promise<StateFile[]> {
  const files: StateFile[] = [];
  let refusal: string | undefined;
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      const why = checkMemberName(entry.path) ?? (entry.type === 'File' || entry.type === 'OldFile' || (entry.type === 'Directory' && posix.normalize(entry.path) === 'keys/') ? undefined : `member "${entry.path}" is a ${entry.type}`);
      refusal ??= why;
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      entry.on('end', () => {
        if (!why && entry.type !== 'Directory') files.push({ name: entry.path, data: Buffer.concat(chunks) });
      });
    },
  });
  await pipeline(Readable.from([plaintext]), parser);
  if (refusal) throw new BundleError(`${source}: ${refusal}`, 'Refusing the whole bundle; nothing was written.');
  if (!files.some((f) => f.name === 'torrc')) throw new BundleError(`${source} has no torrc`, 'A bundle holds torrc and keys/.');
  return files;
}

export async function writeState(files: StateFile[], dir: string): Promise<void> {
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  for (const file of files) await writeFile(join(dir, file.name), file.data, { mode: 0o600 });
}
