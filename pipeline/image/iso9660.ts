import { open, type FileHandle } from 'node:fs/promises';

/**
 * Just enough ISO 9660 to find a file's directory record and point it elsewhere: the primary
 * volume descriptor, directory records, and Rock Ridge names (NM). Used to let the ISO's
 * /boot/bzImage and the EFI boot image's \EFI\BOOT\BOOTX64.EFI share one copy of the kernel.
 */
export const ISO_BLOCK = 2048;

export interface IsoEntry {
  /** The Rock Ridge name where there is one, else the ISO 9660 name without `;1` and a trailing dot. */
  name: string;
  directory: boolean;
  /** First logical block of the file's extent, and its length in bytes. */
  block: number;
  size: number;
  /** Where the directory record starts in the image, in bytes. */
  recordOffset: number;
}

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, offset);
  if (bytesRead !== length) throw new Error(`ISO image ends at ${offset + bytesRead}, expected ${length} bytes at ${offset}`);
  return buffer;
}

function rockRidgeName(record: Buffer): string | undefined {
  const nameLength = record[32]!;
  let at = 33 + nameLength + (nameLength % 2 === 0 ? 1 : 0);
  let name = '';
  let found = false;
  while (at + 4 <= record.length) {
    const signature = record.toString('latin1', at, at + 2);
    const length = record[at + 2]!;
    if (length < 4) break;
    if (signature === 'NM') {
      found = true;
      name += record.toString('utf8', at + 5, at + length);
    }
    at += length;
  }
  return found ? name : undefined;
}

function parseRecord(record: Buffer, recordOffset: number): IsoEntry {
  const nameLength = record[32]!;
  const isoName = record.toString('latin1', 33, 33 + nameLength).replace(/;\d+$/, '').replace(/\.$/, '');
  return {
    name: rockRidgeName(record) ?? isoName,
    directory: (record[25]! & 0x02) !== 0,
    block: record.readUInt32LE(2),
    size: record.readUInt32LE(10),
    recordOffset,
  };
}

async function listDirectory(file: FileHandle, directory: IsoEntry): Promise<IsoEntry[]> {
  const base = directory.block * ISO_BLOCK;
  const data = await readAt(file, base, directory.size);
  const entries: IsoEntry[] = [];
  for (let at = 0; at < data.length; ) {
    const length = data[at]!;
    // Records never cross a block: a zero length means the rest of this block is padding.
    if (length === 0) {
      at = (Math.floor(at / ISO_BLOCK) + 1) * ISO_BLOCK;
      continue;
    }
    const record = data.subarray(at, at + length);
    const id = record[33];
    // Skip "." and ".." (one byte, 0 or 1).
    if (!(record[32] === 1 && (id === 0 || id === 1))) entries.push(parseRecord(record, base + at));
    at += length;
  }
  return entries;
}

async function root(file: FileHandle): Promise<IsoEntry> {
  const pvd = await readAt(file, 16 * ISO_BLOCK, ISO_BLOCK);
  if (pvd[0] !== 1 || pvd.toString('latin1', 1, 6) !== 'CD001') throw new Error('no ISO 9660 primary volume descriptor at block 16');
  if (pvd.readUInt16LE(128) !== ISO_BLOCK) throw new Error(`ISO 9660 block size ${pvd.readUInt16LE(128)}, expected ${ISO_BLOCK}`);
  return parseRecord(pvd.subarray(156, 156 + 34), 16 * ISO_BLOCK + 156);
}

/** The entry at an absolute path (`/boot/bzImage`), or undefined. */
export async function findEntry(image: string, path: string): Promise<IsoEntry | undefined> {
  const file = await open(image, 'r');
  try {
    let entry = await root(file);
    for (const part of path.split('/').filter(Boolean)) {
      if (!entry.directory) return undefined;
      const next: IsoEntry | undefined = (await listDirectory(file, entry)).find((e) => e.name === part);
      if (!next) return undefined;
      entry = next;
    }
    return entry;
  } finally {
    await file.close();
  }
}

/** A file's bytes, read from its extent. */
export async function readExtent(image: string, entry: IsoEntry): Promise<Buffer> {
  const file = await open(image, 'r');
  try {
    return await readAt(file, entry.block * ISO_BLOCK, entry.size);
  } finally {
    await file.close();
  }
}

/** Points a file's directory record at another extent (both byte orders of both fields). */
export async function pointEntry(image: string, entry: IsoEntry, block: number, size: number): Promise<void> {
  const file = await open(image, 'r+');
  try {
    const fields = Buffer.alloc(16);
    fields.writeUInt32LE(block, 0);
    fields.writeUInt32BE(block, 4);
    fields.writeUInt32LE(size, 8);
    fields.writeUInt32BE(size, 12);
    await file.write(fields, 0, 16, entry.recordOffset + 2);
  } finally {
    await file.close();
  }
}
