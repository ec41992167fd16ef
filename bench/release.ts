// The maintainers' figures, side by side from one run: `node dist/bench/release.js [--cache DIR]
// [build options]` (default: the configuration's toolchain, uClibc-ng; `--set
// toolchain.variant=host` for the host's). It works in a copy of the project, whose pins and
// initramfs/ it changes (the clone's are never touched), and in a stage cache that starts empty
// (downloads shared with the default cache) unless `--cache DIR` names one: then "cold" builds
// what that cache lacks, and the table says which stages it already had.
//
//   cold build      both arches from that cache (wall, CPU of every process, utilization)
//   no-op rebuild   the same again
//   tor pin change  the pin pointed at a second tor tarball (the pinned one with a line added to
//                   its ChangeLog), served from 127.0.0.1; both arches rebuilt
//   initramfs change  a comment added to initramfs/init; both arches rebuilt
//   sizes, boots    per arch: ISO, embedded bzImage, cpio.xz; bench/boots.ts's figures
//   monthly path    another tor pin change, then build and `release` (every smoke scenario, a
//                   throwaway signing key): from the pin change to the signed release directory
import { execa } from 'execa';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { ARCHES } from '../pipeline/config/schema.js';
import { sha256File } from '../pipeline/hash.js';
import { throwawayGnupg } from '../test/helpers/gnupg.js';
import { startServer } from '../test/helpers/http-server.js';
import { projectCopy } from '../test/helpers/project-copy.js';
import { bootFigures, seconds, smallest } from './boots.js';
import { benchCache, sizeOf } from './outputs.js';

const args = process.argv.slice(2);
const cache = await benchCache(args);
const cores = availableParallelism();
const project = await projectCopy();
const cli = join(project, 'dist', 'pipeline', 'cli.js');

interface Run {
  wall: number;
  cpu: number;
  stdout: string;
}

const minutes = (s: number) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const utilization = (run: Run) => `${((100 * run.cpu) / (run.wall * cores)).toFixed(0)} %`;

/** One command of the copy's CLI under /usr/bin/time, so CPU time includes every compiler it starts. */
async function timed(label: string, command: string[], env: Record<string, string> = {}): Promise<Run> {
  console.error(`bench: ${label}…`);
  const result = await execa('/usr/bin/time', ['-f', '%e %U %S', 'node', cli, ...command, '--cache', cache], { reject: false, env: { CI: 'true', ...env } });
  if (result.exitCode !== 0) {
    console.error(result.stdout.split('\n').slice(-20).join('\n'), result.stderr);
    throw new Error(`${label} failed (exit ${result.exitCode})`);
  }
  const [wall, user, sys] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  const run = { wall: wall!, cpu: user! + sys!, stdout: result.stdout };
  console.error(`bench: ${label}: wall ${minutes(run.wall)}, CPU ${minutes(run.cpu)}, utilization ${utilization(run)}`);
  return run;
}

const build = (label: string) => timed(label, ['build', '--arch', 'all', ...args]);

/** Stages the cache holds before the run, by name. */
async function cachedStages(): Promise<string[]> {
  const stages = await readdir(join(cache, 'stages')).catch(() => [] as string[]);
  const held = await Promise.all(stages.map(async (s) => ((await readdir(join(cache, 'stages', s))).some((f) => /^[0-9a-f]{64}$/.test(f)) ? s : undefined)));
  return held.filter((s): s is string => s !== undefined);
}

// The second tor tarballs: the pinned one, unpacked, with a line added to its ChangeLog.
const server = await startServer();
const pinsPath = join(project, 'configs', 'sources.json');
const pins = JSON.parse(await readFile(pinsPath, 'utf8')) as { sources: Record<string, { files: { name: string; sha256: string; urls: string[]; mirrors?: unknown }[] }> };
const torFile = pins.sources.tor!.files[0]!;
async function changeTor(serial: number): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-tor-'));
  await tar.x({ file: join(cache, 'downloads', 'sha256', torFile.sha256), cwd: work });
  const [top] = await readdir(work);
  await appendFile(join(work, top!, 'ChangeLog'), `\n  o Benchmark change ${serial}.\n`);
  const tarball = join(work, torFile.name);
  await tar.c({ gzip: true, portable: true, file: tarball, cwd: work }, [top!]);
  const path = `/${serial}/${torFile.name}`;
  server.route(path, { kind: 'file', body: await readFile(tarball) });
  const next = structuredClone(pins);
  next.sources.tor!.files[0] = { name: torFile.name, sha256: await sha256File(tarball), urls: [server.url(path)] };
  await writeFile(pinsPath, `${JSON.stringify(next, null, 2)}\n`);
  await rm(work, { recursive: true, force: true });
}

const had = await cachedStages();
// The cold build fetches the pinned tarball the tor changes start from.
const cold = await build('cold build');
const noop = await build('no-op rebuild');
await changeTor(1);
const torChange = await build('tor pin change');
await appendFile(join(project, 'initramfs', 'init'), '# benchmark change\n');
const initramfsChange = await build('initramfs change');

// Per arch, from the last build's result lines (`<arch> <stage> built|cached <dir>`).
const outputs = new Map<string, Record<string, string>>();
for (const m of initramfsChange.stdout.matchAll(/^(\S+) +(\S+) +(?:built|cached|pulled) +(\/\S+)$/gm)) {
  outputs.set(m[1]!, { ...outputs.get(m[1]!), [m[2]!]: m[3]! });
}
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
const perArch: string[][] = [];
for (const arch of ARCHES) {
  const dirs = outputs.get(arch)!;
  const iso = join(dirs.iso!, (await readdir(dirs.iso!)).find((f) => f.endsWith('.iso'))!);
  console.error(`bench: ${arch} boots…`);
  const boot = await bootFigures(arch, iso);
  console.error(`bench: ${arch} boots: ${JSON.stringify(boot)}`);
  perArch.push([
    arch,
    mib((await stat(iso)).size),
    mib(await sizeOf(dirs['kernel-embedded']!, 'bzImage')),
    mib(await sizeOf(dirs.initramfs!, '.cpio.xz')),
    seconds(boot.menu),
    seconds(boot.unattended),
    seconds(boot.running),
    smallest(boot.smallestMb),
  ]);
}

const gnupg = await throwawayGnupg();
await gnupg.newKey('Benchmark <bench@example.invalid>');
const out = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-bench-release-')), 'release');
await changeTor(2);
const monthlyBuild = await build('monthly path: build');
const monthlyRelease = await timed('monthly path: release', ['release', '--arch', 'all', '--sign-key', 'bench@example.invalid', '--out', out, ...args], { GNUPGHOME: gnupg.home });
await gnupg.close();
await server.close();

const cpuInfo = (await readFile('/proc/cpuinfo', 'utf8')).match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown CPU';
console.log(`tor-ramdisk figures, ${new Date().toISOString().slice(0, 10)}, ${cores} cores (${cpuInfo}), ${args.join(' ') || 'the default toolchain'}`);
console.log(`stage cache ${cache}: ${had.length > 0 ? `held ${had.join(', ')} before the run` : 'empty before the run'}\n`);
console.log('| both arches | wall | CPU | utilization |\n|---|---|---|---|');
for (const [label, run] of [
  ['cold build', cold],
  ['no-op rebuild', noop],
  ['tor pin change', torChange],
  ['initramfs change', initramfsChange],
  ['monthly path: tor pin change → build', monthlyBuild],
  ['monthly path: → signed, smoke-tested release', monthlyRelease],
] as const) {
  console.log(`| ${label} | ${minutes(run.wall)} | ${minutes(run.cpu)} | ${utilization(run)} |`);
}
console.log(`| **monthly path, pin change to release directory** | **${minutes(monthlyBuild.wall + monthlyRelease.wall)}** | ${minutes(monthlyBuild.cpu + monthlyRelease.cpu)} | |\n`);
const head = ['arch', 'ISO', 'bzImage (embedded)', 'initramfs.cpio.xz', 'power on → menu', 'power on → tor started (nothing typed)', 'power on → Running (relay, boot line typed)', 'smallest -m'];
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of perArch) console.log(`| ${row.join(' | ')} |`);
console.log(`\nrelease directory: ${out}; project copy: ${project}`);
