import { copyFile, mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from '../config/schema.js';
import type { StageContext } from '../engine/stage.js';
import { runSteps } from '../engine/steps.js';
import { InputError } from '../errors.js';
import { applyFragments } from '../kconfig/apply.js';
import { parseKconfig, readFragment } from '../kconfig/fragment.js';
import { projectRoot } from '../paths.js';
import { extractTarball } from '../sources/extract.js';
import { applyPatchSeries } from '../sources/patches.js';
import type { Toolchain } from './toolchain.js';

/**
 * The hardened uClibc-ng cross toolchain, built in one gcc pass: binutils, kernel headers,
 * uClibc-ng headers, gcc (compiler and static libgcc), uClibc-ng, then the rest of gcc in
 * the same build tree. Each is a step (engine/steps.ts): a failed build resumes at the step
 * that failed. Hardening is gcc's default (PIE, SSP strong, -z now); binutils adds
 * -z relro and defaults to a non-executable stack.
 */
export const UCLIBC_SOURCES = ['binutils', 'gcc', 'uclibc-ng', 'linux'] as const;
export const UCLIBC_FRAGMENTS_DIR = join(projectRoot, 'configs', 'uclibc');

export const uclibcTarget: Record<Arch, string> = { x86_64: 'x86_64-linux-uclibc', i686: 'i686-linux-uclibc' };
const kernelArch: Record<Arch, 'x86_64' | 'i386'> = { x86_64: 'x86_64', i686: 'i386' };

export function binutilsConfigureArgs(arch: Arch, prefix: string, sysroot: string): string[] {
  return [
    `--target=${uclibcTarget[arch]}`,
    `--prefix=${prefix}`,
    `--with-sysroot=${sysroot}`,
    '--disable-nls',
    '--disable-werror',
    '--disable-multilib',
    '--disable-gprofng',
    '--disable-gdb',
    '--disable-gdbserver',
    '--disable-sim',
    '--enable-deterministic-archives',
    '--enable-relro',
    // Objects without a .note.GNU-stack must not get an executable stack.
    '--enable-default-execstack=no',
  ];
}

export function gccConfigureArgs(arch: Arch, prefix: string, sysroot: string): string[] {
  return [
    `--target=${uclibcTarget[arch]}`,
    `--prefix=${prefix}`,
    `--with-sysroot=${sysroot}`,
    '--enable-languages=c',
    ...(arch === 'i686' ? ['--with-arch=i686', '--with-tune=generic'] : []),
    '--disable-bootstrap',
    '--disable-multilib',
    '--disable-nls',
    '--disable-werror',
    '--enable-shared',
    '--enable-threads=posix',
    '--enable-tls',
    '--enable-__cxa_atexit',
    '--disable-decimal-float',
    // libsanitizer needs wordexp; uClibc-ng provides the stack protector, not libssp.
    '--disable-libsanitizer',
    '--disable-libssp',
    '--disable-libquadmath',
    '--disable-libgomp',
    '--disable-libatomic',
    '--disable-libitm',
    '--disable-libvtv',
    '--disable-libstdcxx',
    '--disable-libcc1',
    '--without-isl',
    // Nothing in the image is built with link-time optimisation: lto1 is not worth its build time.
    '--disable-lto',
    // The kernel's hardening plugins (randstruct, latent entropy, stackleak) are built by the
    // host's g++ against this compiler's plugin headers, which `make install` then installs.
    '--enable-plugin',
    '--with-linker-hash-style=gnu',
    // Hardened by default: a plain `gcc hello.c` is PIE with -fstack-protector-strong, linked
    // -z now (binutils adds -z relro). Built-in specs, not a specs file: any file named `specs`
    // replaces gcc's own link line, losing --eh-frame-hdr and the as-needed libgcc_s.
    '--enable-default-pie',
    '--enable-default-ssp',
    '--with-specs=%{!r:-z now}',
  ];
}

export async function buildUclibcToolchain(ctx: StageContext): Promise<Toolchain> {
  const arch = ctx.config.arch;
  const target = uclibcTarget[arch];
  // Everything lives in the resume directory, at paths that stay the same from one attempt to
  // the next (configure records them); the toolchain moves into the stage output at the end.
  const root = ctx.resume!;
  const prefix = join(root, 'prefix');
  const sysroot = join(prefix, target, 'sysroot');
  const src = (name: string) => join(root, 'src', name);
  const build = (name: string) => join(root, `build-${name}`);
  const file = (source: string, name: string) => {
    const found = ctx.sources[source]?.find((f) => f.name === name);
    if (!found) throw new InputError(`toolchain: source ${source} has no file ${name}`);
    return found;
  };

  // Host compilers build the cross tools without debug info: faster, and nothing ships them.
  const env: Record<string, string> = {
    PATH: `${join(prefix, 'bin')}:${ctx.path}`,
    CFLAGS: '-O2',
    CXXFLAGS: '-O2',
    // gcc's probe for a libc stack protector fails against uClibc-ng; it has one.
    gcc_cv_libc_provides_ssp: 'yes',
  };
  const uclibc = src('uclibc-ng');
  const umake = (...args: string[]) => ctx.exec('make', [`ARCH=${kernelArch[arch]}`, ...args], { cwd: uclibc, env });
  // No libc yet, so only the static libgcc: the override must reach libgcc's own sub-make,
  // which a plain variable on the command line does not; passing it inside MAKE does.
  const staticLibgcc = 'MAKE=make enable_shared=no';

  await runSteps(ctx, [
    {
      name: 'sources',
      writes: ['src'],
      async run() {
        for (const source of UCLIBC_SOURCES) {
          const tarball = ctx.sources[source]![0]!;
          ctx.progress(`extracting ${tarball.name}`);
          await extractTarball(tarball.path, src(source), { strip: 1, label: tarball.name, path: ctx.path });
        }
        await ctx.exec('patch', ['-p2', '-i', file('gcc', 'gcc-gfdl-build.diff').path], { cwd: src('gcc') });
        await applyPatchSeries(ctx, 'uclibc-ng', uclibc);
      },
    },
    {
      name: `${arch}: binutils`,
      writes: ['build-binutils', 'prefix'],
      async run() {
        await mkdir(build('binutils'), { recursive: true });
        await ctx.exec(join(src('binutils'), 'configure'), binutilsConfigureArgs(arch, prefix, sysroot), { cwd: build('binutils'), env });
        await ctx.exec('make', ['MAKEINFO=true'], { cwd: build('binutils'), env });
        await ctx.exec('make', ['MAKEINFO=true', 'install'], { cwd: build('binutils'), env });
      },
    },
    {
      name: `${arch}: kernel and uClibc-ng headers`,
      writes: ['build-linux-headers', 'src/uclibc-ng', 'prefix'],
      async run() {
        await ctx.exec('make', ['-C', src('linux'), `O=${build('linux-headers')}`, `ARCH=${kernelArch[arch]}`, `INSTALL_HDR_PATH=${join(sysroot, 'usr')}`, 'headers_install'], { env });
        const fragments = [
          await readFragment(join(UCLIBC_FRAGMENTS_DIR, 'common.config'), { prefix: '', name: 'configs/uclibc/common.config' }),
          await readFragment(join(UCLIBC_FRAGMENTS_DIR, `${arch}.config`), { prefix: '', name: `configs/uclibc/${arch}.config` }),
          parseKconfig(`KERNEL_HEADERS="${join(sysroot, 'usr', 'include')}"\nCROSS_COMPILER_PREFIX="${target}-"\n`, 'toolchain stage', { prefix: '' }),
        ];
        await applyFragments({ what: 'uClibc-ng', tree: uclibc, configPath: join(uclibc, '.config'), make: (t) => umake(t), prefix: '', stage: ctx.stage.name, logPath: ctx.logPath }, 'defconfig', fragments);
        // Headers need only a preprocessor: the host gcc makes them before the cross gcc exists.
        await umake(arch === 'i686' ? 'CC=gcc -m32' : 'CC=gcc', 'CROSS_COMPILE=', 'HOSTCC=gcc', `PREFIX=${sysroot}`, 'install_headers');
      },
    },
    {
      name: `${arch}: gcc (compiler and static libgcc)`,
      writes: ['build-gcc', 'prefix'],
      async run() {
        await mkdir(build('gcc'), { recursive: true });
        await ctx.exec(join(src('gcc'), 'configure'), gccConfigureArgs(arch, prefix, sysroot), { cwd: build('gcc'), env });
        await ctx.exec('make', ['all-gcc'], { cwd: build('gcc'), env });
        await ctx.exec('make', [staticLibgcc, 'all-target-libgcc'], { cwd: build('gcc'), env });
        await ctx.exec('make', [staticLibgcc, 'install-gcc', 'install-target-libgcc'], { cwd: build('gcc'), env });
      },
    },
    {
      name: `${arch}: uClibc-ng`,
      writes: ['src/uclibc-ng', 'prefix'],
      async run() {
        const uclibcMake = [`CROSS_COMPILE=${target}-`, 'HOSTCC=gcc', `PREFIX=${sysroot}`];
        await umake(...uclibcMake, 'all');
        await umake(...uclibcMake, 'install_runtime', 'install_dev');
      },
    },
    {
      name: `${arch}: gcc (target libraries)`,
      writes: ['build-gcc', 'prefix'],
      async run() {
        await ctx.exec('make', ['all'], { cwd: build('gcc'), env });
        await ctx.exec('make', ['install'], { cwd: build('gcc'), env });
        // pthread_cancel loads libgcc_s at run time: it belongs with the libc in the sysroot.
        const { stdout: libgccS } = await ctx.exec(`${target}-gcc`, ['-print-file-name=libgcc_s.so.1'], { env });
        await copyFile(libgccS.trim(), join(sysroot, 'lib', 'libgcc_s.so.1'));
        await ctx.exec(`${target}-strip`, ['--strip-unneeded', join(sysroot, 'lib', 'libgcc_s.so.1')], { env });
      },
    },
  ]);

  // The kernel build uses these linker scripts; a toolchain without them breaks it oddly.
  const ldscripts = await readdir(join(prefix, target, 'lib', 'ldscripts')).catch(() => [] as string[]);
  if (ldscripts.length === 0) throw new InputError(`toolchain: ${target}/lib/ldscripts is missing or empty`);
  await ctx.exec(`${target}-ld`, ['--verbose'], { env });
  // gcc and binutils find their parts, and the sysroot, relative to where they are run from.
  for (const entry of await readdir(prefix)) await rename(join(prefix, entry), join(ctx.out, entry));

  return {
    variant: 'uclibc',
    arch,
    target,
    prefix: `${target}-`,
    binDir: 'bin',
    sysroot: join(target, 'sysroot'),
    // The compiler hardens by default; nothing needs passing.
    cflags: ['-O2'],
    ldflags: [],
    libc: 'uclibc-ng',
    kernelArch: kernelArch[arch],
  };
}
