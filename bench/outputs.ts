// What the benchmark scripts share: a stage cache to measure in, build an arch (cached stages
// are taken as they are) and find its outputs.
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../pipeline/config/schema.js';
import { defaultCacheRoot } from '../pipeline/paths.js';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));

/**
 * The stage cache a benchmark measures in: the one `--cache DIR` names (taken out of `args`),
 * else an empty one whose downloads are the default cache's (a cold build, without fetching).
 */
export async function benchCache(args: string[]): Promise<string> {
  const given = args.indexOf('--cache');
  if (given >= 0) return args.splice(given, 2)[1]!;
  const cache = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-'));
  await mkdir(join(defaultCacheRoot(), 'downloads'), { recursive: true });
  await symlink(join(defaultCacheRoot(), 'downloads'), join(cache, 'downloads'));
  return cache;
}

/** The build's output directory of each stage (the build prints one line per stage). */
export async function stageOutputs(arch: Arch, buildOptions: readonly string[]): Promise<Record<string, string>> {
  const result = await execa('node', [cli, 'build', '--arch', arch, ...buildOptions], { env: { CI: 'true' } });
  return Object.fromEntries([...result.stdout.matchAll(/^\S+ +(\S+) +(?:built|cached|pulled) +(\/\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The size of the file in `dir` whose name ends with `suffix`. */
export async function sizeOf(dir: string, suffix: string): Promise<number> {
  const file = (await readdir(dir)).find((f) => f.endsWith(suffix))!;
  return (await stat(join(dir, file))).size;
}
