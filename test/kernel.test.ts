import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../pipeline/config/schema.js';
import { newcArchive } from '../pipeline/image/cpio.js';
import { boot } from '../pipeline/qemu/boot.js';
import { readToolchain } from '../pipeline/toolchain/toolchain.js';
import { hostBuild } from './helpers/host-build.js';

// Tier: host toolchain. Builds each arch's kernel (a cache hit after the first run) and boots
// it under QEMU (TCG, no network) into a one-program initramfs that reports on the serial line.
const marker = fileURLToPath(new URL('../../test/fixtures/boot-marker.c', import.meta.url));

async function kernelFor(arch: Arch) {
  const { dir } = await hostBuild(arch, ['kernel']);
  return { kernel: join(dir('kernel'), 'bzImage'), config: await readFile(join(dir('kernel'), 'config'), 'utf8'), toolchain: await readToolchain(dir('toolchain')) };
}

async function markerInitramfs(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-boot-'));
  await execa(`${prefix}gcc`, ['-O2', '-static', '-o', join(dir, 'init'), marker]);
  const cpio = newcArchive(
    [
      { path: 'dev', type: 'dir', mode: 0o755 },
      { path: 'dev/console', type: 'chardev', mode: 0o600, major: 5, minor: 1 },
      { path: 'proc', type: 'dir', mode: 0o555 },
      { path: 'init', type: 'file', mode: 0o755, data: await readFile(join(dir, 'init')) },
    ],
    0,
  );
  await writeFile(join(dir, 'initramfs.cpio'), cpio);
  await execa('xz', ['--check=crc32', '-6', join(dir, 'initramfs.cpio')]);
  return join(dir, 'initramfs.cpio.xz');
}

for (const arch of ['x86_64', 'i686'] as const) {
  test.serial(`${arch}: the kernel builds without modules, boots, keeps no log, and powers off`, async (t) => {
    const { kernel, config, toolchain } = await kernelFor(arch);
    t.regex(config, /^# CONFIG_MODULES is not set$/m);
    t.regex(config, /^# CONFIG_PRINTK is not set$/m);
    const initrd = await markerInitramfs(toolchain.prefix);
    for (const rng of [false, true]) {
      const guest = await boot({ arch, kernel, initrd, append: 'console=ttyS0', timeoutMs: 240_000, ...(rng ? { devices: ['virtio-rng-pci'] } : {}) });
      const { exitCode, timedOut } = await guest.exited;
      const out = guest.output();
      t.false(timedOut, `QEMU timed out; serial output:\n${out}`);
      t.is(exitCode, 0);
      t.regex(out, /TORRAMDISK-TEST: init started/);
      t.regex(out, /TORRAMDISK-TEST: \/proc\/kmsg open failed/);
      t.regex(out, /TORRAMDISK-TEST: syslog\(READ_ALL\) failed/);
      t.regex(out, /TORRAMDISK-TEST: nx: enforced/);
      t.regex(out, /TORRAMDISK-TEST: powering off/);
      // Only the firmware (SeaBIOS) and our init may speak on the serial line: the kernel prints nothing.
      const plain = out.replace(/\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '');
      const others = plain.split('\n').filter((line) => line.trim() && !line.includes('TORRAMDISK-TEST') && !/^(SeaBIOS \(version|Booting from ROM)/.test(line.trim()));
      t.deepEqual(others, [], 'the kernel itself printed nothing on the console');
      const timing = /getrandom returned at (\d+) ms after boot \(blocked (\d+) ms/.exec(out);
      t.truthy(timing, out);
      t.log(`${arch} ${rng ? 'with' : 'without'} virtio-rng: getrandom() returned ${timing![1]} ms after boot, blocked ${timing![2]} ms`);
    }
  });
}
