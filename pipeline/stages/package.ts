import { open, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ImageContents, Stage, StageContext } from '../engine/stage.js';
import { BuildError } from '../errors.js';
import type { HostTool } from '../engine/tools.js';
import { extractTarball } from '../sources/extract.js';
import { applyPatchSeries, PATCH_DIRS, PATCH_TOOLS } from '../sources/patches.js';
import { buildEnv, readToolchain, type Toolchain } from '../toolchain/toolchain.js';
import { HOST_CC, POSIX_TOOLS } from './tools.js';

/**
 * A package recipe is data plus the few commands that differ (Buildroot's idea); everything
 * common lives here: unpack the pinned source, take the compiler and flags from the toolchain
 * stage, see the packages it links against, install into the stage output as a DESTDIR, remove
 * what the recipe says nothing needs, and strip every installed executable and library with the
 * toolchain's strip. What goes into the image is the recipe's `image` (initramfs.ts reads it).
 */
export interface PackageRecipe {
  name: string;
  title: string;
  /** `import.meta.url` of the recipe module. */
  definition: string;
  /** The pin in configs/sources.json whose first file is the source tarball. */
  source: string;
  /** Package stages it links against (their keys become part of this one's). */
  deps?: readonly string[];
  config?: readonly string[];
  files?: readonly string[];
  /** Host tools beyond a POSIX shell's and the build machine's C compiler. */
  tools?: readonly HostTool[];
  /** What it puts into the image; none: it is only built on (a package's build needs it). */
  image?: ImageContents;
  /**
   * Installed paths that neither the image nor the packages built on this one need, removed
   * after the install; a `*` matches within the last name. Each must match: a pattern that
   * matches nothing means the package changed how it installs, and the recipe must follow.
   */
  remove?: readonly string[];
  build(pkg: PackageContext): Promise<void>;
}

export interface PackageContext {
  ctx: StageContext;
  /** The unpacked source tree (scratch: discarded after the stage). */
  src: string;
  tc: Toolchain;
  /** CC, CFLAGS, LDFLAGS, … from the toolchain, with the dependencies' headers and libraries. */
  env: Record<string, string>;
  /** Where `make install DESTDIR=…` goes: the stage output. */
  destdir: string;
  /** A dependency's installed tree (its `usr/`). */
  depPrefix(name: string): string;
  /** `make` in the source tree with the package environment. */
  make(args: readonly string[], options?: { cwd?: string }): Promise<unknown>;
}

export const PACKAGE_CONFIG = ['arch', 'build.sourceDateEpoch'] as const;

const NO_UNWIND_TABLES = ['-fno-asynchronous-unwind-tables', '-fno-unwind-tables'];

export function packageStage(recipe: PackageRecipe): Stage {
  // The source's patch series (sources/patches.ts), if the project keeps one for it.
  const patches = PATCH_DIRS[recipe.source];
  return {
    name: recipe.name,
    title: recipe.title,
    definition: recipe.definition,
    sources: [recipe.source],
    deps: ['toolchain', ...(recipe.deps ?? [])],
    config: [...PACKAGE_CONFIG, ...(recipe.config ?? [])],
    ...(recipe.files || patches ? { files: [...(recipe.files ?? []), ...(patches ? [patches] : [])] } : {}),
    tools: [...POSIX_TOOLS, ...HOST_CC, ...(patches ? PATCH_TOOLS : []), ...(recipe.tools ?? [])],
    ...(recipe.image ? { image: recipe.image } : {}),
    async run(ctx) {
      const tc = await readToolchain(ctx.deps.toolchain!.dir);
      const tarball = ctx.sources[recipe.source]![0]!;
      const src = join(ctx.work, recipe.source);
      ctx.progress(`extracting ${tarball.name}`);
      await extractTarball(tarball.path, src, { strip: 1, label: tarball.name, path: ctx.path });
      if (patches) await applyPatchSeries(ctx, recipe.source, src);
      const depPrefix = (name: string) => join(ctx.deps[name]!.dir, 'usr');
      const base = buildEnv(tc, Number(ctx.config.get('build.sourceDateEpoch')), ctx.path);
      const deps = recipe.deps ?? [];
      const env = {
        ...base,
        // Build paths must not end up in the binaries: map the scratch tree to a fixed name. No
        // unwind tables (a fifth of tor's and libcrypto's bytes): this C never unwinds, and the
        // image has no unwinder (libgcc_s), debugger or symbolizer that could read them.
        CFLAGS: [
          base.CFLAGS,
          `-ffile-prefix-map=${ctx.work}=/build`,
          ...NO_UNWIND_TABLES,
          ...deps.map((d) => `-I${depPrefix(d)}/include`),
        ].join(' '),
        LDFLAGS: [base.LDFLAGS, ...deps.flatMap((d) => [`-L${depPrefix(d)}/lib`, `-Wl,-rpath-link,${depPrefix(d)}/lib`])].join(' '),
        PKG_CONFIG_LIBDIR: deps.map((d) => `${depPrefix(d)}/lib/pkgconfig`).join(':'),
        PKG_CONFIG_SYSROOT_DIR: '/',
      };
      await recipe.build({
        ctx,
        src,
        tc,
        env,
        destdir: ctx.out,
        depPrefix,
        make: (args, options = {}) => ctx.exec('make', args, { cwd: options.cwd ?? src, env }),
      });
      for (const pattern of recipe.remove ?? []) await removeInstalled(ctx, pattern);
      const elves = await installedElfFiles(ctx.out);
      if (elves.length > 0) await ctx.exec(`${tc.prefix}strip`, ['--strip-unneeded', ...elves], { env });
    },
  };
}

/** LDFLAGS for a package that links shared libraries: after `-shared`, gcc lets `-pie` make the link an executable's. */
export function withoutPie(ldflags: string): string {
  return ldflags
    .split(' ')
    .filter((flag) => flag !== '-pie')
    .join(' ');
}

async function removeInstalled(ctx: StageContext, pattern: string): Promise<void> {
  const dir = join(ctx.out, dirname(pattern));
  const name = basename(pattern);
  const glob = new RegExp(`^${name.split('*').map(escapeRegExp).join('[^/]*')}$`);
  const installed = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const names = installed.filter((n) => glob.test(n));
  for (const n of names) await rm(join(dir, n), { recursive: true });
  if (names.length === 0) {
    throw new BuildError(`${ctx.stage.name}: nothing installed matches "${pattern}", which the recipe removes`, ctx.stage.name, ctx.logPath, {
      hint: `The package installs differently now: update the recipe's remove list (${ctx.stage.definition}).`,
    });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/** Executables and shared libraries (ELF types EXEC and DYN) in a stage output; links are skipped. */
async function installedElfFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const handle = await open(path, 'r');
    const header = Buffer.alloc(18);
    const { bytesRead } = await handle.read(header, 0, header.length, 0).finally(() => handle.close());
    const type = header.readUInt16LE(16);
    if (bytesRead === header.length && header.toString('latin1', 0, 4) === '\x7fELF' && (type === 2 || type === 3)) found.push(path);
  }
  return found.sort();
}
