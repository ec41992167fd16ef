import type { Stage } from '../engine/stage.js';
import { packageStage, withoutPie, type PackageContext, type PackageRecipe } from './package.js';

/**
 * A package built the GNU way (Buildroot's autotools-package): `./configure --build --host
 * --prefix=/usr OPTIONS`, `make ARGS`, `make ARGS install DESTDIR=…`. The recipe is data: its
 * options, its environment, what it removes, what it puts in the image; the hooks are for
 * the one or two lines a package needs besides.
 */
export interface AutotoolsRecipe extends Omit<PackageRecipe, 'build'> {
  /** The package's config.guess, for --build. */
  configGuess: string;
  /** configure's options after --build, --host and --prefix=/usr; a function when one names a dependency's tree. */
  configure: readonly string[] | ((pkg: PackageContext) => readonly string[]);
  /** Variables for configure and make, over the toolchain's (a function of them: CFLAGS are extended, not replaced). */
  env?: (env: Readonly<Record<string, string>>) => Record<string, string>;
  /** It links shared libraries only: no `-pie` in LDFLAGS. */
  sharedOnly?: boolean;
  /** Arguments of both makes, e.g. the programs to build. */
  makeArgs?: readonly string[];
  /** After configure, before make: e.g. a local options header. */
  preBuild?(pkg: PackageContext, env: Readonly<Record<string, string>>): Promise<void>;
  /** After the install, before `remove`: e.g. what is kept beside the image's tree. */
  postInstall?(pkg: PackageContext): Promise<void>;
}

export function autotoolsPackage(recipe: AutotoolsRecipe): Stage {
  const { configGuess, configure, env: recipeEnv, sharedOnly, makeArgs = [], preBuild, postInstall, ...rest } = recipe;
  return packageStage({
    ...rest,
    async build(pkg) {
      const { ctx, src, tc, destdir } = pkg;
      const base = sharedOnly ? { ...pkg.env, LDFLAGS: withoutPie(pkg.env.LDFLAGS!) } : pkg.env;
      const env = { ...base, ...recipeEnv?.(base) };
      // --build (this machine, from the package's own config.guess) and --host, named apart, put
      // configure in cross mode for every toolchain, the host one included: no test program runs,
      // so the result does not depend on whether this machine can run the target's binaries, and
      // no dependency's build path is linked in as an rpath to make one run.
      const { stdout: build } = await ctx.exec('sh', [configGuess], { cwd: src });
      const options = typeof configure === 'function' ? configure(pkg) : configure;
      await ctx.exec('./configure', [`--build=${build.trim()}`, `--host=${tc.target}`, '--prefix=/usr', ...options], { cwd: src, env });
      await preBuild?.(pkg, env);
      await ctx.exec('make', [...makeArgs], { cwd: src, env });
      await ctx.exec('make', [...makeArgs, 'install', `DESTDIR=${destdir}`], { cwd: src, env });
      await postInstall?.(pkg);
    },
  });
}
