import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { run } from '../exec.js';
import { sha256, sha256File } from '../hash.js';
import { readNewc } from './sbom.js';

/** A file that differs between two builds, and inside an archive the first member that does. */
export interface Difference {
  file: string;
  member?: string;
}

/**
 * Compares two builds' images, name by name. Where a file differs, looks inside it for the
 * first member that does: the initramfs (cpio), the ISO (ISO 9660, and the FAT image of its
 * UEFI boot inside it).
 */
export async function compareImages(first: Record<string, string>, second: Record<string, string>): Promise<Difference[]> {
  const differences: Difference[] = [];
  for (const name of [...new Set([...Object.keys(first), ...Object.keys(second)])].sort()) {
    const [a, b] = [first[name], second[name]];
    if (!a || !b) {
      differences.push({ file: name, member: `only in the ${a ? 'first' : 'second'} build` });
      continue;
    }
    if ((await sha256File(a)) === (await sha256File(b))) continue;
    const member = name.endsWith('.cpio.xz') ? await firstCpioDifference(a, b) : name.endsWith('.iso') ? await firstIsoDifference(a, b) : undefined;
    differences.push({ file: name, ...(member ? { member } : {}) });
  }
  return differences;
}

async function withTemp<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-compare-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function firstCpioDifference(a: string, b: string): Promise<string | undefined> {
  return withTemp(async (dir) => {
    const read = async (file: string, name: string) => {
      await run('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', file, join(dir, name)]);
      return readNewc(await readFile(join(dir, name)));
    };
    const [x, y] = [await read(a, 'a.cpio'), await read(b, 'b.cpio')];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const [m, n] = [x[i], y[i]];
      if (!m || !n) return `/${(m ?? n)!.path} (only in the ${m ? 'first' : 'second'} build)`;
      if (m.path !== n.path) return `/${m.path} (the second build has /${n.path} there)`;
      if (m.mode !== n.mode) return `/${m.path} (mode ${m.mode.toString(8)} vs ${n.mode.toString(8)})`;
      if (sha256(m.data) !== sha256(n.data)) return `/${m.path}`;
    }
    return 'the archive framing (every member is equal)';
  });
}

async function firstIsoDifference(a: string, b: string): Promise<string | undefined> {
  return withTemp(async (dir) => {
    for (const [iso, name] of [[a, 'a'], [b, 'b']] as const) await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', join(dir, name)]);
    const member = await firstTreeDifference(join(dir, 'a'), join(dir, 'b'));
    if (!member || !member.endsWith('.img')) return member ?? 'the ISO 9660 structure (every file is equal)';
    // The UEFI boot's FAT image: look inside it too.
    for (const name of ['a', 'b']) {
      await mkdir(join(dir, `${name}.fat`));
      await run('mcopy', ['-s', '-n', '-m', '-i', join(dir, name, member), '::/*', join(dir, `${name}.fat`)], { env: { MTOOLS_SKIP_CHECK: '1' } });
    }
    return `${member}${(await firstTreeDifference(join(dir, 'a.fat'), join(dir, 'b.fat'))) ?? ' (its FAT structure; every file is equal)'}`.replace(/\.img\//, '.img::/');
  });
}

/** The first path, in sorted order, whose type, mode or content differs between two trees. */
async function firstTreeDifference(a: string, b: string): Promise<string | undefined> {
  const list = async (root: string) => {
    const out = new Map<string, string>();
    const walk = async (dir: string) => {
      for (const entry of (await readdir(dir)).sort()) {
        const path = join(dir, entry);
        const info = await lstat(path);
        out.set(`/${relative(root, path)}`, info.isDirectory() ? `dir ${info.mode}` : `${info.mode} ${info.isFile() ? await sha256File(path) : ''}`);
        if (info.isDirectory()) await walk(path);
      }
    };
    await walk(root);
    return out;
  };
  const [x, y] = [await list(a), await list(b)];
  return [...new Set([...x.keys(), ...y.keys()])].sort().find((path) => x.get(path) !== y.get(path));
}
