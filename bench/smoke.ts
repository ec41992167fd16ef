// The images booted: `node dist/bench/smoke.js [build options]` (default: both arches,
// --set toolchain.variant=host; `--set toolchain.variant=uclibc` for the release images).
// Per arch: power on to the operator menu (menu-bios), power on to tor started and to the relay
// Running in the private Tor network's consensus with nothing typed but the boot line (relay),
// power on to tor started with nothing typed at all (unattended: UEFI on x86_64, BIOS on i686),
// the smallest -m (MiB) at which the relay scenario passes, and the image sizes.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { runScenario, scenariosFor } from '../pipeline/qemu/smoke.js';
import { sizeOf, stageOutputs } from './outputs.js';

const args = process.argv.slice(2);
const options = args.length > 0 ? args : ['--set', 'toolchain.variant=host'];
const arches: Arch[] = options.includes('--arch') ? [options[options.indexOf('--arch') + 1] as Arch] : [...ARCHES];
const buildOptions = options.filter((_, i) => options[i] !== '--arch' && options[i - 1] !== '--arch');
// The RAM sizes tried, largest first, until the relay scenario fails.
const MEMORIES = [96, 80, 64, 48];

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
const rows: string[][] = [];
for (const arch of arches) {
  const dirs = await stageOutputs(arch, buildOptions);
  const iso = join(dirs.iso!, (await readdir(dirs.iso!)).find((f) => f.endsWith('.iso'))!);
  const menu = await runScenario(arch, iso, scenariosFor(arch, ['menu-bios'])[0]!);
  const unattended = await runScenario(arch, iso, scenariosFor(arch, ['unattended'])[0]!);
  const [relay] = scenariosFor(arch, ['relay']);
  let smallest: number | undefined;
  let first: Awaited<ReturnType<typeof runScenario>> | undefined;
  for (const memoryMb of MEMORIES) {
    const result = await runScenario(arch, iso, { ...relay!, memoryMb }).catch((error: Error) => {
      console.error(`${arch}: relay with -m ${memoryMb}: ${error.message.split('\n')[0]}`);
      return undefined;
    });
    if (!result) break;
    smallest = memoryMb;
    first ??= result;
  }
  rows.push([
    arch,
    `${menu.marks.menu?.toFixed(1)} s`,
    first ? `${first.marks['tor started']?.toFixed(1)} s` : 'failed',
    `${unattended.marks['tor started']?.toFixed(1)} s`,
    first ? `${first.marks['Running in the consensus']?.toFixed(1)} s` : 'failed',
    smallest ? `${smallest} MiB` : `> ${MEMORIES[0]} MiB`,
    mib((await stat(iso)).size),
    mib(await sizeOf(dirs['kernel-embedded']!, 'bzImage')),
    mib(await sizeOf(dirs.initramfs!, '.cpio.xz')),
  ]);
}
const head = ['arch', 'power on → menu', 'power on → tor started (boot line typed)', 'power on → tor started (nothing typed)', 'power on → Running', 'smallest -m', 'ISO', 'bzImage (embedded)', 'initramfs.cpio.xz'];
console.log(`smoke figures (${buildOptions.join(' ') || 'default toolchain'}; relay at ${MEMORIES[0]} MiB for the times):`);
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
