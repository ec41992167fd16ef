import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from '../config/schema.js';
import type { StageOutput } from '../engine/stage.js';

/**
 * The files a release ships for an arch, named `tor-ramdisk-<version>-<arch>.<ext>`: the kernel
 * and the initramfs beside it, the kernel with the initramfs inside, the hybrid ISO.
 */
export async function releaseImages(arch: Arch, version: string, outputs: readonly StageOutput[]): Promise<Record<string, string>> {
  const dir = (stage: string) => {
    const found = outputs.find((o) => o.stage === stage);
    if (!found) throw new Error(`no ${stage} output among the build's results`);
    return found.dir;
  };
  const iso = (await readdir(dir('iso'))).find((f) => f.endsWith('.iso'))!;
  const base = `tor-ramdisk-${version}-${arch}`;
  return {
    [`${base}.bzImage`]: join(dir('kernel'), 'bzImage'),
    [`${base}.initramfs.cpio.xz`]: join(dir('initramfs'), 'initramfs.cpio.xz'),
    [`${base}-embedded.bzImage`]: join(dir('kernel-embedded'), 'bzImage'),
    [`${base}.iso`]: join(dir('iso'), iso),
  };
}
