import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stage, StageContext } from '../engine/stage.js';
import { BuildError } from '../errors.js';
import { sha256, sha256File } from '../hash.js';
import { findEntry, ISO_BLOCK, pointEntry, readExtent } from '../image/iso9660.js';

/** The ISO's file name: what it is, for which arch, and whether its kernel keeps a log. */
export function isoName(ctx: Pick<StageContext, 'config'>): string {
  return `tor-ramdisk-${ctx.config.arch}${ctx.config.get('logging.kernel') ? '-debug' : ''}.iso`;
}

function isolinuxConfig(arch: string): string {
  return [
    'SERIAL 0 115200',
    'PROMPT 1',
    'TIMEOUT 50',
    'DEFAULT screen',
    `SAY tor-ramdisk ${arch}: Enter boots with the menu on the screen; "serial" puts it on ttyS0 (115200 8N1).`,
    'LABEL screen',
    '  LINUX /boot/bzImage',
    'LABEL serial',
    '  LINUX /boot/bzImage',
    '  APPEND console=ttyS0,115200',
    '',
  ].join('\n');
}

/** Where a FAT file's data starts in its image: the BPB's layout and the file's first cluster. */
function fatDataOffset(bootSector: Buffer, firstCluster: number): number {
  const bytesPerSector = bootSector.readUInt16LE(11);
  const sectorsPerCluster = bootSector[13]!;
  const reserved = bootSector.readUInt16LE(14);
  const fats = bootSector[16]!;
  const rootEntries = bootSector.readUInt16LE(17);
  const fatSectors = bootSector.readUInt16LE(22);
  const dataStart = (reserved + fats * fatSectors + Math.ceil((rootEntries * 32) / bytesPerSector)) * bytesPerSector;
  return dataStart + (firstCluster - 2) * sectorsPerCluster * bytesPerSector;
}

/**
 * A hybrid ISO (CD and USB stick) holding the kernel with the initramfs inside: BIOS boots it
 * through isolinux (pinned from Debian); on x86_64, UEFI boots the same kernel as its own EFI
 * application, \EFI\BOOT\BOOTX64.EFI in a FAT image that is both the El Torito EFI image and,
 * on a stick, a GPT partition. The kernel is stored once: the FAT holds it in contiguous
 * 2 KiB clusters aligned to the ISO's blocks, and the ISO 9660 record of /boot/bzImage points
 * into them. Every date is SOURCE_DATE_EPOCH and every id fixed, so the same inputs give the
 * same ISO.
 */
export const isoStage: Stage = {
  name: 'iso',
  title: 'hybrid ISO',
  definition: import.meta.url,
  sources: ['syslinux'],
  deps: ['kernel-embedded'],
  config: ['arch', 'logging.kernel', 'build.sourceDateEpoch'],
  tools: [
    { command: 'find', package: 'findutils' },
    { command: 'touch', package: 'coreutils' },
    { command: 'xorriso', package: 'xorriso' },
    { command: 'mmd', package: 'mtools' },
    { command: 'mkfs.fat', package: 'dosfstools' },
    { command: 'mcopy', package: 'mtools' },
    { command: 'mshowfat', package: 'mtools' },
  ],
  async run(ctx) {
    const epoch = String(ctx.config.get('build.sourceDateEpoch'));
    const env = { SOURCE_DATE_EPOCH: epoch, MTOOLS_SKIP_CHECK: '1' };
    const file = (name: string) => ctx.sources.syslinux!.find((f) => f.name === name)!.path;
    const kernel = join(ctx.deps['kernel-embedded']!.dir, 'bzImage');
    const kernelSize = (await stat(kernel)).size;
    const fail = (why: string) => new BuildError(`iso: ${why}`, ctx.stage.name, ctx.logPath);
    const tree = join(ctx.work, 'iso');
    await mkdir(join(tree, 'isolinux'), { recursive: true });
    await mkdir(join(tree, 'boot'), { recursive: true });
    await copyFile(file('isolinux.bin'), join(tree, 'isolinux', 'isolinux.bin'));
    await copyFile(file('ldlinux.c32'), join(tree, 'isolinux', 'ldlinux.c32'));
    await writeFile(join(tree, 'isolinux', 'isolinux.cfg'), isolinuxConfig(ctx.config.arch));
    // Every file dated SOURCE_DATE_EPOCH, before mcopy -m carries the kernel's date into the FAT.
    const dateAll = () => ctx.exec('find', [tree, '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+']);

    const efi = ctx.config.arch === 'x86_64';
    // Where the kernel's bytes sit inside the EFI image (x86_64), or the kernel file itself.
    let shared: number | undefined;
    if (efi) {
      ctx.progress('writing the EFI boot image');
      const image = join(tree, 'boot', 'efiboot.img');
      await copyFile(kernel, join(ctx.work, 'BOOTX64.EFI'));
      await ctx.exec('touch', ['-d', `@${epoch}`, join(ctx.work, 'BOOTX64.EFI')]);
      // 2 KiB clusters (one ISO block each); the kernel plus room for the FAT and two directories, in KiB.
      const kib = Math.ceil(kernelSize / 2048) * 2 + 64;
      await ctx.exec('mkfs.fat', ['-C', '--invariant', '-i', '7e2d0000', '-n', 'TORRAMDISK', '-s', '4', '-r', '16', image, String(kib)], { env });
      await ctx.exec('mmd', ['-i', image, '::/EFI', '::/EFI/BOOT'], { env });
      await ctx.exec('mcopy', ['-m', '-i', image, join(ctx.work, 'BOOTX64.EFI'), '::/EFI/BOOT/BOOTX64.EFI'], { env });
      const { stdout } = await ctx.exec('mshowfat', ['-i', image, '::/EFI/BOOT/BOOTX64.EFI'], { env });
      const run = /<(\d+)-(\d+)>\s*$/.exec(stdout.trim());
      if (!run || /></.test(stdout)) throw fail(`the kernel is not one contiguous run of clusters in the EFI image (mshowfat: ${stdout.trim()})`);
      shared = fatDataOffset((await readFile(image)).subarray(0, 512), Number(run[1]));
      if (shared % ISO_BLOCK !== 0) throw fail(`the kernel starts at byte ${shared} of the EFI image, not on a ${ISO_BLOCK}-byte block`);
      // /boot/bzImage is written empty and pointed at those clusters once the ISO exists.
      await writeFile(join(tree, 'boot', 'bzImage'), '');
    } else {
      await copyFile(kernel, join(tree, 'boot', 'bzImage'));
    }
    await dateAll();

    ctx.progress('writing the ISO');
    const iso = join(ctx.out, isoName(ctx));
    const date = new Date(Number(epoch) * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    await ctx.exec(
      'xorriso',
      [
        '-as', 'mkisofs',
        '-o', iso,
        '-V', 'TOR_RAMDISK',
        '-r',
        '--modification-date=' + `${date}00`,
        '-isohybrid-mbr', file('isohdpfx.bin'),
        // isohybrid pads the image to whole cylinders of its fake disk geometry: 16 heads of 32
        // sectors make them 256 KiB, where the usual 64 heads pad up to 1 MiB more.
        '-partition_hd_cyl', '16', '-partition_sec_hd', '32',
        '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
        '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
        ...(efi ? ['-eltorito-alt-boot', '-e', 'boot/efiboot.img', '-no-emul-boot', '-isohybrid-gpt-basdat'] : []),
        tree,
      ],
      { env },
    );
    if (shared !== undefined) {
      const image = await findEntry(iso, '/boot/efiboot.img');
      const bzImage = await findEntry(iso, '/boot/bzImage');
      if (!image || !bzImage) throw fail(`${isoName(ctx)} lacks /boot/efiboot.img or /boot/bzImage`);
      await pointEntry(iso, bzImage, image.block + shared / ISO_BLOCK, kernelSize);
    }
    // Both ways to the kernel must read back the kernel.
    const pointed = await findEntry(iso, '/boot/bzImage');
    const copy = pointed && (await readExtent(iso, pointed));
    if (!copy || sha256(copy) !== (await sha256File(kernel))) throw fail(`/boot/bzImage in ${isoName(ctx)} does not read back as the kernel`);
    ctx.progress(`${isoName(ctx)} ${(await stat(iso)).size} bytes, the kernel stored once`);
  },
};
