import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElf } from '../pipeline/elf/read.js';
import { stages } from '../pipeline/stages/index.js';
import { boot } from '../pipeline/qemu/boot.js';
import { readToolchain } from '../pipeline/toolchain/toolchain.js';
import { hostBuild } from './helpers/host-build.js';
import { tiers } from './tiers/tiers.js';

// tor's own unit tests (src/test/test of its tree, kept by the tor stage in tests/), run here
// against the cross-built tor and the cross-built libraries of the image (zlib, libevent, OpenSSL, libseccomp).
const LIBRARY_STAGES = stages.flatMap((s) => (s.image?.libraries ? [{ stage: s.name, dir: s.image.libraries }] : []));

interface TorTestRun {
  ok: number;
  failed: number;
  skipped: number;
  /** The failing tests by name (group/test), as tinytest prints them before their FAIL lines. */
  failures: string[];
}

function summary(output: string): TorTestRun {
  const failures: string[] = [];
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const name = /^([\w./-]+\/[\w./-]+): /.exec(line);
    if (name) current = name[1];
    else if (/^\s+FAIL /.test(line) && current && !failures.includes(current)) failures.push(current);
  }
  const ok = output.match(/^(\d+) tests ok\.\s+\((\d+) skipped\)/m);
  if (ok) return { ok: Number(ok[1]), failed: 0, skipped: Number(ok[2]), failures };
  const failed = output.match(/^(\d+)\/(\d+) TESTS FAILED\.\s+\((\d+) skipped\)/m);
  if (!failed) throw new Error(`no summary line in tor's test output:\n${output.slice(-3000)}`);
  return { ok: Number(failed[2]) - Number(failed[1]), failed: Number(failed[1]), skipped: Number(failed[3]), failures };
}

/** Failures expected with a libc, each with the reason it is not a fault of the relay. */
type KnownFailures = Record<string, string>;

function report(t: ExecutionContext, label: string, run: TorTestRun, known: KnownFailures = {}): void {
  t.log(`${label}: ${run.ok} ok, ${run.failed} failed, ${run.skipped} skipped`);
  for (const name of run.failures.filter((f) => known[f])) t.log(`  known: ${name}: ${known[name]}`);
  t.deepEqual(run.failures.filter((f) => !known[f]), [], 'unexpected failures');
  t.is(run.failed, run.failures.length, 'every failure was named');
  t.true(run.ok > 1000, `only ${run.ok} tests ran`);
}

/** uClibc-ng differs from glibc where tor probes libc at its limits. */
const UCLIBC_KNOWN_FAILURES: KnownFailures = {
  'util/time':
    "localtime_r(INT64_MIN): uClibc-ng returns a clamped date without an error, so tor's own clamping has nothing to log (the test wants its warning); a time 292 billion years back, never a relay's",
};

test('host x86_64: tor\'s unit tests pass against the cross-built tor and its libraries', async (t) => {
  const { dir } = await hostBuild('x86_64', ['tor']);
  const libraryPath = LIBRARY_STAGES.map((s) => join(dir(s.stage), s.dir)).join(':');
  const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-tortest-'));
  const run = await execa(join(dir('tor'), 'tests', 'test'), [], { cwd: work, env: { LD_LIBRARY_PATH: libraryPath }, all: true, reject: false, timeout: 900_000 });
  report(t, 'tor unit tests (host toolchain, x86_64)', summary(run.all ?? ''));
});

// uClibc-ng tier: the programs run here through the toolchain's own loader, which is not on
// this machine: a private mount namespace overlays the sysroot's /lib on /lib (i686 programs
// run on this x86_64 kernel's 32-bit ABI).
for (const arch of ['x86_64', 'i686'] as const) {
  const uclibc = tiers().uclibc[arch] ?? {};
  if (!(uclibc.tor && uclibc.toolchain && LIBRARY_STAGES.every((s) => uclibc[s.stage]))) {
    test.skip(`uclibc ${arch}: tor's unit tests: not run, the uClibc-ng tor is not in the cache (tor-ramdisk build --arch ${arch})`, () => {});
    continue;
  }
  test(`uclibc ${arch}: tor --version runs, and tor's unit tests pass but for the known uClibc-ng differences`, async (t) => {
    const tc = await readToolchain(uclibc.toolchain!);
    const interpreter = (await readElf(join(uclibc.tor!, 'usr', 'bin', 'tor'))).interpreter;
    t.regex(interpreter ?? '', arch === 'x86_64' ? /^\/lib\/ld64-uClibc\.so\.\d$/ : /^\/lib\/ld-uClibc\.so\.\d$/);
    const libraryPath = LIBRARY_STAGES.map((s) => join(uclibc[s.stage]!, s.dir)).join(':');
    const inNamespace = (program: string, args: string[], cwd: string) =>
      execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t overlay overlay -o "lowerdir=/lib:$1" /lib && shift && exec "$@"', 'sh', join(tc.sysroot, 'lib'), program, ...args], {
        cwd,
        env: { LD_LIBRARY_PATH: libraryPath },
        all: true,
        reject: false,
        timeout: 900_000,
      });
    const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-tortest-'));
    const version = await inNamespace(join(uclibc.tor!, 'usr', 'bin', 'tor'), ['--version'], work);
    t.regex(version.stdout, /^Tor version 0\.4\.9\.\d+/, version.all);
    t.log(version.stdout.split('\n')[0]);
    report(t, `tor unit tests (uClibc-ng toolchain, ${arch})`, summary((await inNamespace(join(uclibc.tor!, 'tests', 'test'), [], work)).all ?? ''), UCLIBC_KNOWN_FAILURES);
  });
}

for (const arch of ['x86_64', 'i686'] as const) {
  const iso = tiers().uclibc[arch]?.iso;
  if (!iso) {
    test.skip(`uclibc ${arch}: the release ISO boots to the menu: not run, not in the cache (tor-ramdisk build --arch ${arch})`, () => {});
    continue;
  }
  test(`uclibc ${arch}: the release ISO boots from CD to the menu, runs tor, and halts`, async (t) => {
    const guest = await boot({ arch, image: join(iso, `tor-ramdisk-${arch}.iso`), as: 'cdrom', firmware: 'bios', timeoutMs: 420_000 });
    try {
      await guest.waitFor(/boot: $/, 120_000);
      guest.type('serial\n');
      await guest.waitFor(/10 +Halt \(power off\)\n\n> $/, 240_000);
      guest.type('8\n');
      await guest.waitFor(/# $/, 30_000);
      guest.type('tor --version | head -1; cat /etc/tor-ramdisk-release; poweroff -f\n');
      const { exitCode } = await guest.exited;
      t.is(exitCode, 0);
      t.regex(guest.output(), /Tor version 0\.4\.9\.\d+/);
      t.regex(guest.output(), new RegExp(`arch=${arch}\\nprofile=relay\\ntoolchain=uclibc \\(${arch}-linux-uclibc, uclibc-ng\\)`));
    } finally {
      guest.kill();
    }
  });
}
