import test from 'ava';
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, InputError } from '../pipeline/errors.js';
import { checkLinkage, installLibraries, linkageGraph, resolveLibraries, unresolvedSonames } from '../pipeline/elf/linkage.js';
import { readElf, type ElfObject } from '../pipeline/elf/read.js';

// libA.so.1 ← libB.so.1 ← app, built with the host's compilers and resolved against their libcs.
const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/elf/${name}`, import.meta.url));
const x86_64 = { cc: 'gcc', libDir: '/lib/x86_64-linux-gnu', sysroot: '/', interpreter: '/lib64/ld-linux-x86-64.so.2', loader: 'ld-linux-x86-64.so.2' };
const i386 = { cc: 'i686-linux-gnu-gcc', libDir: '/usr/i686-linux-gnu/lib', sysroot: '/usr/i686-linux-gnu', interpreter: '/lib/ld-linux.so.2', loader: 'ld-linux.so.2' };
type Target = typeof x86_64;

/**
 * A sysroot-like tree: lib/libA.so.1.0.0 with its soname and dev symlinks, lib/libB.so.1
 * (with or without its own $ORIGIN RUNPATH), an unused library, and bin/app with the given tags.
 */
async function buildTree(target: Target, options: { appTags: 'rpath' | 'runpath'; libBOrigin: boolean }) {
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-linkage-'));
  const lib = join(root, 'lib');
  await mkdir(lib);
  await mkdir(join(root, 'bin'));
  const cc = (...args: string[]) => execa(target.cc, ['-O2', ...args]);
  const files = { root, lib, libA: join(lib, 'libA.so.1.0.0'), libB: join(lib, 'libB.so.1'), unused: join(lib, 'libunused.so.1'), app: join(root, 'bin', 'app') };
  await cc('-fPIC', '-shared', '-Wl,-soname,libA.so.1', '-o', files.libA, fixture('liba.c'));
  await symlink('libA.so.1.0.0', join(lib, 'libA.so.1'));
  await symlink('libA.so.1', join(lib, 'libA.so'));
  await cc('-fPIC', '-shared', '-Wl,-soname,libB.so.1', ...(options.libBOrigin ? ['-Wl,-rpath,$ORIGIN', '-Wl,--enable-new-dtags'] : []), '-o', files.libB, fixture('libb.c'), join(lib, 'libA.so.1'));
  await cc('-fPIC', '-shared', '-Wl,-soname,libunused.so.1', '-o', files.unused, fixture('textrel.c'));
  const tags = options.appTags === 'runpath' ? '-Wl,--enable-new-dtags' : '-Wl,--disable-new-dtags';
  await cc(fixture('app.c'), files.libB, `-Wl,-rpath-link,${lib}`, '-Wl,-rpath,$ORIGIN/../lib', tags, '-o', files.app);
  return files;
}

const objects = async (...paths: string[]): Promise<ElfObject[]> => Promise.all(paths.map(async (path) => ({ path, info: await readElf(path) })));
const entries = <V>(map: Map<string, V> | undefined) => Object.fromEntries([...(map ?? new Map<string, V>())].sort(([a], [b]) => a.localeCompare(b)));

test('the linkage graph and its inverse, per ABI', async (t) => {
  const tree = await buildTree(x86_64, { appTags: 'rpath', libBOrigin: false });
  const other = await buildTree(i386, { appTags: 'rpath', libBOrigin: false });
  const graphs = linkageGraph([...(await objects(tree.libA, tree.libB, tree.app, x86_64.libDir + '/libc.so.6')), ...(await objects(other.app))]);
  t.deepEqual([...graphs.keys()].sort(), ['i386', 'x86_64']);
  const graph = graphs.get('x86_64')!;
  t.deepEqual(entries(graph.needs), {
    [tree.app]: ['libB.so.1', 'libc.so.6'],
    [tree.libA]: ['libc.so.6'],
    [tree.libB]: ['libA.so.1'], // -Wl,--as-needed (Debian's default): libB calls nothing in libc
    [`${x86_64.libDir}/libc.so.6`]: [x86_64.loader],
  });
  t.deepEqual(entries(graph.consumers), {
    [x86_64.loader]: [`${x86_64.libDir}/libc.so.6`],
    'libA.so.1': [tree.libB],
    'libB.so.1': [tree.app],
    'libc.so.6': [tree.libA, tree.app],
  });
  t.deepEqual(entries(graph.providers), { 'libA.so.1': tree.libA, 'libB.so.1': tree.libB, 'libc.so.6': `${x86_64.libDir}/libc.so.6` }, 'libA by its SONAME, not its file name');
  // The x86_64 libB does not satisfy the i386 app: ABIs never link across.
  t.deepEqual(unresolvedSonames(graphs), [
    { abi: 'i386', soname: 'libB.so.1', consumers: [other.app] },
    { abi: 'i386', soname: 'libc.so.6', consumers: [other.app] },
    { abi: 'x86_64', soname: x86_64.loader, consumers: [`${x86_64.libDir}/libc.so.6`] },
  ]);
});

test('a missing soname fails, naming the object that needs it', async (t) => {
  const tree = await buildTree(x86_64, { appTags: 'rpath', libBOrigin: false });
  const ld = `${x86_64.libDir}/${x86_64.loader}`;
  const complete = await objects(tree.libA, tree.libB, tree.app, `${x86_64.libDir}/libc.so.6`, ld);
  t.notThrows(() => checkLinkage(linkageGraph(complete)));
  const error = t.throws(() => checkLinkage(linkageGraph(complete.filter((o) => o.path !== tree.libA)), { stage: 'image' }), { instanceOf: BuildError });
  t.is(error!.message, `unresolved sonames:\n  ${tree.libB} needs libA.so.1 (x86_64), which no object provides`);
  t.is((error as BuildError).stage, 'image');
});

test('a library without a SONAME provides its file name; two providers of one soname are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-linkage-'));
  const bare = join(dir, 'libbare.so');
  await execa('gcc', ['-fPIC', '-shared', '-o', bare, fixture('liba.c')]);
  t.deepEqual(entries(linkageGraph(await objects(bare)).get('x86_64')?.providers), { 'libbare.so': bare });
  const twin = join(dir, 'twin', 'libbare.so');
  await mkdir(join(dir, 'twin'));
  await copyFile(bare, twin);
  const both = await objects(bare, twin);
  t.throws(() => linkageGraph(both), {
    instanceOf: InputError,
    message: `${twin} and ${bare} both provide libbare.so (x86_64)`,
  });
});

test('x86_64: resolveLibraries follows RPATH (inherited by libB, as ld.so does) and copies exactly what is needed', async (t) => {
  const tree = await buildTree(x86_64, { appTags: 'rpath', libBOrigin: false });
  const needed = await resolveLibraries([tree.app], [x86_64.libDir], { sysroot: x86_64.sysroot });
  t.log(needed.map((n) => `${n.name.padEnd(28)} ${n.kind.padEnd(11)} ${n.file}  ← ${n.neededBy.join(', ')}`).join('\n'));
  t.deepEqual(needed.map((n) => n.name), [x86_64.interpreter, x86_64.loader, 'libA.so.1', 'libB.so.1', 'libc.so.6']);
  const byName = new Map(needed.map((n) => [n.name, n]));
  t.is(byName.get('libA.so.1')!.file, tree.libA, 'the symlink is followed to the real file');
  t.deepEqual(byName.get('libA.so.1')!.neededBy, [tree.libB]);
  t.deepEqual(byName.get('libc.so.6')!.neededBy, [tree.app, tree.libA]);
  t.is(byName.get(x86_64.interpreter)!.kind, 'interpreter');
  t.is(byName.get(x86_64.interpreter)!.file, byName.get(x86_64.loader)!.file, 'PT_INTERP and the soname are one file');

  const image = await mkdtemp(join(tmpdir(), 'tor-ramdisk-image-'));
  const written = await installLibraries(needed, image);
  t.deepEqual(written, [`/lib/${x86_64.loader}`, '/lib/libA.so.1', '/lib/libB.so.1', '/lib/libc.so.6', x86_64.interpreter]);
  await mkdir(join(image, 'bin'));
  await copyFile(tree.app, join(image, 'bin', 'app'));
  // The copied loader, told to look only in the image, runs the program.
  const ran = await execa(join(image, x86_64.interpreter), ['--inhibit-cache', '--library-path', join(image, 'lib'), join(image, 'bin', 'app')]);
  t.is(ran.stdout, 'b_value=42');
});

test('x86_64: a RUNPATH is not inherited: libB must carry its own, or libA is unresolved', async (t) => {
  const broken = await buildTree(x86_64, { appTags: 'runpath', libBOrigin: false });
  const error = await t.throwsAsync(resolveLibraries([broken.app], [x86_64.libDir], { sysroot: x86_64.sysroot, stage: 'image' }), { instanceOf: BuildError });
  t.is(error!.message, `${broken.libB} needs libA.so.1 (x86_64), which is in none of: ${x86_64.libDir}`);
  const loader = await execa(broken.app, { reject: false });
  t.not(loader.exitCode, 0);
  t.regex(loader.stderr, /libA\.so\.1: cannot open shared object file/, 'the real loader agrees');

  const fixed = await buildTree(x86_64, { appTags: 'runpath', libBOrigin: true });
  const needed = await resolveLibraries([fixed.app], [x86_64.libDir], { sysroot: x86_64.sysroot });
  t.deepEqual(needed.map((n) => n.name), [x86_64.interpreter, x86_64.loader, 'libA.so.1', 'libB.so.1', 'libc.so.6']);
  t.is((await execa(fixed.app)).stdout, 'b_value=42');
});

test('i386: resolved in its sysroot, skipping a library of the wrong ABI', async (t) => {
  const tree = await buildTree(i386, { appTags: 'rpath', libBOrigin: false });
  // The x86_64 libc.so.6 comes first in the search path; the loader would skip it, and so must we.
  const needed = await resolveLibraries([tree.app], [x86_64.libDir, i386.libDir], { sysroot: i386.sysroot });
  t.deepEqual(needed.map((n) => `${n.abi} ${n.name} ${n.file}`), [
    `i386 ${i386.interpreter} ${i386.libDir}/${i386.loader}`,
    `i386 ${i386.loader} ${i386.libDir}/${i386.loader}`,
    `i386 libA.so.1 ${tree.libA}`,
    `i386 libB.so.1 ${tree.libB}`,
    `i386 libc.so.6 ${i386.libDir}/libc.so.6`,
  ]);
  const image = await mkdtemp(join(tmpdir(), 'tor-ramdisk-image-'));
  t.deepEqual(await installLibraries(needed, image), ['/lib/ld-linux.so.2', '/lib/libA.so.1', '/lib/libB.so.1', '/lib/libc.so.6'], 'the loader is installed once');
});

test('an absolute symlink inside the sysroot is followed inside it, never to the host file', async (t) => {
  const tree = await buildTree(x86_64, { appTags: 'rpath', libBOrigin: false });
  const sysroot = await mkdtemp(join(tmpdir(), 'tor-ramdisk-sysroot-'));
  const libDir = join(sysroot, 'lib', 'x86_64-linux-gnu');
  await mkdir(libDir, { recursive: true });
  await mkdir(join(sysroot, 'lib64'));
  await copyFile(`${x86_64.libDir}/${x86_64.loader}`, join(libDir, x86_64.loader));
  await copyFile(`${x86_64.libDir}/libc.so.6`, join(libDir, 'libc.so.6.real'));
  // Both point at paths that exist on the host too: only the sysroot's copies may be chosen.
  await symlink(`/lib/x86_64-linux-gnu/${x86_64.loader}`, join(sysroot, 'lib64', x86_64.loader));
  await symlink('../../../../../../lib/x86_64-linux-gnu/libc.so.6.real', join(libDir, 'libc.so.6'));
  const needed = await resolveLibraries([tree.app], [libDir], { sysroot });
  t.deepEqual(needed.filter((n) => !n.file.startsWith(tree.root)).map((n) => `${n.name} ${n.file}`), [
    `${x86_64.interpreter} ${join(libDir, x86_64.loader)}`,
    `${x86_64.loader} ${join(libDir, x86_64.loader)}`,
    `libc.so.6 ${join(libDir, 'libc.so.6.real')}`,
  ]);
});

test('a missing dynamic loader fails, naming the executable', async (t) => {
  const tree = await buildTree(x86_64, { appTags: 'rpath', libBOrigin: false });
  const empty = await mkdtemp(join(tmpdir(), 'tor-ramdisk-sysroot-'));
  await t.throwsAsync(resolveLibraries([tree.app], [x86_64.libDir], { sysroot: empty }), {
    instanceOf: BuildError,
    message: `${tree.app} asks for the dynamic loader ${x86_64.interpreter}, which is not at ${join(empty, x86_64.interpreter)}`,
  });
  await t.throwsAsync(resolveLibraries([tree.app], [empty], {}), { message: new RegExp(`^${tree.app} asks for the dynamic loader`) });
});
