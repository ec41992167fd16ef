import test from 'ava';
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tiers } from './tiers/tiers.js';

// What a fresh Debian 12 machine has: a minbase bookworm chroot. `doctor --install` must
// install every package the stages declare, and `doctor` then report nothing missing.

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const tier = tiers().debootstrap ?? { not: 'the tiers were not detected' };

if ('not' in tier) {
  test.skip(`doctor in a fresh debootstrap bookworm chroot: not run, ${tier.not}`, () => {});
} else {
  test('doctor --install in a fresh bookworm chroot installs every declared tool; doctor then finds nothing missing', async (t) => {
    t.timeout(40 * 60_000);
    const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-chroot-'));
    try {
      const started = Date.now();
      await execa('debootstrap', ['--variant=minbase', 'bookworm', root, tier.mirror], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
      t.log(`debootstrap bookworm minbase: ${((Date.now() - started) / 1000).toFixed(0)} s`);
      // The project and this machine's node inside; the bind mount lives only in a private mount namespace.
      await mkdir(join(root, 'project'));
      await copyFile(process.execPath, join(root, 'usr', 'local', 'bin', 'node'));
      await copyFile('/etc/resolv.conf', join(root, 'etc', 'resolv.conf'));
      const inside = (command: string) =>
        execa(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            'mount --bind "$1" "$2/project" && mount -o remount,bind,ro "$2/project" && mount -t proc proc "$2/proc" && exec chroot "$2" /bin/sh -c "$3"',
            'sh',
            repo,
            root,
            `cd /project && HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin ${command}`,
          ],
          { reject: false, all: true },
        );
      const before = await inside('node dist/pipeline/cli.js doctor');
      t.is(before.exitCode, 5, before.all);
      t.regex(before.stdout, /^missing: /m);
      const install = await inside('node dist/pipeline/cli.js doctor --install');
      t.is(install.exitCode, 0, install.all?.split('\n').slice(-30).join('\n'));
      const after = await inside('node dist/pipeline/cli.js doctor');
      t.is(after.exitCode, 0, after.all);
      t.is(after.stdout.trim(), 'all host tools are installed');
      t.log(`${before.stdout.split('\n')[0]!.split(', ').length} tools were missing; doctor --install and the check: ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}
