// The images booted: `node dist/bench/smoke.js [build options]` (default: both arches,
// --set toolchain.variant=host; `--set toolchain.variant=uclibc` for the release images).
// Per arch: the boot figures of bench/boots.ts (relay at the largest RAM tried for the times),
// and the image sizes.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { bootFigures, MEMORIES, seconds, smallest } from './boots.js';
import { sizeOf, stageOutputs } from './outputs.js';

const args = process.argv.slice(2);
const options = args.length > 0 ? args : ['--set', 'toolchain.variant=host'];
const arches: Arch[] = options.includes('--arch') ? [options[options.indexOf('--arch') + 1] as Arch] : [...ARCHES];
const buildOptions = options.filter((_, i) => options[i] !== '--arch' && options[i - 1] !== '--arch');

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
const rows: string[][] = [];
for (const arch of arches) {
  const dirs = await stageOutputs(arch, buildOptions);
  const iso = join(dirs.iso!, (await readdir(dirs.iso!)).find((f) => f.endsWith('.iso'))!);
  const boot = await bootFigures(arch, iso);
  rows.push([
    arch,
    seconds(boot.menu),
    seconds(boot.torStarted),
    seconds(boot.unattended),
    seconds(boot.running),
    smallest(boot.smallestMb),
    mib((await stat(iso)).size),
    mib(await sizeOf(dirs['kernel-embedded']!, 'bzImage')),
    mib(await sizeOf(dirs.initramfs!, '.cpio.xz')),
  ]);
}
const head = ['arch', 'power on → menu', 'power on → tor started (boot line typed)', 'power on → tor started (nothing typed)', 'power on → Running', 'smallest -m', 'ISO', 'bzImage (embedded)', 'initramfs.cpio.xz'];
console.log(`smoke figures (${buildOptions.join(' ') || 'default toolchain'}; relay at ${MEMORIES[0]} MiB for the times):`);
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
