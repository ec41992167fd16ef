/**
 * A reproducible initramfs archive in the kernel's "newc" cpio format: members sorted,
 * owners, modes and times fixed, inode numbers assigned in order, and device nodes
 * written as plain headers, so building one never needs root.
 */
export type CpioEntry =
  | { path: string; type: 'dir'; mode: number; uid?: number; gid?: number }
  | { path: string; type: 'file'; mode: number; data: Buffer; uid?: number; gid?: number }
  | { path: string; type: 'symlink'; target: string; uid?: number; gid?: number }
  | { path: string; type: 'chardev' | 'blockdev'; mode: number; major: number; minor: number; uid?: number; gid?: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, chardev: 0o020000, blockdev: 0o060000 } as const;

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function member(ino: number, mode: number, uid: number, gid: number, nlink: number, mtime: number, data: Buffer, rdev: [number, number], name: string): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const header = `070701${[ino, mode, uid, gid, nlink, mtime, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0].map(hex).join('')}`;
  const head = Buffer.concat([Buffer.from(header, 'latin1'), nameBytes]);
  return [head, pad4(head.length), data, pad4(data.length)];
}

export function newcArchive(entries: readonly CpioEntry[], mtime: number): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  sorted.forEach((entry, index) => {
    const path = entry.path.replace(/^\/+/, '');
    const uid = entry.uid ?? 0;
    const gid = entry.gid ?? 0;
    switch (entry.type) {
      case 'dir':
        parts.push(...member(index + 1, TYPE_BITS.dir | entry.mode, uid, gid, 2, mtime, Buffer.alloc(0), [0, 0], path));
        break;
      case 'file':
        parts.push(...member(index + 1, TYPE_BITS.file | entry.mode, uid, gid, 1, mtime, entry.data, [0, 0], path));
        break;
      case 'symlink':
        parts.push(...member(index + 1, TYPE_BITS.symlink | 0o777, uid, gid, 1, mtime, Buffer.from(entry.target), [0, 0], path));
        break;
      default:
        parts.push(...member(index + 1, TYPE_BITS[entry.type] | entry.mode, uid, gid, 1, mtime, Buffer.alloc(0), [entry.major, entry.minor], path));
    }
  });
  parts.push(...member(0, 0, 0, 0, 1, 0, Buffer.alloc(0), [0, 0], 'TRAILER!!!'));
  return Buffer.concat(parts);
}
