import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arch } from '../pipeline/config/schema.js';
import { sha256, sha256File } from '../pipeline/hash.js';
import { findEntry, ISO_BLOCK, readExtent } from '../pipeline/image/iso9660.js';
import { boot, type BootMedium, type Guest } from '../pipeline/qemu/boot.js';
import { MENU } from '../pipeline/qemu/smoke.js';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import { defaultCacheRoot } from '../pipeline/paths.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { stages } from '../pipeline/stages/index.js';
import { hostBuild } from './helpers/host-build.js';

// Tier: host toolchain. Each arch's three images are built (bzImage + initramfs, the kernel
// with the initramfs inside, the hybrid ISO); the ISO boots under QEMU with no network, as a
// disk (a USB stick) through its isohybrid MBR and isolinux (BIOS) and, on x86_64, as a disk
// through UEFI: it must reach the operator menu on the serial console, and power off when asked.
// The smoke tests boot it as a CD.
async function images(arch: Arch) {
  const { output, store } = await hostBuild(arch, ['iso']);
  return { iso: join(output('iso').dir, `tor-ramdisk-${arch}.iso`), output, store };
}


async function halt(guest: Guest): Promise<void> {
  guest.type('10\n');
  await guest.waitFor(/export first\? \[y\/N\] $/, 30_000);
  guest.type('n\n');
  await guest.waitFor(/poweroff now\? \[y\/N\] $/, 30_000);
  guest.type('y\n');
}

for (const arch of ['x86_64', 'i686'] as const) {
  test.serial(`${arch}: the ISO boots from a USB stick (BIOS, its isohybrid MBR, isolinux) to the menu, runs tor, keeps no log, and halts`, async (t) => {
    const { iso } = await images(arch);
    const medium: BootMedium = { image: iso, as: 'disk', firmware: 'bios' };
    const guest = await boot({ arch, ...medium, timeoutMs: 420_000 });
    try {
      await guest.waitFor(/boot: $/, 120_000);
      guest.type('serial\n');
      await guest.waitFor(MENU, 240_000);
      guest.type('8\n');
      await guest.waitFor(/# $|\$ $/, 30_000);
      guest.type('tor --version | head -1; ls /var/log; ps; cat /etc/tor-ramdisk-release; exit\n');
      await guest.waitFor(MENU, 60_000);
      await halt(guest);
      const { exitCode, timedOut } = await guest.exited;
      const out = guest.output();
      t.false(timedOut);
      t.is(exitCode, 0, 'the guest powered off');
      t.regex(out, /Tor version 0\.4\.9\.\d+/);
      t.regex(out, /ls: \/var\/log: No such file or directory/);
      t.notRegex(out, /syslogd|klogd/);
      t.regex(out, new RegExp(`arch=${arch}\\nprofile=relay\\ntoolchain=host`));
    } finally {
      guest.kill();
    }
  });
}

test.serial('x86_64: the ISO boots from a disk (a USB stick) through UEFI, the kernel as its own EFI application', async (t) => {
  const { iso } = await images('x86_64');
  // Straight from UEFI the kernel has no command line: fw_cfg tells init which console the menu is on.
  const guest = await boot({ arch: 'x86_64', image: iso, as: 'disk', firmware: 'uefi', fwCfg: ['name=opt/tor-ramdisk/console,string=ttyS0'], timeoutMs: 420_000 });
  try {
    await guest.waitFor(MENU, 360_000);
    await halt(guest);
    const { exitCode, timedOut } = await guest.exited;
    t.false(timedOut);
    t.is(exitCode, 0, 'the guest powered off');
  } finally {
    guest.kill();
  }
});

test.serial('x86_64: the ISO holds the kernel once: /boot/bzImage (BIOS) reads the EFI image\'s \\EFI\\BOOT\\BOOTX64.EFI (UEFI)', async (t) => {
  const { iso, output } = await images('x86_64');
  const kernel = join(output('kernel-embedded').dir, 'bzImage');
  const efi = (await findEntry(iso, '/boot/efiboot.img'))!;
  const bzImage = (await findEntry(iso, '/boot/bzImage'))!;
  t.true(bzImage.block > efi.block && bzImage.block * ISO_BLOCK + bzImage.size <= efi.block * ISO_BLOCK + efi.size, '/boot/bzImage lies inside the EFI image');
  t.is(sha256(await readExtent(iso, bzImage)), await sha256File(kernel));
  // What UEFI reads: the FAT file system at the EFI image's place in the ISO.
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-efi-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await execa('mcopy', ['-n', '-i', `${iso}@@${efi.block * ISO_BLOCK}`, '::/EFI/BOOT/BOOTX64.EFI', join(dir, 'BOOTX64.EFI')], { env: { MTOOLS_SKIP_CHECK: '1' } });
  t.is(await sha256File(join(dir, 'BOOTX64.EFI')), await sha256File(kernel));
  const sizes = { iso: (await stat(iso)).size, kernel: (await stat(kernel)).size };
  t.true(sizes.iso < sizes.kernel + 2 * 1048576, `the ISO (${sizes.iso} bytes) is the kernel (${sizes.kernel} bytes) and less than 2 MiB more`);
});

test.serial('x86_64: linkage and audit of the image, from the command line', async (t) => {
  await images('x86_64');
  const cli = (...args: string[]) => execa('node', ['dist/pipeline/cli.js', ...args, '--set', 'toolchain.variant=host'], { reject: false });
  const consumers = await cli('linkage', '--consumers', 'libcrypto.so.3');
  t.is(consumers.exitCode, 0, consumers.stderr);
  t.regex(consumers.stdout, /^libcrypto\.so\.3 \(x86_64\), provided by \/lib\/libcrypto\.so\.3, needed by 3 objects\n {2}\/lib\/libssl\.so\.3\n {2}\/usr\/bin\/bundle-crypt\n {2}\/usr\/bin\/tor$/);
  // The seccomp sandbox's library is in the image because tor needs it, and for nothing else.
  const seccomp = await cli('linkage', '--consumers', 'libseccomp.so.2');
  t.regex(seccomp.stdout, /^libseccomp\.so\.2 \(x86_64\), provided by \/lib\/libseccomp\.so\.2, needed by 1 object\n {2}\/usr\/bin\/tor$/);
  const graph = await cli('linkage');
  t.regex(graph.stdout, /\/usr\/bin\/tor +→ .*libevent-2\.1\.so\.7.*libssl\.so\.3/);
  const unknown = await cli('linkage', '--consumers', 'libnothing.so.9');
  t.is(unknown.exitCode, 2);
  t.regex(unknown.stderr, /no object in the image provides or needs libnothing\.so\.9/);
  const audit = await cli('audit', '--json');
  const rows = JSON.parse(audit.stdout) as { path: string; kind: string; hardening: Record<string, { value: string }> }[];
  const executables = rows.filter((r) => r.kind === 'executable');
  t.true(executables.some((r) => r.path === '/usr/bin/tor'));
  for (const row of executables) for (const p of ['pie', 'relro', 'bindNow', 'stackProtector', 'nxStack', 'noWX', 'noTextrel']) t.is(row.hardening[p]!.value, 'yes', `${row.path} ${p}`);
});

test.serial('x86_64: the initramfs and the ISO are reproducible: rebuilt, the same sha256', async (t) => {
  const { output } = await images('x86_64');
  const files = { initramfs: 'initramfs.cpio.xz', iso: 'tor-ramdisk-x86_64.iso' } as const;
  const first = { initramfs: await sha256File(join(output('initramfs').dir, files.initramfs)), iso: await sha256File(join(output('iso').dir, files.iso)) };
  // Rebuilt in a cache of its own (another build path) that borrows every other stage from the
  // shared one: the shared cache, which other test files read meanwhile, loses nothing.
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-rebuild-'));
  // Removes the links, never what they point to.
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const again = await rebuildIn(root, ['initramfs', 'kernel-embedded', 'iso']);
  t.false(again.find((r) => r.stage === 'iso')!.cached);
  t.is(await sha256File(join(again.find((r) => r.stage === 'initramfs')!.dir, files.initramfs)), first.initramfs);
  t.is(await sha256File(join(again.find((r) => r.stage === 'iso')!.dir, files.iso)), first.iso);
  t.log(`initramfs.cpio.xz ${first.initramfs}, tor-ramdisk-x86_64.iso ${first.iso}`);
});

/** The x86_64 host-toolchain ISO built in `root`, whose stages other than `fresh` are links to the default cache's. */
async function rebuildIn(root: string, fresh: readonly string[]) {
  const shared = defaultCacheRoot();
  await mkdir(join(root, 'stages'));
  await symlink(join(shared, 'downloads'), join(root, 'downloads'));
  for (const stage of await readdir(join(shared, 'stages'))) if (!fresh.includes(stage)) await symlink(join(shared, 'stages', stage), join(root, 'stages', stage));
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: ['toolchain.variant=host'] }));
  const dirs = cacheDirs(root);
  return buildStages({ registry: stages, targets: ['iso'], config, pins: await loadPins(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' });
}
