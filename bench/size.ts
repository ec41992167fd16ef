// The image sizes: `node dist/bench/size.js [build options]` (default: both arches, the
// toolchain of the configuration, uClibc-ng; `--set toolchain.variant=host` for the host's).
// Per arch: the ISO, the kernel alone (bzImage without the initramfs), the kernel with the
// initramfs embedded, initramfs.cpio.xz, the ELF files of the image together, and the five
// largest files in it. Builds what is not in the stage cache first.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { sizeOf, stageOutputs } from './outputs.js';

const options = process.argv.slice(2);
const arches: Arch[] = options.includes('--arch') ? [options[options.indexOf('--arch') + 1] as Arch] : [...ARCHES];
const buildOptions = options.filter((_, i) => options[i] !== '--arch' && options[i - 1] !== '--arch');

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

/** The initramfs stage's listing (type, mode, size, path): every regular file with its size. */
async function files(initramfs: string): Promise<{ path: string; size: number }[]> {
  const listing = await readFile(join(initramfs, 'contents.txt'), 'utf8');
  return [...listing.matchAll(/^file +\d+ +(\d+) +(\S+)$/gm)].map((m) => ({ path: m[2]!, size: Number(m[1]) }));
}

/** The ELF objects of the image, as the audit found them. */
async function elfBytes(initramfs: string, all: { path: string; size: number }[]): Promise<number> {
  const audited = new Set((JSON.parse(await readFile(join(initramfs, 'audit.json'), 'utf8')) as { path: string }[]).map((r) => r.path));
  return all.filter((f) => audited.has(f.path)).reduce((sum, f) => sum + f.size, 0);
}

const head = ['arch', 'ISO', 'kernel (bzImage alone)', 'bzImage (embedded)', 'initramfs.cpio.xz', 'ELF files', 'five largest files'];
const rows: string[][] = [];
for (const arch of arches) {
  const dirs = await stageOutputs(arch, buildOptions);
  const all = await files(dirs.initramfs!);
  const largest = [...all].sort((a, b) => b.size - a.size).slice(0, 5);
  rows.push([
    arch,
    mib(await sizeOf(dirs.iso!, '.iso')),
    mib(await sizeOf(dirs.kernel!, 'bzImage')),
    mib(await sizeOf(dirs['kernel-embedded']!, 'bzImage')),
    mib(await sizeOf(dirs.initramfs!, '.cpio.xz')),
    mb(await elfBytes(dirs.initramfs!, all)),
    largest.map((f) => `${f.path.replace(/^\//, '').split('/').pop()} ${mb(f.size)}`).join(', '),
  ]);
}
console.log(`image sizes (${buildOptions.join(' ') || 'the default toolchain'}):`);
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
