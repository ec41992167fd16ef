import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../pipeline/errors.js';
import { objectKind, parseElf, readElf, type ElfInfo } from '../pipeline/elf/read.js';

// Real objects from the host's compilers, checked against binutils' readelf as the oracle.
const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/elf/${name}`, import.meta.url));

const abis = [
  { abi: 'x86_64', cc: 'gcc', strip: 'strip', elfClass: 'ELF64', interpreter: '/lib64/ld-linux-x86-64.so.2', libc: '/lib/x86_64-linux-gnu/libc.so.6' },
  { abi: 'i386', cc: 'i686-linux-gnu-gcc', strip: 'i686-linux-gnu-strip', elfClass: 'ELF32', interpreter: '/lib/ld-linux.so.2', libc: '/usr/i686-linux-gnu/lib/libc.so.6' },
] as const;
type Target = (typeof abis)[number];

/** libA.so.1 (with a SONAME), an executable with a RUNPATH and one with an RPATH, an object file. */
async function buildFixtures(target: Target) {
  const root = await mkdtemp(join(tmpdir(), `tor-ramdisk-elf-${target.abi}-`));
  await mkdir(join(root, 'lib'));
  await mkdir(join(root, 'bin'));
  const cc = (...args: string[]) => execa(target.cc, args);
  const out = {
    root,
    libA: join(root, 'lib', 'libA.so.1'),
    libB: join(root, 'lib', 'libB.so.1'),
    runpath: join(root, 'bin', 'app-runpath'),
    rpath: join(root, 'bin', 'app-rpath'),
    object: join(root, 'liba.o'),
  };
  await cc('-O2', '-fPIC', '-shared', '-Wl,-soname,libA.so.1', '-o', out.libA, fixture('liba.c'));
  await cc('-O2', '-fPIC', '-shared', '-Wl,-soname,libB.so.1', '-Wl,-rpath,$ORIGIN', '-o', out.libB, fixture('libb.c'), out.libA);
  const link = ['-O2', fixture('app.c'), out.libB, `-Wl,-rpath-link,${join(root, 'lib')}`, '-Wl,-rpath,$ORIGIN/../lib'];
  await cc(...link, '-Wl,--enable-new-dtags', '-o', out.runpath);
  await cc(...link, '-Wl,--disable-new-dtags', '-o', out.rpath);
  await cc('-O2', '-c', '-o', out.object, fixture('liba.c'));
  return out;
}

const built = new Map<string, ReturnType<typeof buildFixtures>>();
const fixturesFor = (target: Target) => built.get(target.abi) ?? built.set(target.abi, buildFixtures(target)).get(target.abi)!;

/** What sstrip does: drop the section header table and everything past the last segment. */
async function withoutSectionHeaders(path: string, info: ElfInfo): Promise<string> {
  const file = await readFile(path);
  const end = Math.max(...info.programHeaders.map((ph) => ph.offset + ph.filesz));
  const copy = Buffer.from(file.subarray(0, end));
  if (info.class === 'ELF64') {
    copy.writeBigUInt64LE(0n, 40);
    for (const at of [58, 60, 62]) copy.writeUInt16LE(0, at);
  } else {
    copy.writeUInt32LE(0, 32);
    for (const at of [46, 48, 50]) copy.writeUInt16LE(0, at);
  }
  await writeFile(`${path}.sstripped`, copy, { mode: 0o755 });
  return `${path}.sstripped`;
}

/** readelf's view of the same object, in the reader's terms. */
async function readelf(path: string) {
  const run = async (...args: string[]) => (await execa('readelf', ['-W', ...args, path])).stdout;
  const segments = [...(await run('-l')).matchAll(/^\s+(\S+)\s+0x\S+\s+0x\S+\s+0x\S+\s+0x\S+\s+0x\S+\s(.{3})\s0x\S+$/gm)].map(([, type, flags]) => `${type} ${flags!.replace(/ /g, '')}`);
  const dynamic = await run('-d');
  const bracketed = (tag: string) => [...dynamic.matchAll(new RegExp(`\\(${tag}\\)\\s+[^\\[]*\\[([^\\]]*)\\]`, 'g'))].map((m) => m[1]!);
  const symbolLines = (text: string) =>
    [...text.matchAll(/^\s*\d+: [0-9a-f]+\s+\S+\s+(\S+)\s+\S+\s+\S+\s+(\S+) (\S+)/gm)]
      .filter(([, type]) => type !== 'SECTION') // readelf shows a section symbol by its section's name
      .map(([, , ndx, name]) => `${name!.replace(/@.*/, '')}:${ndx === 'UND' ? 'U' : 'D'}`)
      .sort();
  const syms = await run('--syms');
  const symtabAt = syms.indexOf("Symbol table '.symtab'");
  const sections = (await run('-S')).split('\n').flatMap((line) => {
    const m = /^\s*\[\s*(\d+)\]\s+(.*)$/.exec(line);
    return m ? [m[1] === '0' ? '' : m[2]!.split(/\s+/)[0]!] : [];
  });
  return {
    segments,
    needed: bracketed('NEEDED'),
    soname: bracketed('SONAME')[0],
    rpath: bracketed('RPATH').flatMap((p) => p.split(':')),
    runpath: bracketed('RUNPATH').flatMap((p) => p.split(':')),
    dynamicSymbols: symbolLines(await run('--dyn-syms')),
    symbols: symtabAt < 0 ? undefined : symbolLines(syms.slice(symtabAt)),
    sections,
  };
}

function view(info: ElfInfo) {
  const symbolKeys = (symbols: ElfInfo['dynamicSymbols']) => symbols.map((s) => `${s.name}:${s.defined ? 'D' : 'U'}`).sort();
  return {
    segments: info.programHeaders.map((ph) => `${ph.type} ${ph.flags.read ? 'R' : ''}${ph.flags.write ? 'W' : ''}${ph.flags.execute ? 'E' : ''}`),
    needed: info.dynamic?.needed ?? [],
    soname: info.dynamic?.soname,
    rpath: info.dynamic?.rpath ?? [],
    runpath: info.dynamic?.runpath ?? [],
    dynamicSymbols: symbolKeys(info.dynamicSymbols),
    symbols: info.symbols && symbolKeys(info.symbols),
    sections: info.sections.map((s) => s.name),
  };
}

for (const target of abis) {
  test(`${target.abi}: a shared library, its SONAME and symbols, as readelf sees them`, async (t) => {
    const { libA } = await fixturesFor(target);
    const info = await readElf(libA);
    t.is(info.class, target.elfClass);
    t.is(info.machine, target.abi);
    t.is(info.abi, target.abi);
    t.is(info.type, 'DYN');
    t.is(objectKind(info), 'library');
    t.is(info.interpreter, undefined);
    t.is(info.dynamic?.soname, 'libA.so.1');
    t.deepEqual(info.dynamic?.needed, ['libc.so.6']);
    t.true(info.dynamicSymbols.some((s) => s.name === 'a_value' && s.defined && s.type === 'func' && s.binding === 'global'));
    t.true(info.sections.some((s) => s.name === '.symtab'));
    t.deepEqual(view(info), await readelf(libA));
  });

  test(`${target.abi}: executables with a RUNPATH and with an RPATH`, async (t) => {
    const { runpath, rpath } = await fixturesFor(target);
    for (const [path, tags] of [[runpath, { runpath: ['$ORIGIN/../lib'], rpath: [] }], [rpath, { runpath: [], rpath: ['$ORIGIN/../lib'] }]] as const) {
      const info = await readElf(path);
      t.is(info.type, 'DYN', 'Debian gcc links PIE by default');
      t.is(objectKind(info), 'executable');
      t.is(info.interpreter, target.interpreter);
      t.deepEqual(info.dynamic?.needed, ['libB.so.1', 'libc.so.6']);
      t.deepEqual(info.dynamic?.runpath, [...tags.runpath]);
      t.deepEqual(info.dynamic?.rpath, [...tags.rpath]);
      t.true(info.dynamic?.flags1.pie);
      t.true(info.dynamicSymbols.some((s) => s.name === 'b_value' && !s.defined));
      t.deepEqual(view(info), await readelf(path));
    }
  });

  test(`${target.abi}: a stripped executable, and one with no section headers at all, read through PT_DYNAMIC`, async (t) => {
    const { runpath, root } = await fixturesFor(target);
    const stripped = join(root, 'app-stripped');
    await execa(target.strip, ['-o', stripped, runpath]);
    const full = await readElf(runpath);
    const info = await readElf(stripped);
    t.is(info.symbols, undefined);
    t.false(info.sections.some((s) => s.name === '.symtab'));
    t.deepEqual(view(info), await readelf(stripped));

    const bare = await readElf(await withoutSectionHeaders(stripped, info));
    t.deepEqual(bare.sections, []);
    t.is(bare.interpreter, target.interpreter);
    t.deepEqual(bare.programHeaders, full.programHeaders);
    t.deepEqual(bare.dynamic, full.dynamic);
    t.deepEqual(view(bare).dynamicSymbols, view(full).dynamicSymbols, 'the same dynamic symbols, found through the hash table');
  });

  test(`${target.abi}: glibc's libc.so.6 (GNU_HASH only) without section headers gives readelf's dynamic symbols`, async (t) => {
    const { root } = await fixturesFor(target);
    const libc = await readElf(target.libc);
    t.is(objectKind(libc), 'library', 'a SONAME makes it a library despite its PT_INTERP');
    t.truthy(libc.interpreter);
    const copy = join(root, 'libc.so.6');
    await writeFile(copy, await readFile(target.libc));
    const bare = await readElf(await withoutSectionHeaders(copy, libc));
    const expected = (await readelf(target.libc)).dynamicSymbols;
    t.true(expected.length > 2000);
    t.deepEqual(view(bare).dynamicSymbols, expected);
    t.true(bare.dynamicSymbols.some((s) => s.name === '__stack_chk_fail' && s.defined));
  });

  test(`${target.abi}: an object file is REL, with a symbol table and no segments`, async (t) => {
    const { object } = await fixturesFor(target);
    const info = await readElf(object);
    t.is(info.type, 'REL');
    t.is(objectKind(info), 'relocatable');
    t.deepEqual(info.programHeaders, []);
    t.is(info.dynamic, undefined);
    t.true(info.symbols?.some((s) => s.name === 'a_value' && s.defined));
    t.deepEqual(view(info), await readelf(object));
  });
}

test('the sstripped executable still runs: the reader left nothing out that the loader needs', async (t) => {
  const { runpath } = await fixturesFor(abis[0]);
  const bare = await withoutSectionHeaders(runpath, await readElf(runpath));
  t.is((await execa(bare)).stdout, 'b_value=42');
});

test('a file that is not ELF is refused, naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-elf-bad-'));
  const script = join(dir, 'start-tor.sh');
  await writeFile(script, '#!/bin/sh\nexec tor\n');
  const error = await t.throwsAsync(readElf(script), { instanceOf: InputError });
  t.is(error!.message, `${script} is not an ELF object (no \\x7fELF magic)`);
  await t.throwsAsync(readElf(join(dir, 'absent')), { instanceOf: InputError, message: new RegExp(`cannot read ELF object ${dir}/absent`) });
});

test('every truncation of an object is an InputError naming the file, never a crash', async (t) => {
  const { libA } = await fixturesFor(abis[1]);
  const whole = await readFile(libA);
  const step = Math.max(1, Math.floor(whole.length / 300));
  for (let length = 4; length < whole.length; length += step) {
    const error = t.throws(() => parseElf(whole.subarray(0, length), 'libA.so.1'), { instanceOf: InputError }, `cut at ${length}`);
    t.regex(error?.message ?? '', /^libA\.so\.1: truncated or damaged ELF object: /);
  }
  const tableGone = t.throws(() => parseElf(whole.subarray(0, whole.length - 8), 'libA.so.1'));
  t.regex(tableGone!.message, /the section header table \(\d+ bytes at offset \d+\) lies past the end of the file/);
});

test('another machine or a big-endian object is refused with what it is', (t) => {
  const header = Buffer.alloc(64);
  header.write('\x7fELF', 0, 'latin1');
  header[4] = 1;
  header[5] = 1;
  header.writeUInt16LE(2, 16);
  header.writeUInt16LE(40, 18);
  t.throws(() => parseElf(header, 'busybox-arm'), { instanceOf: InputError, message: 'busybox-arm: ELF machine 40 is not i386 or x86_64' });
  header[5] = 2;
  t.throws(() => parseElf(header, 'tor-ppc'), { instanceOf: InputError, message: /tor-ppc is a big-endian ELF object/ });
});
