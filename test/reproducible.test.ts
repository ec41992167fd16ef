import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newcArchive } from '../pipeline/image/cpio.js';
import { compareImages } from '../pipeline/release/reproducible.js';
import { readNewc } from '../pipeline/release/sbom.js';

// Two "builds" made here with the image's own formats (newc cpio under xz, an ISO by xorriso
// with a FAT boot image made by mkfs.fat and mcopy), equal but for one member deep inside.
async function initramfs(dir: string, name: string, tor: string): Promise<string> {
  const cpio = join(dir, `${name}.cpio`);
  await writeFile(
    cpio,
    newcArchive(
      [
        { path: 'etc', type: 'dir', mode: 0o755 },
        { path: 'etc/hosts', type: 'file', mode: 0o644, data: Buffer.from('127.0.0.1 localhost\n') },
        { path: 'usr/bin/tor', type: 'file', mode: 0o755, data: Buffer.from(tor) },
      ],
      1764028800,
    ),
  );
  await execa('xz', ['-9', '--check=crc32', '-f', cpio]);
  return `${cpio}.xz`;
}

async function iso(dir: string, name: string, kernel: string): Promise<string> {
  const tree = join(dir, `${name}-tree`);
  await mkdir(join(tree, 'boot'), { recursive: true });
  await writeFile(join(tree, 'boot', 'README'), 'same in both\n');
  const img = join(tree, 'boot', 'efiboot.img');
  const env = { MTOOLS_SKIP_CHECK: '1', SOURCE_DATE_EPOCH: '1764028800' };
  await execa('mkfs.fat', ['-C', '--invariant', '-i', '7e2d0000', '-n', 'TEST', img, '1024'], { env });
  await execa('mmd', ['-i', img, '::/EFI', '::/EFI/BOOT'], { env });
  await writeFile(join(dir, `${name}.efi`), kernel);
  // mcopy -m carries the file's date into the FAT: dated first, as the iso stage does.
  await execa('touch', ['-d', '@1764028800', join(dir, `${name}.efi`)]);
  await execa('mcopy', ['-m', '-i', img, join(dir, `${name}.efi`), '::/EFI/BOOT/BOOTX64.EFI'], { env });
  await execa('find', [tree, '-exec', 'touch', '-h', '-d', '@1764028800', '{}', '+']);
  const out = join(dir, `${name}.iso`);
  // As the iso stage does: every timestamp from SOURCE_DATE_EPOCH, so builds in different seconds agree.
  await execa('xorriso', ['-as', 'mkisofs', '-o', out, '-V', 'TEST', '-r', '--modification-date=2025112500000000', tree], { env });
  return out;
}

async function kernel(dir: string, name: string, text: string): Promise<string> {
  await writeFile(join(dir, `${name}.bzImage`), text);
  return join(dir, `${name}.bzImage`);
}

test('two equal builds compare equal; a difference is named down to the first differing member, inside the cpio, the ISO and its FAT image', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-compare-test-'));
  const a = { 'x.initramfs.cpio.xz': await initramfs(dir, 'a', 'tor 1'), 'x.iso': await iso(dir, 'a', 'kernel 1'), 'x.bzImage': await kernel(dir, 'a', 'kernel 1') };
  // Another second: nothing may depend on when it was made.
  await sleep(1100);
  const same = { 'x.initramfs.cpio.xz': await initramfs(dir, 'b', 'tor 1'), 'x.iso': await iso(dir, 'b', 'kernel 1'), 'x.bzImage': await kernel(dir, 'b', 'kernel 1') };
  t.deepEqual(await compareImages(a, same), []);
  t.is(readNewc(Buffer.from((await execa('xz', ['-dc', a['x.initramfs.cpio.xz']], { encoding: 'buffer', stripFinalNewline: false })).stdout)).length, 3);

  const other = { 'x.initramfs.cpio.xz': await initramfs(dir, 'c', 'tor 2'), 'x.iso': await iso(dir, 'c', 'kernel 2'), 'x.bzImage': await kernel(dir, 'c', 'kernel 2') };
  t.deepEqual(await compareImages(a, other), [
    { file: 'x.bzImage' },
    { file: 'x.initramfs.cpio.xz', member: '/usr/bin/tor' },
    { file: 'x.iso', member: '/boot/efiboot.img::/EFI/BOOT/BOOTX64.EFI' },
  ]);
  const missing = await compareImages(a, { 'x.iso': a['x.iso'], 'x.bzImage': a['x.bzImage'] });
  t.deepEqual(missing, [{ file: 'x.initramfs.cpio.xz', member: 'only in the first build' }]);
});
