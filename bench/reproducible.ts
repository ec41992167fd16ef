// Builds one stage twice, from two empty stage caches (so two different build directories),
// and compares every output file's sha256: `node dist/bench/reproducible.js STAGE [build options]`.
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File } from '../pipeline/hash.js';
import { defaultCacheRoot } from '../pipeline/paths.js';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const [stage, ...options] = process.argv.slice(2);
if (!stage || stage.startsWith('-')) {
  console.error('usage: node dist/bench/reproducible.js STAGE [--arch A] [--set key=value]…');
  process.exit(2);
}

async function files(dir: string, root = dir): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of (await readdir(dir)).sort()) {
    const path = join(dir, entry);
    if ((await stat(path)).isDirectory()) for (const [k, v] of await files(path, root)) out.set(k, v);
    else out.set(relative(root, path), await sha256File(path));
  }
  return out;
}

async function buildOnce(): Promise<Map<string, string>> {
  const cache = await mkdtemp(join(tmpdir(), 'tor-ramdisk-repro-'));
  await mkdir(join(defaultCacheRoot(), 'downloads'), { recursive: true });
  await symlink(join(defaultCacheRoot(), 'downloads'), join(cache, 'downloads'));
  const started = Date.now();
  const { stdout } = await execa('node', [cli, 'build', stage!, ...options, '--cache', cache], { env: { CI: 'true' } });
  // The result lines read `<arch> <stage> built|cached <dir>`; the progress lines above them do not.
  const line = stdout.split('\n').find((l) => new RegExp(`^\\S+ +${stage} +(built|cached) `).test(l))!;
  console.log(`built ${stage} in ${((Date.now() - started) / 1000).toFixed(0)} s under ${cache}`);
  return files(line.split(/\s+/).at(-1)!);
}

const first = await buildOnce();
const second = await buildOnce();
let same = true;
for (const [path, sha] of first) {
  const other = second.get(path);
  console.log(`${sha === other ? 'same' : 'DIFFERS'}  ${path}  ${sha.slice(0, 16)}${sha === other ? '' : ` vs ${other?.slice(0, 16) ?? 'missing'}`}`);
  same &&= sha === other;
}
console.log(same ? 'reproducible: every output file has the same sha256' : 'NOT reproducible');
process.exitCode = same ? 0 : 1;
