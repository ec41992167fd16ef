// The shared stage cache, two machines on one: `node dist/bench/remote.js [build options]`
// (default: --arch x86_64 --set toolchain.variant=host). Starts Debian's docker-registry on
// 127.0.0.1 and a throwaway signing key, builds cold into an empty cache A pushing every stage,
// then builds into an empty cache B pulling from the registry, and compares every output.
// Cache A shares the default cache's downloads (as bench/stage.ts does); cache B has none.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheRoot } from '../pipeline/paths.js';
import { throwawayGnupg } from '../test/helpers/gnupg.js';
import { startRegistry } from '../test/helpers/registry.js';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const args = process.argv.slice(2);
const build = args.length > 0 ? args : ['--arch', 'x86_64', '--set', 'toolchain.variant=host'];

const keys = await throwawayGnupg();
const gnupg = keys.home;
await keys.newKey('bench cache signer <bench@example.invalid>');
const keyring = join(gnupg, 'pinned.asc');
await writeFile(keyring, await keys.armored('bench@example.invalid'));

const registry = await startRegistry();
const remote = ['--remote', `oci://${registry.host}/tor-ramdisk/stages`, '--set', `remote.keyring=${keyring}`];

async function timed(label: string, cache: string, extra: string[]) {
  const result = await execa('/usr/bin/time', ['-f', '%e %U %S', 'node', cli, 'build', ...build, ...remote, ...extra, '--cache', cache], {
    reject: false,
    env: { CI: 'true', GNUPGHOME: gnupg },
  });
  if (result.exitCode !== 0) {
    console.error(result.stdout, result.stderr);
    throw new Error(`${label} build failed`);
  }
  const [wall, user, sys] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  const outputs = new Map(
    result.stdout
      .split('\n')
      .map((line) => /^\S+ (\S+)\s+(cached|pulled|built)\s+(\/\S+)$/.exec(line))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, { how: m[2]!, dir: m[3]! }]),
  );
  return { wall: wall!, cpu: user! + sys!, outputs, log: result.stderr };
}

/** One digest over every path of a tree: its type, mode, content or link target. */
async function treeDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const name of (await readdir(path)).sort()) {
      const full = join(path, name);
      const info = await lstat(full);
      hash.update(`${rel}${name}\0${info.mode.toString(8)}\0`);
      if (info.isSymbolicLink()) hash.update(await readlink(full));
      else if (info.isFile()) hash.update(await readFile(full));
      else if (info.isDirectory()) await walk(full, `${rel}${name}/`);
      hash.update('\0');
    }
  };
  await walk(dir, '');
  return hash.digest('hex');
}

try {
  const a = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-a-'));
  await mkdir(join(defaultCacheRoot(), 'downloads'), { recursive: true });
  await symlink(join(defaultCacheRoot(), 'downloads'), join(a, 'downloads'));
  const b = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-b-'));
  const cores = availableParallelism();
  const first = await timed('cache A', a, ['--set', 'remote.signKey=bench@example.invalid']);
  const second = await timed('cache B', b, []);
  const stored = await execa('du', ['-sb', registry.storage]);
  let identical = 0;
  for (const [stage, out] of second.outputs) {
    if (out.how !== 'pulled') throw new Error(`cache B ${out.how} ${stage} instead of pulling it:\n${second.log}`);
    const original = first.outputs.get(stage)!;
    if ((await treeDigest(out.dir)) !== (await treeDigest(original.dir))) throw new Error(`${stage}: the pulled output differs from the one built`);
    identical++;
  }
  console.log(`build: ${build.join(' ')}`);
  console.log(`A, empty stage cache, build + sign + push: wall ${first.wall.toFixed(1)} s, CPU ${first.cpu.toFixed(1)} s, utilization ${((100 * first.cpu) / (first.wall * cores)).toFixed(0)} % of ${cores} cores`);
  console.log(`B, empty cache, pull + verify:          wall ${second.wall.toFixed(1)} s, CPU ${second.cpu.toFixed(1)} s`);
  console.log(`B / A: ${((100 * second.wall) / first.wall).toFixed(1)} % (goal ≤ 5 %)`);
  console.log(`registry holds ${(Number(stored.stdout.split('\t')[0]) / 2 ** 20).toFixed(0)} MiB; ${identical} of ${second.outputs.size} stage outputs pulled, each identical to A's`);
} finally {
  await registry.close();
  await keys.close();
}
