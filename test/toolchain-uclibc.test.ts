import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hardeningOf } from '../pipeline/elf/hardening.js';
import { readElf } from '../pipeline/elf/read.js';
import { readToolchain } from '../pipeline/toolchain/toolchain.js';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { stages } from '../pipeline/stages/index.js';
import { binutilsConfigureArgs, gccConfigureArgs } from '../pipeline/toolchain/uclibc.js';
import { tiers } from './tiers/tiers.js';

// Tier: uClibc-ng toolchain. A cold build takes most of an hour per arch, so these tests run
// only when `tor-ramdisk build toolchain --arch A` has put the toolchain in the cache.
const hello = `#include <stdio.h>
#include <string.h>
static void copy(const char *s) { char buf[16]; strcpy(buf, s); printf("hello %s\\n", buf); }
int main(int argc, char **argv) { copy(argc > 1 ? argv[1] : "world"); return 0; }
`;

test('configure arguments: the target triplet, the sysroot, and hardening by default', (t) => {
  for (const arch of ['x86_64', 'i686'] as const) {
    const gcc = gccConfigureArgs(arch, '/p', '/p/sys');
    t.true(gcc.includes(`--target=${arch}-linux-uclibc`));
    t.true(gcc.includes('--with-sysroot=/p/sys'));
    t.true(gcc.includes('--enable-default-pie') && gcc.includes('--enable-default-ssp'));
    t.true(gcc.includes('--disable-libssp'), 'uClibc-ng provides the stack protector');
    t.is(gcc.includes('--with-arch=i686'), arch === 'i686');
    t.true(binutilsConfigureArgs(arch, '/p', '/p/sys').includes('--enable-default-execstack=no'));
  }
});

for (const arch of ['x86_64', 'i686'] as const) {
  const dir = tiers().uclibc[arch]?.toolchain;
  if (!dir) {
    test.skip(`uclibc ${arch}: not run, the uClibc-ng toolchain is not in the cache (tor-ramdisk build toolchain --arch ${arch})`, () => {});
    continue;
  }
  test(`uclibc ${arch}: a plain gcc -O2 hello.c is PIE, full RELRO, stack-protected, NX-stack, and runs`, async (t) => {
    const tc = await readToolchain(dir);
    const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-uclibc-'));
    await writeFile(join(work, 'hello.c'), hello);
    const env = { PATH: `${tc.binDir}:${process.env.PATH}` };
    await execa(`${tc.prefix}gcc`, ['-O2', 'hello.c', '-o', 'hello'], { cwd: work, env });
    const info = await readElf(join(work, 'hello'));
    const h = hardeningOf(info, 'uclibc-ng');
    for (const property of ['pie', 'relro', 'bindNow', 'stackProtector', 'nxStack', 'noWX', 'noTextrel'] as const) t.is(h[property].value, 'yes', `${property}: ${h[property].reason}`);
    t.is(h.fortify.value, 'n/a');
    // Run it here through the toolchain's own loader and libc.
    const lib = join(tc.sysroot, 'lib');
    t.regex(info.interpreter ?? '', /^\/lib\/ld(64)?-uClibc\.so\.\d$/);
    await execa(`${tc.prefix}gcc`, ['-O2', 'hello.c', '-o', 'hello-here', `-Wl,--dynamic-linker=${join(tc.sysroot, info.interpreter!)}`, `-Wl,-rpath,${lib}`], { cwd: work, env });
    t.is((await execa(join(work, 'hello-here'), ['relay'])).stdout, 'hello relay');
    const smashed = await execa(join(work, 'hello-here'), ['A'.repeat(64)], { reject: false });
    // uClibc-ng's __stack_chk_fail kills the process outright (SIGKILL unless built for debugging).
    t.regex(smashed.stderr, /stack smashing detected/);
    t.true(smashed.signal === 'SIGKILL' || smashed.signal === 'SIGABRT', `ended by ${smashed.signal}`);
  });

  test(`uclibc ${arch}: ld --verbose works, the linker scripts are there, and kernel-style code still compiles`, async (t) => {
    const tc = await readToolchain(dir);
    const env = { PATH: `${tc.binDir}:${process.env.PATH}` };
    t.regex((await execa(`${tc.prefix}ld`, ['--verbose'], { env })).stdout, /SEARCH_DIR/);
    // Each emulation the kernel build links with (x86_64 links its real-mode trampoline as elf_i386).
    for (const emulation of arch === 'x86_64' ? ['elf_x86_64', 'elf_i386'] : ['elf_i386']) {
      const script = (await execa(`${tc.prefix}ld`, ['-m', emulation, '--verbose'], { env })).stdout;
      t.regex(script, emulation === 'elf_i386' ? /OUTPUT_FORMAT\("elf32-i386"/ : /OUTPUT_FORMAT\("elf64-x86-64"/, emulation);
    }
    t.true((await readdir(join(dir, tc.target, 'lib', 'ldscripts'))).length > 10);
    const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-kern-'));
    await writeFile(join(work, 'k.c'), 'int f(int *p) { return p[1]; }\n');
    const flags = arch === 'x86_64' ? ['-mcmodel=kernel', '-mno-red-zone'] : ['-mregparm=3'];
    await execa(`${tc.prefix}gcc`, ['-O2', '-fno-PIE', '-ffreestanding', '-fno-stack-protector', ...flags, '-c', 'k.c'], { cwd: work, env });
    t.pass();
  });
}

// The external variant, with the cached uClibc-ng toolchain standing in for a prebuilt one
// (Buildroot's layout: bin/<prefix>gcc, <target>/sysroot): its flags are passed explicitly.
for (const arch of ['x86_64', 'i686'] as const) {
  const dir = tiers().uclibc[arch]?.toolchain;
  if (!dir) continue;
  test(`external ${arch}: a prebuilt toolchain at a path builds zlib, hardened by the flags it is given`, async (t) => {
    const config = resolveConfig(
      await loadLayers({ arch, profile: 'relay', flags: ['toolchain.variant=external', `toolchain.external.path=${dir}`, `toolchain.external.prefix=${arch}-linux-uclibc-`] }),
    );
    const store = cacheDirs(await mkdtemp(join(tmpdir(), 'tor-ramdisk-external-'))).store;
    const results = await buildStages({ registry: stages, targets: ['zlib'], config, pins: await loadPins(), store, downloads: cacheDirs().downloads, renderer: 'silent' });
    const tc = await readToolchain(results.find((r) => r.stage === 'toolchain')!.dir);
    t.is(tc.variant, 'external');
    t.is(tc.libc, 'uclibc-ng');
    t.true(tc.ldflags.includes('-Wl,-z,now') && tc.cflags.includes('-fPIE'));
    const zlib = join(results.find((r) => r.stage === 'zlib')!.dir, 'usr', 'lib', 'libz.so.1');
    const h = hardeningOf(await readElf(zlib), tc.libc);
    for (const property of ['relro', 'bindNow', 'nxStack', 'noWX', 'noTextrel'] as const) t.is(h[property].value, 'yes', `${property}: ${h[property].reason}`);
  });
}
