import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stage, StageContext } from '../engine/stage.js';

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

/**
 * A hybrid ISO (CD and USB stick) holding the kernel with the initramfs inside: BIOS boots it
 * through isolinux (pinned from Debian); on x86_64, UEFI boots the same kernel as its own EFI
 * application, \EFI\BOOT\BOOTX64.EFI in a FAT image that is both the El Torito EFI image and,
 * on a stick, a GPT partition. Every date is SOURCE_DATE_EPOCH and every id fixed, so the
 * same inputs give the same ISO.
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
  ],
  async run(ctx) {
    const epoch = String(ctx.config.get('build.sourceDateEpoch'));
    const env = { SOURCE_DATE_EPOCH: epoch, MTOOLS_SKIP_CHECK: '1' };
    const file = (name: string) => ctx.sources.syslinux!.find((f) => f.name === name)!.path;
    const kernel = join(ctx.deps['kernel-embedded']!.dir, 'bzImage');
    const tree = join(ctx.work, 'iso');
    await mkdir(join(tree, 'isolinux'), { recursive: true });
    await mkdir(join(tree, 'boot'), { recursive: true });
    await copyFile(file('isolinux.bin'), join(tree, 'isolinux', 'isolinux.bin'));
    await copyFile(file('ldlinux.c32'), join(tree, 'isolinux', 'ldlinux.c32'));
    await writeFile(join(tree, 'isolinux', 'isolinux.cfg'), isolinuxConfig(ctx.config.arch));
    await copyFile(kernel, join(tree, 'boot', 'bzImage'));
    // Every file dated SOURCE_DATE_EPOCH, before mcopy -m carries the kernel's date into the FAT.
    const dateAll = () => ctx.exec('find', [tree, '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+']);
    await dateAll();

    const efi = ctx.config.arch === 'x86_64';
    if (efi) {
      ctx.progress('writing the EFI boot image');
      const image = join(tree, 'boot', 'efiboot.img');
      // The kernel plus room for the FAT itself, in KiB.
      const kib = Math.ceil((await stat(kernel)).size / 1024) + 512;
      await ctx.exec('mkfs.fat', ['-C', '--invariant', '-i', '7e2d0000', '-n', 'TORRAMDISK', image, String(kib)], { env });
      await ctx.exec('mmd', ['-i', image, '::/EFI', '::/EFI/BOOT'], { env });
      await ctx.exec('mcopy', ['-m', '-i', image, join(tree, 'boot', 'bzImage'), '::/EFI/BOOT/BOOTX64.EFI'], { env });
      await dateAll();
    }

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
        '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
        '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
        ...(efi ? ['-eltorito-alt-boot', '-e', 'boot/efiboot.img', '-no-emul-boot', '-isohybrid-gpt-basdat'] : []),
        tree,
      ],
      { env },
    );
    ctx.progress(`${isoName(ctx)} ${(await stat(iso)).size} bytes`);
  },
};
