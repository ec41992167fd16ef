/**
 * Writes ustar archives byte by byte with fixed owners (0) and times: the plaintext of a
 * bundle. Kept this small so the tests can also write the hostile entries honest archivers
 * refuse (absolute paths, `..`, devices, escaping links) with the same code.
 */
export interface TarEntry {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'fifo';
  body?: string | Buffer;
  linkpath?: string;
  mode?: number;
  mtime?: number;
}

const TYPE_FLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', dir: '5', fifo: '6' } as const;

export function tarArchive(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const body = type === 'file' ? Buffer.from(entry.body ?? '') : Buffer.alloc(0);
    const header = Buffer.alloc(512);
    header.write(entry.path, 0, 100);
    header.write(octal(entry.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(body.length, 12), 124);
    header.write(octal(entry.mtime ?? 0, 12), 136);
    header.write('        ', 148);
    header.write(TYPE_FLAG[type], 156);
    if (entry.linkpath) header.write(entry.linkpath, 157, 100);
    header.write('ustar\u000000', 257);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
