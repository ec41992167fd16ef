import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { StageOutput } from '../engine/stage.js';

/**
 * The files a release ships for an arch, named `tor-ramdisk-<version>-<arch>.<ext>`: the kernel
 * and the initramfs beside it, the kernel with the initramfs inside, the hybrid ISO. Images not
 * made for release say so in their names: `-host` (Debian's toolchain), `-unlocked` (a
 * security invariant reversed by a layer).
 */
export function releaseBase(config: ResolvedConfig, version: string): string {
  const marks = [...(config.toolchainVariant === 'uclibc' ? [] : [config.toolchainVariant]), ...(config.unlocked.length > 0 ? ['unlocked'] : [])];
  return ['tor-ramdisk', version, config.arch, ...marks].join('-');
}

export async function releaseImages(config: ResolvedConfig, version: string, outputs: readonly StageOutput[]): Promise<Record<string, string>> {
  const dir = (stage: string) => {
    const found = outputs.find((o) => o.stage === stage);
    if (!found) throw new Error(`no ${stage} output among the build's results`);
    return found.dir;
  };
  const iso = (await readdir(dir('iso'))).find((f) => f.endsWith('.iso'))!;
  const base = releaseBase(config, version);
  return {
    [`${base}.bzImage`]: join(dir('kernel'), 'bzImage'),
    [`${base}.initramfs.cpio.xz`]: join(dir('initramfs'), 'initramfs.cpio.xz'),
    [`${base}-embedded.bzImage`]: join(dir('kernel-embedded'), 'bzImage'),
    [`${base}.iso`]: join(dir('iso'), iso),
  };
}
