import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Arch } from '../config/schema.js';
import type { Stage, StageContext } from '../engine/stage.js';
import type { HostTool } from '../engine/tools.js';
import { BuildError, InputError } from '../errors.js';
import { applyFragments } from '../kconfig/apply.js';
import { configValues, readFragment, type Fragment } from '../kconfig/fragment.js';
import { sha256 } from '../hash.js';
import { projectRoot } from '../paths.js';
import { extractTarball } from '../sources/extract.js';
import { applyPatchSeries, PATCH_DIRS, PATCH_TOOLS } from '../sources/patches.js';
import { readToolchain, type Toolchain } from '../toolchain/toolchain.js';
import { HOST_CC, POSIX_TOOLS } from './tools.js';

export const KERNEL_FRAGMENTS_DIR = join(projectRoot, 'kernel');

/** The fragments of a build, in the order they are applied. */
export function kernelFragmentNames(config: ResolvedConfig): string[] {
  return ['base', 'hardening', `arch-${config.arch}`, 'console', 'drivers', ...(config.get('logging.kernel') ? ['debug'] : [])];
}

/** What `kernel-config` leaves for `kernel check`: every fragment symbol, wanted and actual. */
export interface FragmentReport {
  fragment: string;
  symbol: string;
  wanted: string;
  actual: string;
}

const CONFIG_KEYS = ['arch', 'logging.kernel', 'kernel.modules', 'build.sourceDateEpoch'] as const;
const KERNEL_TOOLS: readonly HostTool[] = [
  ...POSIX_TOOLS,
  // Kbuild's HOSTCC: kconfig, objtool, the build scripts.
  ...HOST_CC,
  { command: 'bc', package: 'bc' },
  { command: 'flex', package: 'flex' },
  { command: 'bison', package: 'bison' },
  { command: 'pkg-config', package: 'pkg-config' },
  ...PATCH_TOOLS,
  { file: '/usr/include/libelf.h', package: 'libelf-dev' },
  { file: '/usr/include/openssl/ssl.h', package: 'libssl-dev' },
  // The GCC plugins (hardening.config): Kbuild's HOSTCXX builds them against the target
  // compiler's plugin headers, which include gmp, mpfr and mpc.
  { command: 'g++', package: 'g++', compiler: 'cc1plus' },
  { file: '/usr/include/x86_64-linux-gnu/gmp.h', package: 'libgmp-dev' },
  { file: '/usr/include/mpfr.h', package: 'libmpfr-dev' },
  { file: '/usr/include/mpc.h', package: 'libmpc-dev' },
];

/** Debian's compilers ship their plugin headers apart; the uClibc-ng gcc installs its own. */
const HOST_PLUGIN_HEADERS: Record<Arch, HostTool> = {
  x86_64: { file: '/usr/lib/gcc/x86_64-linux-gnu/12/plugin/include/plugin-version.h', package: 'gcc-12-plugin-dev' },
  i686: { file: '/usr/lib/gcc-cross/i686-linux-gnu/12/plugin/include/plugin-version.h', package: 'gcc-12-plugin-dev-i686-linux-gnu' },
};

function kernelTools(config: ResolvedConfig): readonly HostTool[] {
  return config.toolchainVariant === 'host' ? [...KERNEL_TOOLS, HOST_PLUGIN_HEADERS[config.arch]] : KERNEL_TOOLS;
}

/**
 * The seed of randstruct and of latent_entropy's compile-time constants: fixed by the kernel
 * source and the checked configuration, so the same inputs give the same kernel (a seed
 * drawn at build time would not). It is as public as the image itself.
 */
function pluginSeed(ctx: StageContext, config: string): string {
  return sha256(`tor-ramdisk plugin seed\n${ctx.sources.linux![0]!.sha256}\n${config}`);
}

function reproducibleEnv(ctx: StageContext, tc: Toolchain): Record<string, string> {
  const epoch = Number(ctx.config.get('build.sourceDateEpoch'));
  return {
    PATH: `${tc.binDir}:${ctx.path}`,
    SOURCE_DATE_EPOCH: String(epoch),
    KBUILD_BUILD_TIMESTAMP: new Date(epoch * 1000).toUTCString(),
    KBUILD_BUILD_USER: 'tor-ramdisk',
    KBUILD_BUILD_HOST: 'tor-ramdisk',
    KBUILD_BUILD_VERSION: '1',
  };
}

/**
 * The extracted, patched source with its object tree. `config`, the checked .config's text,
 * is given where the kernel is compiled: it fixes the plugins' seed.
 */
async function kernelTree(ctx: StageContext, config?: string): Promise<{ src: string; build: string; tc: Toolchain; make: (...targets: string[]) => Promise<unknown> }> {
  if (ctx.config.get('kernel.modules')) throw new InputError('kernel.modules is true, but the image kernel is built without module support', { hint: 'Leave kernel.modules locked to false.' });
  const tc = await readToolchain(ctx.deps.toolchain!.dir);
  const src = join(ctx.work, 'linux');
  // The object tree sits directly inside the source tree, so Kbuild names every path relative
  // to it (srctree = ..): no build path reaches the outputs, and the pair can move and be reused.
  const build = join(src, 'build');
  ctx.progress('extracting linux');
  await extractTarball(ctx.sources.linux![0]!.path, src, { strip: 1, label: ctx.sources.linux![0]!.name, path: ctx.path });
  await applyPatchSeries(ctx, 'linux', src);
  const env = reproducibleEnv(ctx, tc);
  if (config !== undefined) {
    const seed = pluginSeed(ctx, config);
    Object.assign(env, { RANDSTRUCT_SEED: seed, KCFLAGS: `-frandom-seed=${seed.slice(0, 16)}` });
  }
  const make = (...targets: string[]) =>
    ctx.exec('make', ['-C', src, 'O=build', `ARCH=${tc.kernelArch}`, `CROSS_COMPILE=${tc.prefix}`, ...targets], { env });
  return { src, build, tc, make };
}

/** allnoconfig, then the fragments, then olddefconfig; every symbol a fragment set must survive. */
export const kernelConfigStage: Stage = {
  name: 'kernel-config',
  title: 'kernel configuration',
  definition: import.meta.url,
  sources: ['linux'],
  deps: ['toolchain'],
  config: CONFIG_KEYS,
  // Only what this arch's build reads: an i686 fragment does not rebuild the x86_64 kernel.
  files: (config) => [...kernelFragmentNames(config).map((name) => `kernel/${name}.config`), PATCH_DIRS.linux!],
  tools: kernelTools,
  async run(ctx) {
    const { src, build, make } = await kernelTree(ctx);
    const dotConfig = join(build, '.config');
    const fragments: Fragment[] = [];
    for (const name of kernelFragmentNames(ctx.config)) fragments.push(await readFragment(join(KERNEL_FRAGMENTS_DIR, `${name}.config`), { name: `kernel/${name}.config` }));
    const final = await applyFragments({ what: 'kernel', tree: src, configPath: dotConfig, make, stage: ctx.stage.name, logPath: ctx.logPath }, 'allnoconfig', fragments);
    const values = configValues(final);
    const report: FragmentReport[] = fragments.flatMap((f) => f.settings.map((s) => ({ fragment: f.name, symbol: s.symbol, wanted: s.value, actual: values.get(s.symbol) ?? 'n' })));
    await copyFile(dotConfig, join(ctx.out, 'config'));
    await writeFile(join(ctx.out, 'fragments.json'), `${JSON.stringify(report, null, 2)}\n`);
  },
};

/** The bzImage, built from the checked configuration with a fixed timestamp, user and host. */
export const kernelStage: Stage = {
  name: 'kernel',
  title: 'kernel',
  definition: import.meta.url,
  sources: ['linux'],
  deps: ['toolchain', 'kernel-config'],
  config: CONFIG_KEYS,
  tools: kernelTools,
  async run(ctx) {
    const config = join(ctx.deps['kernel-config']!.dir, 'config');
    const { build, make } = await kernelTree(ctx, await readFile(config, 'utf8'));
    await mkdir(build, { recursive: true });
    await copyFile(config, join(build, '.config'));
    await make('olddefconfig');
    if ((await readFile(join(build, '.config'), 'utf8')) !== (await readFile(config, 'utf8'))) {
      throw new BuildError('kernel: olddefconfig changed the checked configuration', ctx.stage.name, ctx.logPath);
    }
    ctx.progress('building bzImage');
    await make('bzImage');
    await copyFile(join(build, 'arch', 'x86', 'boot', 'bzImage'), join(ctx.out, 'bzImage'));
    await copyFile(config, join(ctx.out, 'config'));
    // The object tree stays with the kernel: embedding an initramfs later only relinks.
    await ctx.exec('cp', ['-a', build, join(ctx.out, 'build')]);
    const { size } = await stat(join(ctx.out, 'bzImage'));
    ctx.progress(`bzImage ${size} bytes`);
  },
};

/**
 * The kernel with the initramfs inside (one file to boot). Reuses the kernel stage's object
 * tree: Kbuild tracks each CONFIG symbol on its own, so setting INITRAMFS_SOURCE rebuilds
 * only usr/ and relinks. The archive goes in uncompressed: the bzImage's xz covers it.
 */
export const kernelEmbeddedStage: Stage = {
  name: 'kernel-embedded',
  title: 'kernel with embedded initramfs',
  definition: import.meta.url,
  sources: ['linux'],
  deps: ['toolchain', 'kernel', 'initramfs'],
  config: CONFIG_KEYS,
  tools: kernelTools,
  async run(ctx) {
    // The kernel stage's seed (from the same checked configuration): the same compiler flags, so only usr/ and the link are redone.
    const { src, build, make } = await kernelTree(ctx, await readFile(join(ctx.deps.kernel!.dir, 'config'), 'utf8'));
    await ctx.exec('cp', ['-a', join(ctx.deps.kernel!.dir, 'build'), build]);
    const cpio = join(ctx.work, 'initramfs.cpio');
    await ctx.exec('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', join(ctx.deps.initramfs!.dir, 'initramfs.cpio.xz'), cpio]);
    await ctx.exec(join(src, 'scripts', 'config'), ['--file', join(build, '.config'), '--set-str', 'INITRAMFS_SOURCE', cpio, '--enable', 'INITRAMFS_COMPRESSION_NONE']);
    await make('olddefconfig');
    ctx.progress('relinking bzImage');
    await make('bzImage');
    await copyFile(join(build, 'arch', 'x86', 'boot', 'bzImage'), join(ctx.out, 'bzImage'));
  },
};
