import { join } from 'node:path';
import type { Stage, StageContext } from '../engine/stage.js';
import { extractTarball } from '../sources/extract.js';
import { buildEnv, readToolchain, type Toolchain } from '../toolchain/toolchain.js';

/**
 * A package recipe is data plus the few commands that differ (Buildroot's idea); everything
 * common lives here: unpack the pinned source, take the compiler and flags from the toolchain
 * stage, see the packages it links against, and install into the stage output as a DESTDIR.
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
  tools?: Stage['tools'];
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

export function packageStage(recipe: PackageRecipe): Stage {
  return {
    name: recipe.name,
    title: recipe.title,
    definition: [recipe.definition, import.meta.url],
    sources: [recipe.source],
    deps: ['toolchain', ...(recipe.deps ?? [])],
    config: [...PACKAGE_CONFIG, ...(recipe.config ?? [])],
    ...(recipe.files ? { files: recipe.files } : {}),
    ...(recipe.tools ? { tools: recipe.tools } : {}),
    async run(ctx) {
      const tc = await readToolchain(ctx.deps.toolchain!.dir);
      const tarball = ctx.sources[recipe.source]![0]!;
      const src = join(ctx.work, recipe.source);
      ctx.progress(`extracting ${tarball.name}`);
      await extractTarball(tarball.path, src, { strip: 1, label: tarball.name });
      const depPrefix = (name: string) => join(ctx.deps[name]!.dir, 'usr');
      const base = buildEnv(tc, Number(ctx.config.get('build.sourceDateEpoch')));
      const deps = recipe.deps ?? [];
      const env = {
        ...base,
        // Build paths must not end up in the binaries: map the scratch tree to a fixed name.
        CFLAGS: [base.CFLAGS, `-ffile-prefix-map=${ctx.work}=/build`, ...deps.map((d) => `-I${depPrefix(d)}/include`)].join(' '),
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
        make: (args, options = {}) => ctx.exec('make', [`-j${ctx.jobs}`, ...args], { cwd: options.cwd ?? src, env }),
      });
    },
  };
}
