import test from 'ava';
import { execa } from 'execa';
import { lstat, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractTarball, unsafeEntry } from '../pipeline/sources/extract.js';
import { tarArchive, type TarEntry } from '../pipeline/bundle/ustar.js';

async function sandbox() {
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-extract-'));
  const dest = join(root, 'tree', 'src');
  await mkdir(dest, { recursive: true });
  return { root, dest };
}

async function hostile(entries: TarEntry[]) {
  const { root, dest } = await sandbox();
  const archive = join(root, 'evil.tar');
  await writeFile(archive, tarArchive([{ path: 'pkg-1.0/', type: 'dir' }, { path: 'pkg-1.0/README', body: 'ok\n' }, ...entries]));
  return { root, dest, archive };
}

const cases: [string, TarEntry, RegExp][] = [
  ['a ../ path', { path: 'pkg-1.0/../../escaped', body: 'pwned' }, /has a "\.\." component/],
  ['an absolute path', { path: '/tmp/absolute-escape', body: 'pwned' }, /has an absolute path/],
  ['a symlink out of the tree', { path: 'pkg-1.0/link', type: 'symlink', linkpath: '../../../../etc' }, /symlink pointing outside the tree/],
  ['a symlink to an absolute path', { path: 'pkg-1.0/abs', type: 'symlink', linkpath: '/etc/passwd' }, /symlink to an absolute path/],
  ['a hard link out of the tree', { path: 'pkg-1.0/hard', type: 'hardlink', linkpath: '../outside' }, /hard link outside the tree/],
  ['a device node', { path: 'pkg-1.0/null', type: 'chardev' }, /is a CharacterDevice/],
  ['a FIFO', { path: 'pkg-1.0/pipe', type: 'fifo' }, /is a FIFO/],
];

for (const [what, entry, why] of cases) {
  test(`an archive with ${what} is refused and nothing is written outside`, async (t) => {
    const { root, dest, archive } = await hostile([entry, { path: 'pkg-1.0/after', body: 'later entry' }]);
    const error = await t.throwsAsync(extractTarball(archive, dest, { label: 'evil-1.0.tar' }));
    t.regex(error!.message, /refusing evil-1\.0\.tar: entry/);
    t.regex(error!.message, why);
    t.deepEqual((await readdir(root)).sort(), ['evil.tar', 'tree'], 'nothing appeared beside the tree');
    t.deepEqual(await readdir(join(root, 'tree')), ['src']);
    await t.throwsAsync(lstat('/tmp/absolute-escape'));
  });
}

test('an honest archive extracts, with its top directory stripped, through xz and bzip2 too', async (t) => {
  const { root, dest } = await sandbox();
  const tar = join(root, 'pkg.tar');
  await writeFile(
    tar,
    tarArchive([
      { path: 'pkg-1.0/', type: 'dir' },
      { path: 'pkg-1.0/src/main.c', body: 'int main(void){return 0;}\n' },
      { path: 'pkg-1.0/link', type: 'symlink', linkpath: 'src/main.c' },
      { path: 'pkg-1.0/src/again', type: 'symlink', linkpath: './main.c' },
    ]),
  );
  await extractTarball(tar, dest, { strip: 1 });
  t.is(await readFile(join(dest, 'link'), 'utf8'), 'int main(void){return 0;}\n');
  for (const [tool, ext] of [['xz', 'xz'], ['bzip2', 'bz2']] as const) {
    await execa(tool, ['-k', tar]);
    const out = join(root, `out-${ext}`);
    await extractTarball(`${tar}.${ext}`, out, { strip: 1 });
    t.is(await readFile(join(out, 'src', 'main.c'), 'utf8'), 'int main(void){return 0;}\n');
  }
});

test('a link that escapes only once the top directory is stripped is refused', async (t) => {
  const { root, dest, archive } = await hostile([{ path: 'pkg-1.0/sneaky', type: 'symlink', linkpath: '../outside' }]);
  await t.notThrowsAsync(extractTarball(archive, join(root, 'unstripped')));
  const error = await t.throwsAsync(extractTarball(archive, dest, { strip: 1, label: 'evil-1.0.tar' }));
  t.regex(error!.message, /entry "pkg-1\.0\/sneaky" is a symlink pointing outside the tree/);
});

test('unsafeEntry keeps in-tree links and refuses the rest', (t) => {
  t.is(unsafeEntry('SymbolicLink', 'a/b/c', '../d'), undefined);
  t.is(unsafeEntry('SymbolicLink', 'a/b', '../../x')?.includes('outside'), true);
  t.is(unsafeEntry('File', 'a/./b', undefined), undefined);
  t.is(unsafeEntry('BlockDevice', 'a/sda', undefined)?.includes('BlockDevice'), true);
});
