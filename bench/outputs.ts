// What the benchmark scripts share: build an arch (cached stages are taken as they are) and find its outputs.
import { execa } from 'execa';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../pipeline/config/schema.js';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));

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
