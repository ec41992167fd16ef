import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildArches, buildStages } from '../pipeline/engine/build.js';
import type { Stage } from '../pipeline/engine/stage.js';
import { sha256File } from '../pipeline/hash.js';
import { POSIX_TOOLS } from '../pipeline/stages/tools.js';

const config = async () => resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));

/**
 * A Makefile of six jobs in a fresh directory: each job marks itself running (named by the make
 * variable `prefix`), waits, and writes down which jobs were running then. `seen` reads those lists.
 */
async function sixJobMakefile(dirPrefix: string, prefix: string): Promise<{ root: string; seen: () => Promise<string[][]> }> {
  const root = await mkdtemp(join(tmpdir(), dirPrefix));
  const running = join(root, 'running');
  await mkdir(running);
  const makefile = [
    'JOBS = 1 2 3 4 5 6',
    'all: $(addprefix job,$(JOBS))',
    'job%:',
    `\t@touch ${running}/$(${prefix})-$@; sleep 0.3; echo $$(ls ${running}) >> ${root}/seen; rm ${running}/$(${prefix})-$@`,
    '.PHONY: all',
    '',
  ].join('\n');
  await writeFile(join(root, 'Makefile'), makefile);
  return { root, seen: async () => (await readFile(join(root, 'seen'), 'utf8')).trim().split('\n').map((line) => line.split(' ')) };
}

test('one job budget across stages: three makes of six jobs each, side by side, never more than --jobs jobs at once', async (t) => {
  const { root, seen: jobsSeen } = await sixJobMakefile('tor-ramdisk-jobs-', 'NAME');
  const stage = (name: string): Stage => ({
    name,
    title: name,
    definition: import.meta.url,
    tools: POSIX_TOOLS,
    async run(ctx) {
      await ctx.exec('make', [`NAME=${name}`], { cwd: root });
    },
  });
  const top: Stage = { ...stage('top'), deps: ['one', 'two', 'three'], async run() {} };
  const dirs = cacheDirs(join(root, 'cache'));
  await buildStages({ registry: [stage('one'), stage('two'), stage('three'), top], targets: ['top'], config: await config(), pins: new Map(), store: dirs.store, downloads: dirs.downloads, jobs: 2, renderer: 'silent' });
  const seen = (await jobsSeen()).map((jobs) => jobs.length);
  t.is(seen.length, 18, 'every job ran');
  t.is(Math.max(...seen), 2, `at most 2 jobs at once, and 2 were (${seen.join(' ')})`);
  // The budget is used, not only bounded: a third of the jobs or more ran beside another (one at a time, each would see 1).
  t.true(seen.filter((n) => n === 2).length >= seen.length / 3, seen.join(' '));
  await rm(root, { recursive: true, force: true });
});

test('both arches in one build share one budget: their jobs run side by side, never more than --jobs at once', async (t) => {
  const { root, seen: jobsSeen } = await sixJobMakefile('tor-ramdisk-arches-', 'ARCH');
  const stage: Stage = {
    name: 'compile',
    title: 'compile',
    definition: import.meta.url,
    config: ['arch'],
    tools: POSIX_TOOLS,
    async run(ctx) {
      await ctx.exec('make', [`ARCH=${ctx.config.arch}`], { cwd: root });
      await writeFile(join(ctx.out, 'arch'), ctx.config.arch);
    },
  };
  const dirs = cacheDirs(join(root, 'cache'));
  const configs = await Promise.all((['x86_64', 'i686'] as const).map(async (arch) => resolveConfig(await loadLayers({ arch, profile: 'relay' }))));
  const results = await buildArches(
    { registry: [stage], targets: ['compile'], pins: new Map(), store: dirs.store, downloads: dirs.downloads, jobs: 2, renderer: 'silent' },
    configs.map((config) => ({ config })),
  );
  t.deepEqual(await Promise.all(results.map(async ([r]) => readFile(join(r!.dir, 'arch'), 'utf8'))), ['x86_64', 'i686'], 'the results come per arch, in the order given');
  const seen = await jobsSeen();
  t.is(seen.length, 12, 'every job of both arches ran');
  t.is(Math.max(...seen.map((jobs) => jobs.length)), 2, `at most 2 jobs at once (${seen.join(' | ')})`);
  t.true(
    seen.some((jobs) => jobs.some((j) => j.startsWith('x86_64-')) && jobs.some((j) => j.startsWith('i686-'))),
    `a job of each arch ran at the same time (${seen.join(' | ')})`,
  );
  t.true(await stat(dirs.store.timelinePath('all')).then(() => true), 'one timeline for the build of both');
  await rm(root, { recursive: true, force: true });
});

test('a resumable stage killed in its third step resumes there, from what the step had before it started, and ends bit-identical to an uninterrupted build', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-resume-'));
  const cache = join(root, 'cache');
  const runs = join(root, 'runs');
  const marker = join(root, 'marker');
  const script = fileURLToPath(new URL('./fixtures/resumable-build.js', import.meta.url));
  const build = (env: Record<string, string> = {}) => execa('node', [script, cache], { env: { TOR_RAMDISK_TEST_RUNS: runs, ...env }, reject: false });
  const outputOf = async () => {
    const parent = join(cache, 'stages', 'small-toolchain');
    const key = (await readdir(parent)).find((e) => /^[0-9a-f]{64}$/.test(e))!;
    const out = join(parent, key, 'out');
    const files = (await readdir(out, { recursive: true })).sort();
    const hashes: string[] = [];
    for (const f of files) if ((await stat(join(out, f))).isFile()) hashes.push(`${f} ${await sha256File(join(out, f))}`);
    return { key, hashes, resumeLeft: (await readdir(parent)).filter((e) => e.startsWith('.resume-')) };
  };

  const plain = await build();
  t.is(plain.exitCode, 0, plain.stderr);
  const uninterrupted = await outputOf();
  t.deepEqual(uninterrupted.resumeLeft, [], 'a finished build leaves no steps behind');
  t.true(uninterrupted.hashes.some((h) => h.startsWith('bin/tool ')) && uninterrupted.hashes.some((h) => h.startsWith('lib/libmini.a ')));
  await rm(join(cache, 'stages'), { recursive: true });
  await writeFile(runs, '');

  const killed = build({ TOR_RAMDISK_TEST_HANG: 'libc', TOR_RAMDISK_TEST_MARKER: marker });
  for (let i = 0; i < 600 && !(await stat(marker).catch(() => undefined)); i++) await sleep(50);
  t.truthy(await stat(marker).catch(() => undefined), 'the build reached the middle of the libc step');
  killed.kill('SIGKILL');
  t.is((await killed).signal, 'SIGKILL');
  await sleep(300); // the orphaned make and its sleep go on; they touch nothing the retry reads

  const resumed = await build();
  t.is(resumed.exitCode, 0, resumed.stderr);
  t.deepEqual((await readFile(runs, 'utf8')).trim().split('\n'), ['sources', 'tool (compile)', 'libc', 'libc', 'tool (link)'], 'the steps before the killed one ran once; the killed one again, from its start');
  const after = await outputOf();
  t.is(after.key, uninterrupted.key);
  t.deepEqual(after.hashes, uninterrupted.hashes, 'bit-identical to the uninterrupted build');
  t.deepEqual(after.resumeLeft, []);
  await execa('pkill', ['-f', `${marker}`], { reject: false });
  await rm(root, { recursive: true, force: true });
});
