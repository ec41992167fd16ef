import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InputError } from '../errors.js';
import type { Stage, StageContext } from '../engine/stage.js';
import { which, type HostTool } from '../engine/tools.js';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Arch } from '../config/schema.js';
import { sha256, sha256File } from '../hash.js';
import { PATCH_TOOLS } from '../sources/patches.js';
import { hardeningFlags, readToolchain, TOOLCHAIN_FILE, type Toolchain } from '../toolchain/toolchain.js';
import { buildUclibcToolchain, UCLIBC_SOURCES } from '../toolchain/uclibc.js';
import { CROSS_TOOL_NAMES, HOST_CC, POSIX_TOOLS } from './tools.js';

const hostPrefix: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu-', i686: 'i686-linux-gnu-' };
const kernelArch: Record<Arch, Toolchain['kernelArch']> = { x86_64: 'x86_64', i686: 'i386' };

/** Debian's packages of the host variant's cross tools, per arch: the compiler, the preprocessor, binutils. */
const hostPackages: Record<Arch, { gcc: string; cpp: string; binutils: string }> = {
  x86_64: { gcc: 'gcc', cpp: 'cpp', binutils: 'binutils-x86-64-linux-gnu' },
  i686: { gcc: 'gcc-i686-linux-gnu', cpp: 'cpp-i686-linux-gnu', binutils: 'binutils-i686-linux-gnu' },
};

/** The host variant's compiler and binutils, as `<prefix>gcc`, `<prefix>ld`, …; i686 also needs its libc's headers. */
function hostCrossTools(arch: Arch): HostTool[] {
  const packages = hostPackages[arch];
  return [
    ...CROSS_TOOL_NAMES.map((name): HostTool => ({
      command: `${hostPrefix[arch]}${name}`,
      package: name === 'gcc' || name === 'cpp' ? packages[name] : packages.binutils,
      ...(name === 'gcc' ? { compiler: 'cc1' as const } : {}),
    })),
    // Debian's native gcc runs the assembler and linker by their plain names, found on PATH
    // (the cross compilers find theirs in /usr/<triplet>/bin).
    ...(arch === 'x86_64' ? [{ command: 'as', package: 'binutils' }, { command: 'ld', package: 'binutils' }] : []),
    ...(arch === 'i686' ? [{ file: '/usr/i686-linux-gnu/include/stdio.h', package: 'libc6-dev-i386-cross' }] : []),
  ];
}

/** Building the uClibc-ng toolchain: the host's C and C++ compilers, gcc's libraries and build tools, rsync for the kernel headers. */
const UCLIBC_BUILD_TOOLS: readonly HostTool[] = [
  ...POSIX_TOOLS,
  ...HOST_CC,
  { command: 'g++', package: 'g++', compiler: 'cc1plus' },
  { command: 'makeinfo', package: 'texinfo' },
  { command: 'gawk', package: 'gawk' },
  ...PATCH_TOOLS,
  { command: 'rsync', package: 'rsync' },
  { file: '/usr/include/x86_64-linux-gnu/gmp.h', package: 'libgmp-dev' },
  { file: '/usr/include/mpfr.h', package: 'libmpfr-dev' },
  { file: '/usr/include/mpc.h', package: 'libmpc-dev' },
  // uClibc-ng's headers for i686 are made by the host gcc with -m32.
  { file: '/usr/include/x86_64-linux-gnu/gnu/stubs-32.h', package: 'libc6-dev-i386' },
];

function toolchainTools(config: ResolvedConfig): readonly HostTool[] {
  if (config.toolchainVariant === 'uclibc') return UCLIBC_BUILD_TOOLS;
  if (config.toolchainVariant === 'host') return hostCrossTools(config.arch);
  return [];
}

/** An external toolchain is outside the project: its key covers every file of its tree. */
async function externalTree(config: ResolvedConfig): Promise<Record<string, string>> {
  if (config.toolchainVariant !== 'external') return {};
  const root = String(config.get('toolchain.external.path'));
  if (!root) return {};
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`toolchain.external.path ${root} cannot be read: ${error.code ?? error.message}`, { hint: 'Point it at the root of a prebuilt toolchain (the directory holding bin/).' });
  });
  const manifest: string[] = [];
  for (const entry of entries.filter((e) => e.isFile()).sort((a, b) => (join(a.parentPath, a.name) < join(b.parentPath, b.name) ? -1 : 1))) {
    const path = join(entry.parentPath, entry.name);
    manifest.push(`${relative(root, path)} ${await sha256File(path)}`);
  }
  return { 'toolchain.external.path': sha256(manifest.join('\n')) };
}

/** The compiler every later stage uses, chosen by `toolchain.variant`. */
export const toolchainStage: Stage = {
  name: 'toolchain',
  title: 'toolchain',
  definition: import.meta.url,
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
  tools: toolchainTools,
  identity: externalTree,
  resumable: true,
  async run(ctx) {
    const tc = ctx.config.toolchainVariant === 'uclibc' ? await buildUclibcToolchain(ctx) : await describe(ctx);
    await writeFile(join(ctx.out, TOOLCHAIN_FILE), `${JSON.stringify(tc, null, 2)}\n`);
    await smokeTest(ctx, await readToolchain(ctx.out));
  },
};

async function describe(ctx: StageContext): Promise<Toolchain> {
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
  // bin/: one link per cross tool, to where the host has it (the key holds their identity).
  await mkdir(join(ctx.out, 'bin'));
  for (const tool of hostCrossTools(arch)) if ('command' in tool) await symlink(which(tool.command)!, join(ctx.out, 'bin', tool.command));
  return {
    variant,
    arch,
    target: hostPrefix[arch].replace(/-$/, ''),
    prefix: hostPrefix[arch],
    binDir: 'bin',
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
  const env = { PATH: `${tc.binDir}:${ctx.path}` };
  await ctx.exec(`${tc.prefix}gcc`, [...tc.cflags, ...tc.ldflags, '-o', join(ctx.work, 'hello'), source], { env });
  const { stdout } = await ctx.exec(`${tc.prefix}gcc`, ['-dumpfullversion'], { env });
  ctx.progress(`${tc.prefix}gcc ${stdout.trim()}`);
}
