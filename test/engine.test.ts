import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import { stageInputs, stageKey } from '../pipeline/engine/inputs.js';
import { remainingMs } from '../pipeline/engine/eta.js';
import { graphDot, graphSvg } from '../pipeline/engine/pictures.js';
import { formatPlan, planStages } from '../pipeline/engine/plan.js';
import { sha256 } from '../pipeline/hash.js';
import { parsePins } from '../pipeline/sources/pins.js';
import { diamond } from './fixtures/stages.js';
import { startServer, type TestServer } from './helpers/http-server.js';

let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const body of ['alpha-1', 'gamma-1', 'gamma-2']) server.route(`/${body}.tar`, { kind: 'file', body: Buffer.from(body) });
});
test.after.always(async () => {
  await server?.close();
});

function pinsJson(gamma = 'gamma-1') {
  const file = (body: string) => ({ name: `${body}.tar`, sha256: sha256(body), urls: [server.url(`/${body}.tar`)] });
  return { sources: { alpha: { version: '1', license: 'MIT', files: [file('alpha-1')] }, gamma: { version: gamma, license: 'MIT', files: [file(gamma)] } } };
}

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-engine-'));
  return cacheDirs(root);
}

async function build(dirs: ReturnType<typeof cacheDirs>, opts: { gamma?: string; flags?: string[]; builds?: string[] } = {}) {
  const builds = opts.builds ?? [];
  const registry = diamond(builds);
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: opts.flags ?? [] }));
  const pins = parsePins(pinsJson(opts.gamma), 'test pins');
  const results = await buildStages({ registry, targets: ['d'], config, pins, store: dirs.store, downloads: dirs.downloads, jobs: 2, renderer: 'silent' });
  return { builds, results, registry, config, pins };
}

test('a second build of unchanged stages is all cache hits, in under a second', async (t) => {
  const dirs = await setup();
  const first = await build(dirs);
  t.deepEqual([...first.builds].sort(), ['a', 'b', 'c', 'd']);
  const d = first.results.find((r) => r.stage === 'd')!;
  t.is(await readFile(join(d.dir, 'd.txt'), 'utf8'), 'd(b(a),c(a))');

  const started = process.hrtime.bigint();
  const second = await build(dirs);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  t.deepEqual(second.builds, []);
  t.true(second.results.every((r) => r.cached));
  t.true(seconds < 1, `cached build took ${seconds.toFixed(3)} s`);
  t.log(`cached build of 4 stages: ${(seconds * 1000).toFixed(0)} ms`);
});

test('a changed pin rebuilds exactly the stage that uses it and its dependents, and plan names it', async (t) => {
  const dirs = await setup();
  await build(dirs);
  const { registry, config } = await build(dirs, { builds: [] });
  const plan = await planStages(registry, ['d'], config, parsePins(pinsJson('gamma-2'), 'test pins'), dirs.store);
  const byName = Object.fromEntries(plan.map((p) => [p.stage.name, p]));
  t.true(byName.a!.cached);
  t.true(byName.b!.cached);
  t.false(byName.c!.cached);
  t.false(byName.d!.cached);
  t.true(byName.c!.reason.some((r) => r.startsWith('sources.gamma.version: "gamma-1" → "gamma-2"')), byName.c!.reason.join('; '));
  t.true(byName.d!.reason.some((r) => r.startsWith('deps.c:')), byName.d!.reason.join('; '));
  t.regex(formatPlan(plan, 'x86_64'), /c\s+to build/);

  const rebuilt = await build(dirs, { gamma: 'gamma-2' });
  t.deepEqual([...rebuilt.builds].sort(), ['c', 'd']);
});

test('a changed config value rebuilds the stage that reads it and its dependents only', async (t) => {
  const dirs = await setup();
  await build(dirs);
  const changed = await build(dirs, { flags: ['build.sourceDateEpoch=1234'] });
  t.deepEqual([...changed.builds].sort(), ['b', 'd']);
  const plan = await planStages(changed.registry, ['d'], changed.config, changed.pins, dirs.store);
  t.true(plan.every((p) => p.cached));
  const back = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const again = await planStages(changed.registry, ['d'], back, changed.pins, dirs.store);
  const b = again.find((p) => p.stage.name === 'b')!;
  t.true(b.cached, 'the earlier output is still in the cache');
});

test('the cache key format is stable: changing it silently invalidates every cache', async (t) => {
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const [a] = diamond([]);
  const pins = parsePins({ sources: { alpha: { version: '1', license: 'MIT', files: [{ name: 'alpha-1.tar', sha256: sha256('alpha-1'), urls: ['http://127.0.0.1:1/alpha-1.tar'] }] } } }, 'test');
  const inputs = await stageInputs(a!, config, pins, {});
  t.deepEqual(Object.keys(inputs), ['stage', 'code', 'sources', 'config', 'files', 'deps', 'tools']);
  t.deepEqual(Object.keys(inputs.code).sort(), ['npm:execa', 'pipeline/engine/tools.js', 'pipeline/exec.js', 'pipeline/hash.js', 'test/fixtures/stages.js']);
  t.deepEqual(inputs.sources, { alpha: { version: '1', files: { 'alpha-1.tar': [sha256('alpha-1')] } } });
  t.deepEqual(inputs.config, { arch: 'x86_64' });
  const code = Object.keys(inputs.code).sort().map((m) => `"${m}":"${inputs.code[m]}"`).join(',');
  const canonical = `{"code":{${code}},"config":{"arch":"x86_64"},"deps":{},"files":{},"sources":{"alpha":{"files":{"alpha-1.tar":["${sha256('alpha-1')}"]},"version":"1"}},"stage":"a","tools":{}}`;
  t.is(stageKey(inputs), sha256(canonical));
});

test('a build killed with SIGKILL mid-stage leaves nothing a later run trusts', async (t) => {
  const dirs = await setup();
  const marker = join(dirs.root, 'marker');
  const script = fileURLToPath(new URL('./fixtures/killable-build.js', import.meta.url));
  const child = execa('node', [script, dirs.root, JSON.stringify(pinsJson())], {
    env: { TOR_RAMDISK_TEST_HANG: 'b', TOR_RAMDISK_TEST_MARKER: marker },
    reject: false,
  });
  for (let i = 0; i < 300 && !(await stat(marker).catch(() => undefined)); i++) await sleep(50);
  t.truthy(await stat(marker).catch(() => undefined), 'the child reached the middle of stage b');
  child.kill('SIGKILL');
  const result = await child;
  t.is(result.signal, 'SIGKILL');
  const leftovers = (await readdir(join(dirs.store.root, 'b'))).filter((e) => e.startsWith('.tmp-'));
  t.is(leftovers.length, 1, 'the killed build left only its private temporary directory');

  const after = await build(dirs);
  t.true(after.builds.includes('b'), 'b is built again, not trusted');
  t.false(after.builds.includes('a'), 'a finished before the kill and is reused');
  t.deepEqual((await readdir(join(dirs.store.root, 'b'))).filter((e) => e.startsWith('.tmp-')), [], 'the abandoned directory was swept');
});

test('a failing stage reports stage, command, exit code, log path and the last lines', async (t) => {
  const dirs = await setup();
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const failing = {
    name: 'broken',
    title: 'broken',
    definition: import.meta.url,
    tools: [{ command: 'sh', package: 'dash' }],
    async run(ctx: import('../pipeline/engine/stage.js').StageContext) {
      await ctx.exec('sh', ['-c', 'echo compiling foo.c; echo "foo.c:1: error: expected ;" >&2; exit 3']);
    },
  };
  const error = await t.throwsAsync(buildStages({ registry: [failing], targets: ['broken'], config, pins: new Map(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' }));
  t.regex(error!.message, /^stage broken: command exited with code 3: sh -c echo compiling foo\.c/);
  t.regex(error!.message, /log: .*logs\/broken\/[0-9a-f]{64}\.log/);
  t.regex(error!.message, /last lines:\n\s+\$ sh -c[^\n]*\n\s+compiling foo\.c\n\s+foo\.c:1: error: expected ;/);
  t.is((error as unknown as { exitCode: number }).exitCode, 4);
  // What remains is the plan's memory and the lock file (kept: removing a lock file races with a waiter).
  t.deepEqual((await readdir(join(dirs.store.root, 'broken'))).filter((e) => !e.startsWith('last-') && !e.endsWith('.lock')), [], 'nothing of the failed stage is kept');
});

test('a stage runs with a PATH of its declared tools only: an undeclared one is not found, on any machine', async (t) => {
  const dirs = await setup();
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const seen: string[][] = [];
  const stage = (name: string, tools: { command: string; package: string }[]) => ({
    name,
    title: name,
    definition: import.meta.url,
    tools,
    async run(ctx: import('../pipeline/engine/stage.js').StageContext) {
      seen.push((await readdir(ctx.path)).sort());
      await ctx.exec('sh', ['-c', 'cat /dev/null']);
    },
  });
  const build = (s: ReturnType<typeof stage>) => buildStages({ registry: [s], targets: [s.name], config, pins: new Map(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' });
  const error = await t.throwsAsync(build(stage('undeclared', [{ command: 'sh', package: 'dash' }])));
  t.regex(error!.message, /exited with code 127: sh -c cat \/dev\/null/);
  t.regex(error!.message, /cat: not found/);
  await t.notThrowsAsync(build(stage('declared', [{ command: 'sh', package: 'dash' }, { command: 'cat', package: 'coreutils' }])));
  t.deepEqual(seen, [['sh'], ['cat', 'sh']]);
});

test('a stage whose declared tool is not installed stops before it runs, naming the tool and its package', async (t) => {
  const dirs = await setup();
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const runs: string[] = [];
  const stage = { name: 'needs', title: 'needs', definition: import.meta.url, tools: [{ command: 'tor-ramdisk-no-such-tool', package: 'no-such-package' }], run: async () => void runs.push('ran') };
  const error = await t.throwsAsync(buildStages({ registry: [stage], targets: ['needs'], config, pins: new Map(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' }));
  t.is((error as unknown as { exitCode: number }).exitCode, 5);
  t.regex(error!.message, /missing host tools: tor-ramdisk-no-such-tool/);
  t.deepEqual(runs, []);
});

test('the estimate simulates the rest of the build over the job slots, from each stage\'s last build', (t) => {
  const stages = [
    { name: 'a', deps: [], expectedMs: 10 },
    { name: 'b', deps: ['a'], expectedMs: 20 },
    { name: 'c', deps: ['a'], expectedMs: 30 },
    { name: 'd', deps: ['b', 'c'], expectedMs: 40 },
  ];
  const none = { done: new Set<string>(), running: new Map<string, number>() };
  t.deepEqual(remainingMs(stages, none, 2, 1000), { ms: 80, unknown: 0 });
  t.deepEqual(remainingMs(stages, none, 1, 1000), { ms: 100, unknown: 0 });
  // a done; c started 25 ms ago: 5 ms of it left, b (20) alongside, then d.
  t.deepEqual(remainingMs(stages, { done: new Set(['a']), running: new Map([['c', 975]]) }, 2, 1000), { ms: 60, unknown: 0 });
  t.deepEqual(remainingMs([...stages.slice(0, 3), { name: 'd', deps: ['b', 'c'], expectedMs: undefined }], none, 2, 1000), { ms: 40, unknown: 1 });
});

test('a build leaves a timeline picture: each built stage a bar in its job slot', async (t) => {
  const dirs = await setup();
  await build(dirs);
  const svg = await readFile(dirs.store.timelinePath('x86_64'), 'utf8');
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  for (const stage of ['a', 'b', 'c', 'd']) t.regex(svg, new RegExp(`<title>${stage}: built in \\d+ s</title>`));
  t.regex(svg, /job slot 2/);
});

test('the stage graph as DOT and SVG names every stage, its key and state, and every edge', (t) => {
  const nodes = [
    { name: 'a', deps: [], key: 'a'.repeat(64), cached: true },
    { name: 'b', deps: ['a'], key: 'b'.repeat(64), cached: false },
  ];
  const dot = graphDot(nodes, 'g');
  t.regex(dot, /"a" \[label="a\\naaaaaaaaaaaa\\ncached"/);
  t.regex(dot, /"b" \[label="b\\nbbbbbbbbbbbb\\nto build"/);
  t.regex(dot, /"a" -> "b";/);
  const svg = graphSvg(nodes, 'g');
  t.regex(svg, />bbbbbbbbbbbb · to build</);
  t.is((svg.match(/<path d="M/g) ?? []).length, 2, 'one edge and its arrow head');
});
