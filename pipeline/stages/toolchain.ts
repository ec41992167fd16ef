import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Stage, StageContext } from '../engine/stage.js';
import type { Arch } from '../config/schema.js';
import { hardeningFlags, readToolchain, TOOLCHAIN_FILE, type Toolchain } from '../toolchain/toolchain.js';
import { buildUclibcToolchain, UCLIBC_SOURCES } from '../toolchain/uclibc.js';

const hostPrefix: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu-', i686: 'i686-linux-gnu-' };
const kernelArch: Record<Arch, Toolchain['kernelArch']> = { x86_64: 'x86_64', i686: 'i386' };

/** The compiler every later stage uses, chosen by `toolchain.variant`. */
export const toolchainStage: Stage = {
  name: 'toolchain',
  title: 'toolchain',
  definition: [import.meta.url, new URL('../toolchain/uclibc.js', import.meta.url).href],
  sources: (config) => (config.toolchainVariant === 'uclibc' ? UCLIBC_SOURCES : []),
  files: ['configs/uclibc'],
  config: [
    'arch',
    'toolchain.variant',
    'toolchain.external.path',
    'toolchain.external.prefix',
    'hardening.pie',
    'hardening.stackProtector',
    'hardening.relro',
    'hardening.bindNow',
    'hardening.nxStack',
  ],
  tools: [
    { command: 'x86_64-linux-gnu-gcc', package: 'gcc' },
    { command: 'i686-linux-gnu-gcc', package: 'gcc-i686-linux-gnu' },
    { file: '/usr/i686-linux-gnu/include/stdio.h', package: 'libc6-dev-i386-cross' },
    // Building the uClibc-ng toolchain:
    { command: 'g++', package: 'g++' },
    { command: 'makeinfo', package: 'texinfo' },
    { command: 'gawk', package: 'gawk' },
    { command: 'patch', package: 'patch' },
    { file: '/usr/include/x86_64-linux-gnu/gmp.h', package: 'libgmp-dev' },
    { file: '/usr/include/mpfr.h', package: 'libmpfr-dev' },
    { file: '/usr/include/mpc.h', package: 'libmpc-dev' },
    { file: '/usr/include/x86_64-linux-gnu/gnu/stubs-32.h', package: 'libc6-dev-i386' },
  ],
  async run(ctx) {
    const tc = ctx.config.toolchainVariant === 'uclibc' ? await buildUclibcToolchain(ctx) : describe(ctx);
    await writeFile(join(ctx.out, TOOLCHAIN_FILE), `${JSON.stringify(tc, null, 2)}\n`);
    await smokeTest(ctx, await readToolchain(ctx.out));
  },
};

function describe(ctx: StageContext): Toolchain {
  const { config } = ctx;
  const arch = config.arch;
  const variant = config.toolchainVariant;
  const flags = hardeningFlags(config);
  if (variant === 'external') {
    const path = String(config.get('toolchain.external.path'));
    const prefix = String(config.get('toolchain.external.prefix'));
    if (!path || !prefix) throw new InputError('toolchain.variant is external, but toolchain.external.path or toolchain.external.prefix is empty');
    return {
      variant,
      arch,
      target: prefix.replace(/-$/, ''),
      prefix,
      binDir: join(path, 'bin'),
      sysroot: join(path, prefix.replace(/-$/, ''), 'sysroot'),
      // An external toolchain's own defaults are not trusted: the flags are passed explicitly.
      ...flags,
      libc: prefix.includes('uclibc') ? 'uclibc-ng' : 'glibc',
      kernelArch: kernelArch[arch],
    };
  }
  return {
    variant,
    arch,
    target: hostPrefix[arch].replace(/-$/, ''),
    prefix: hostPrefix[arch],
    binDir: '',
    sysroot: arch === 'x86_64' ? '/' : '/usr/i686-linux-gnu',
    cflags: [...flags.cflags, '-D_FORTIFY_SOURCE=2'],
    ldflags: flags.ldflags,
    libc: 'glibc',
    kernelArch: kernelArch[arch],
  };
}

/** Compiles a program with the toolchain's flags: a toolchain that cannot is not handed on. */
async function smokeTest(ctx: StageContext, tc: Toolchain): Promise<void> {
  const source = join(ctx.work, 'hello.c');
  await writeFile(source, '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[16]; strncpy(b, c > 1 ? v[1] : "x", 15); b[15] = 0; puts(b); return 0; }\n');
  const env: Record<string, string> = tc.binDir ? { PATH: `${tc.binDir}:${process.env.PATH ?? ''}` } : {};
  await ctx.exec(`${tc.prefix}gcc`, [...tc.cflags, ...tc.ldflags, '-o', join(ctx.work, 'hello'), source], { env });
  const { stdout } = await ctx.exec(`${tc.prefix}gcc`, ['-dumpfullversion'], { env });
  ctx.progress(`${tc.prefix}gcc ${stdout.trim()}`);
}
