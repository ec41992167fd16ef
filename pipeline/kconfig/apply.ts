import { readFile, writeFile } from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { explainDrop } from './depends.js';
import { checkFragments, configValues, mergeFragments, parseKconfig, type Fragment } from './fragment.js';

export interface KconfigBuild {
  /** What is being configured, for messages: "kernel", "uClibc-ng", "busybox". */
  what: string;
  /** The source tree, whose Kconfig files explain a dropped symbol. */
  tree: string;
  /** The .config the make targets read and write. */
  configPath: string;
  /** Runs a make target of this tree (`allnoconfig`, `defconfig`, `olddefconfig`). */
  make(target: string): Promise<unknown>;
  /** Symbol prefix in .config: `CONFIG_` for the kernel and busybox, none for uClibc-ng. */
  prefix?: string;
  stage: string;
  logPath?: string;
}

/**
 * start target → fragments in order → olddefconfig → every symbol a fragment set must have
 * kept its value, or the build stops naming the fragment, the symbol and the dependency.
 */
export async function applyFragments(build: KconfigBuild, start: string, fragments: Fragment[]): Promise<Fragment> {
  const prefix = build.prefix ?? 'CONFIG_';
  await build.make(start);
  await writeFile(build.configPath, mergeFragments(await readFile(build.configPath, 'utf8'), fragments, prefix));
  await build.make('olddefconfig');
  const final = parseKconfig(await readFile(build.configPath, 'utf8'), '.config', { prefix });
  const mismatches = checkFragments(fragments, final);
  if (mismatches.length > 0) {
    const values = configValues(final);
    const lines = await Promise.all(
      mismatches.map(async (m) => `  ${m.fragment}: ${m.symbol} wanted ${m.wanted}, got ${m.actual}: ${await explainDrop(build.tree, m.symbol, values, prefix)}`),
    );
    throw new BuildError(`${build.what} configuration: Kconfig dropped ${mismatches.length} symbol(s) that a fragment set:\n${lines.join('\n')}`, build.stage, build.logPath, {
      hint: 'Turn the dependency on in the same fragment, or drop the symbol from the fragment and say why.',
    });
  }
  return final;
}
