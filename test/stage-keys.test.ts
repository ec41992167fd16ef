import test from 'ava';
import { chmod, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { projectCopy } from './helpers/project-copy.js';

// The real stage graph, keys only (nothing is built), computed by a copy of the compiled tree
// that each test changes: which stages a change to the code, a file mode or a compiler reaches.

const copy = await projectCopy();

const load = async <T>(module: string): Promise<T> => (await import(pathToFileURL(join(copy, 'dist', 'pipeline', module)).href)) as T;
type Stage = import('../pipeline/engine/stage.js').Stage;
const { stages, IMAGE_TARGETS } = await load<typeof import('../pipeline/stages/index.js')>('stages/index.js');
const { planStages } = await load<typeof import('../pipeline/engine/plan.js')>('engine/plan.js');
const { StageStore } = await load<typeof import('../pipeline/engine/store.js')>('engine/store.js');
const { loadLayers } = await load<typeof import('../pipeline/config/layers.js')>('config/layers.js');
const { resolveConfig } = await load<typeof import('../pipeline/config/resolve.js')>('config/resolve.js');
const { loadPins } = await load<typeof import('../pipeline/sources/pins.js')>('sources/pins.js');
const { CODE_EXCLUSIONS, STAGE_RUNTIME } = await load<typeof import('../pipeline/engine/code.js')>('engine/code.js');
const store = new StageStore(await mkdtemp(join(tmpdir(), 'tor-ramdisk-keys-store-')));

async function keys(variant = 'host'): Promise<Record<string, string>> {
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: [`toolchain.variant=${variant}`] }));
  const plan = await planStages(stages, [...IMAGE_TARGETS], config, await loadPins(), store);
  return Object.fromEntries(plan.map((p) => [p.stage.name, p.key]));
}

function changed(a: Record<string, string>, b: Record<string, string>): string[] {
  return Object.keys(a).filter((name) => a[name] !== b[name]).sort();
}

/** Runs `body` with `file` changed by `edit`, then puts it back. */
async function withChange<T>(file: string, edit: (text: string) => string, body: () => Promise<T>): Promise<T> {
  const before = await readFile(file, 'utf8');
  await writeFile(file, edit(before));
  try {
    return await body();
  } finally {
    await writeFile(file, before);
  }
}

/** Stages that `names` reach, with everything built on them. */
function withDependents(names: Iterable<string>): string[] {
  const reached = new Set(names);
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of stages as readonly Stage[]) {
      if (!reached.has(s.name) && (s.deps ?? []).some((d) => reached.has(d))) grew = Boolean(reached.add(s.name));
    }
  }
  return [...reached].sort();
}

/** The import closure of a module, read with TypeScript's own scanner (not the pipeline's). */
function closure(start: string, graph: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const queue = [start, ...STAGE_RUNTIME];
  while (queue.length > 0) {
    const module = queue.shift()!;
    if (seen.has(module) || module in CODE_EXCLUSIONS) continue;
    seen.add(module);
    queue.push(...(graph.get(module) ?? []));
  }
  return seen;
}

test.serial('a change to any project module changes the key of each stage that reaches it, of their dependents, and of no other', async (t) => {
  const dist = join(copy, 'dist');
  const modules = (await readdir(join(dist, 'pipeline'), { recursive: true })).filter((f) => f.endsWith('.js')).map((f) => `pipeline/${f}`).sort();
  const graph = new Map<string, string[]>();
  for (const module of modules) {
    const { importedFiles } = ts.preProcessFile(await readFile(join(dist, module), 'utf8'), true, true);
    graph.set(module, importedFiles.map((f) => f.fileName).filter((f) => f.startsWith('.')).map((f) => relative(dist, resolve(dist, dirname(module), f))));
  }
  const reach = new Map((stages as readonly Stage[]).map((s) => [s.name, closure(relative(dist, fileURLToPath(s.definition)), graph)]));
  const before = await keys();
  const reachedByNone: string[] = [];
  for (const module of modules) {
    const after = await withChange(join(dist, module), (text) => `${text}\n// changed\n`, () => keys());
    const expected = withDependents([...reach].filter(([, mods]) => mods.has(module)).map(([name]) => name));
    t.deepEqual(changed(before, after), expected, module);
    if (expected.length === 0) reachedByNone.push(module);
  }
  t.log(`${modules.length} modules changed one at a time; these reach no stage: ${reachedByNone.join(", ")}`);
  // The cases the keys used to miss.
  for (const module of ['pipeline/toolchain/toolchain.js', 'pipeline/kconfig/apply.js', 'pipeline/image/cpio.js', 'pipeline/image/tree.js', 'pipeline/sources/extract.js', 'pipeline/exec.js', 'pipeline/elf/read.js']) {
    t.true([...reach].some(([, mods]) => mods.has(module)), `${module} reaches a stage`);
  }
  t.true(reach.get('toolchain')!.has('pipeline/toolchain/uclibc.js'));
  t.true(reach.get('initramfs')!.has('pipeline/elf/audit.js'));
});

test.serial('an excluded module holds no build logic: it imports nothing of the project', async (t) => {
  for (const [module, reason] of Object.entries(CODE_EXCLUSIONS)) {
    const { importedFiles } = ts.preProcessFile(await readFile(join(copy, 'dist', module), 'utf8'), true, true);
    t.deepEqual(importedFiles.filter((f) => f.fileName.startsWith('.')), [], module);
    t.true(reason.length > 20, `${module} says why it is excluded`);
  }
});

test.serial('plan names the module that changed', async (t) => {
  const { formatPlan } = await load<typeof import('../pipeline/engine/plan.js')>('engine/plan.js');
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: ['toolchain.variant=host'] }));
  const plan = await planStages(stages, ['toolchain'], config, await loadPins(), store);
  await store.recordLast('toolchain', 'x86_64', plan[0]!.inputs);
  const text = await withChange(join(copy, 'dist', 'pipeline', 'toolchain', 'toolchain.js'), (s) => s.replace("'-Wl,-z,now'", "'-Wl,-z,lazy'"), async () =>
    formatPlan(await planStages(stages, ['toolchain'], config, await loadPins(), store), 'x86_64'),
  );
  t.regex(text, /toolchain\s+to build/);
  t.regex(text, /code\.pipeline\/toolchain\/toolchain\.js: [0-9a-f]{12}… → [0-9a-f]{12}…/);
});

test.serial('a file mode under initramfs/ that the image keeps changes the initramfs key; one it drops does not', async (t) => {
  const file = join(copy, 'initramfs', 'etc', 'hosts');
  const before = await keys();
  await chmod(file, 0o755);
  const executable = await keys();
  await chmod(file, 0o600);
  const private_ = await keys();
  await chmod(file, 0o664);
  const groupWritable = await keys();
  await chmod(file, 0o644);
  t.deepEqual(changed(before, executable), ['initramfs', 'iso', 'kernel-embedded']);
  t.deepEqual(changed(before, private_), ['initramfs', 'iso', 'kernel-embedded']);
  t.deepEqual(changed(before, groupWritable), [], 'the image has 0644 either way');
});

/** Puts a wrapper named `command` first on PATH: the same compiler behind a different driver. */
async function withWrapper<T>(command: string, body: () => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-wrapper-'));
  const real = (await import('../pipeline/engine/tools.js')).which(command)!;
  await writeFile(join(dir, command), `#!/bin/sh\nexec ${real} "$@"\n`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  try {
    return await body();
  } finally {
    process.env.PATH = path;
  }
}

test.serial('a different compiler changes the keys of the stages that run it, and of what is built on them', async (t) => {
  const host = await keys();
  // The host variant's cross compiler: the toolchain stage hands it to every later stage.
  t.deepEqual(changed(host, await withWrapper('x86_64-linux-gnu-gcc', () => keys())), Object.keys(host).sort());
  // The build machine's gcc: Kbuild's HOSTCC and the packages' build compiler, not the toolchain (host variant) nor the ISO's tools.
  t.deepEqual(changed(host, await withWrapper('gcc', () => keys())), withDependents(['kernel-config', 'kernel', 'kernel-embedded', 'busybox', 'zlib', 'libevent', 'openssl', 'libseccomp', 'tor', 'dropbear']));
  // The uClibc-ng toolchain is built by the host's gcc and g++.
  const uclibc = await keys('uclibc');
  t.deepEqual(changed(uclibc, await withWrapper('g++', () => keys('uclibc'))), Object.keys(uclibc).sort());
});
