import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDirs } from '../pipeline/context.js';
import { run } from '../pipeline/exec.js';
import { applyFragments } from '../pipeline/kconfig/apply.js';
import { parseKconfig, readFragment } from '../pipeline/kconfig/fragment.js';
import { extractTarball } from '../pipeline/sources/extract.js';
import { fetchSources } from '../pipeline/sources/fetch.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { KERNEL_FRAGMENTS_DIR } from '../pipeline/stages/kernel.js';
import { UCLIBC_FRAGMENTS_DIR } from '../pipeline/toolchain/uclibc.js';

// Every directory the tests make (a kernel tree is 1.6 GB), removed when they are done.
const made: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tor-ramdisk-${prefix}-`));
  made.push(dir);
  return dir;
}
test.after.always(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));

// Real trees from the pinned sources (fetched once into the cache), real Kconfig.
async function tree(source: string): Promise<string> {
  const [file] = await fetchSources([(await loadPins()).get(source)!], { cache: cacheDirs().downloads });
  const dir = await tempDir(source);
  await extractTarball(file!.path, dir, { strip: 1, label: file!.name });
  return dir;
}

const uclibc = tree('uclibc-ng');

for (const arch of ['x86_64', 'i686'] as const) {
  test(`uClibc-ng: the project's ${arch} fragments survive olddefconfig`, async (t) => {
    const dir = await tempDir('uclibc-copy');
    await run('cp', ['-a', `${await uclibc}/.`, dir]);
    const make = (target: string) => run('make', [`ARCH=${arch === 'i686' ? 'i386' : 'x86_64'}`, target], { cwd: dir });
    const fragments = [
      await readFragment(join(UCLIBC_FRAGMENTS_DIR, 'common.config'), { prefix: '' }),
      await readFragment(join(UCLIBC_FRAGMENTS_DIR, `${arch}.config`), { prefix: '' }),
    ];
    const final = await applyFragments({ what: 'uClibc-ng', tree: dir, configPath: join(dir, '.config'), make, prefix: '', stage: 'test' }, 'defconfig', fragments);
    t.true(final.settings.some((s) => s.symbol === 'UCLIBC_HAS_SSP' && s.value === 'y'));
  });
}

test('uClibc-ng: a fragment symbol that Kconfig drops fails, naming fragment, symbol and dependency', async (t) => {
  const dir = await uclibc;
  const make = (target: string) => run('make', ['ARCH=x86_64', target], { cwd: dir });
  const fragments = [
    await readFragment(join(UCLIBC_FRAGMENTS_DIR, 'common.config'), { prefix: '' }),
    parseKconfig('UCLIBC_HAS_XLOCALE=y\n', 'test-drop.config', { prefix: '' }),
  ];
  const error = await t.throwsAsync(applyFragments({ what: 'uClibc-ng', tree: dir, configPath: join(dir, '.config'), make, prefix: '', stage: 'test' }, 'defconfig', fragments));
  t.regex(error!.message, /uClibc-ng configuration: Kconfig dropped 1 symbol\(s\)/);
  t.regex(error!.message, /test-drop\.config: UCLIBC_HAS_XLOCALE wanted y, got n \(absent\): depends on UCLIBC_HAS_LOCALE \(off here: UCLIBC_HAS_LOCALE\)/);
});

test('kernel: a fragment asking for a symbol whose dependency is off fails, naming both', async (t) => {
  const src = await tree('linux');
  const build = await tempDir('kbuild');
  const make = (target: string) => run('make', ['-C', src, `O=${build}`, 'ARCH=x86_64', target]);
  const fragments = [
    await readFragment(join(KERNEL_FRAGMENTS_DIR, 'base.config'), { name: 'kernel/base.config' }),
    parseKconfig('# CONFIG_NET is not set\n', 'test-no-net.config'),
    parseKconfig('CONFIG_PACKET_DIAG=y\n', 'test-wants-packet-diag.config'),
  ];
  const error = await t.throwsAsync(applyFragments({ what: 'kernel', tree: src, configPath: join(build, '.config'), make, stage: 'test' }, 'allnoconfig', fragments));
  t.regex(error!.message, /test-wants-packet-diag\.config: CONFIG_PACKET_DIAG wanted y, got n \(absent\): depends on PACKET \(off here: PACKET\); inside if NET \(off here: NET\)/);
  t.regex(error!.message, /kernel\/base\.config: CONFIG_PACKET wanted y, got n \(absent\): inside if NET \(off here: NET\)/);
});
