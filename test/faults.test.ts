import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_ITERATIONS, seal, open } from '../pipeline/bundle/format.js';
import { packState } from '../pipeline/bundle/state.js';
import { StageStore } from '../pipeline/engine/store.js';
import { parseElf } from '../pipeline/elf/read.js';
import { TorRamdiskError } from '../pipeline/errors.js';
import { sha256 } from '../pipeline/hash.js';
import { DownloadCache } from '../pipeline/sources/cache.js';
import { projectCopy, repo } from './helpers/project-copy.js';
import { startServer, type TestServer } from './helpers/http-server.js';

// Each failure class through the real CLI (a copy of the project, so its pins can point at a
// server on 127.0.0.1), in a temp cache; after each, what the cache holds is checked.

const root = process.getuid?.() === 0;
const good = Buffer.from('a pinned tarball\n'.repeat(8192)); // 136 KiB
const big = Buffer.alloc(4 << 20, 7); // larger than the small tmpfs
let server: TestServer;
let copy: string;
let cli: string;

test.before(async () => {
  server = await startServer();
  server.route('/good.tar', { kind: 'file', body: good });
  server.route('/big.tar', { kind: 'file', body: big });
  server.route('/evil.tar', { kind: 'file', body: Buffer.from('not what was pinned') });
  server.route('/good.tar.asc', { kind: 'file', body: Buffer.from('-----BEGIN PGP SIGNATURE-----\n') });
  copy = await projectCopy();
  cli = join(copy, 'dist', 'pipeline', 'cli.js');
});
test.after.always(async () => {
  await server?.close();
});

/** Pins the copy's configs/sources.json to files on the test server. */
async function pin(sources: Record<string, { path: string; sha256: string; signed?: boolean }>): Promise<void> {
  const entries = Object.entries(sources).map(([name, s]) => [
    name,
    {
      version: '1',
      license: 'MIT',
      files: [{ name: `${name}.tar`, sha256: s.sha256, urls: [server.url(s.path)], ...(s.signed ? { signature: { urls: [server.url(`${s.path}.asc`)], keyring: 'openssl' } } : {}) }],
    },
  ]);
  await writeFile(join(copy, 'configs', 'sources.json'), JSON.stringify({ sources: Object.fromEntries(entries) }));
}

const run = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [cli, ...args], { reject: false, env: { CI: 'true', ...env }, all: true });
const temp = (name: string) => mkdtemp(join(tmpdir(), `tor-ramdisk-faults-${name}-`));
const files = async (dir: string) => (await readdir(dir, { recursive: true }).catch(() => [] as string[])).sort();

/** A shell script in a private mount namespace (mounts made there vanish with it). */
const inMountNamespace = (script: string, ...args: string[]) =>
  execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...args], { reject: false, all: true });

test.serial('clean refuses an empty --cache and a directory it did not make; it removes only its own', async (t) => {
  const empty = await run(['clean', '--all', '--cache', '']);
  t.is(empty.exitCode, 2);
  t.regex(empty.stderr, /--cache is empty/);
  const home = await temp('home');
  await writeFile(join(home, 'notes.txt'), 'mine');
  await mkdir(join(home, 'stages'));
  for (const args of [['clean', '--all', '--cache', home], ['clean', '--all']]) {
    const refused = await run(args, { TOR_RAMDISK_CACHE: home });
    t.is(refused.exitCode, 2, refused.all);
    t.regex(refused.stderr, /is not a tor-ramdisk cache \(it has no \.tor-ramdisk-cache\): nothing was removed/);
  }
  t.deepEqual(await files(home), ['notes.txt', 'stages']);
  // fetch refuses to make a cache of it, too.
  await pin({ a: { path: '/good.tar', sha256: sha256(good) } });
  const fetch = await run(['fetch', '--cache', home]);
  t.is(fetch.exitCode, 2);
  t.regex(fetch.stderr, /is not a tor-ramdisk cache: it has no \.tor-ramdisk-cache and holds notes\.txt/);
  // A cache the tool made: clean removes stages/ and logs/, --all downloads/ too, and nothing else.
  const cache = await temp('cache');
  t.is((await run(['fetch', '--cache', cache])).exitCode, 0);
  await writeFile(join(cache, 'mine.txt'), 'not the tool\'s');
  t.is((await run(['clean', '--cache', cache])).exitCode, 0);
  t.true((await files(cache)).includes('downloads'));
  t.is((await run(['clean', '--all', '--cache', cache])).exitCode, 0);
  t.deepEqual(await files(cache), ['.tor-ramdisk-cache', 'mine.txt']);
});

test.serial('a cache path that is relative is resolved; one that is a file or holds a space is refused by name', async (t) => {
  await pin({ a: { path: '/good.tar', sha256: sha256(good) } });
  const cwd = await temp('cwd');
  const relative = await execa(process.execPath, [cli, 'fetch', '--cache', 'rel'], { cwd, reject: false, env: { CI: 'true' } });
  t.is(relative.exitCode, 0, relative.stderr);
  t.truthy(await stat(join(cwd, 'rel', 'downloads', 'sha256', sha256(good))));
  const file = join(await temp('file'), 'cache');
  await writeFile(file, 'a file');
  const notDir = await run(['fetch', '--cache', file]);
  t.is(notDir.exitCode, 7);
  t.regex(notDir.stderr, new RegExp(`the cache is not a directory: ${file}: ENOTDIR`));
  const spaced = await run(['build', 'zlib', '--cache', join(await temp('space'), 'my cache')]);
  t.is(spaced.exitCode, 2);
  t.regex(spaced.stderr, /contains whitespace/);
});

test.serial('a wrong sha256 is a verification failure (3); a missing gpgv is a missing tool (5), not a bad signature', async (t) => {
  await pin({ a: { path: '/evil.tar', sha256: sha256(good) } });
  const cache = await temp('evil');
  const evil = await run(['fetch', '--cache', cache]);
  t.is(evil.exitCode, 3, evil.all);
  t.regex(evil.stderr, /no URL served the pinned file/);
  t.deepEqual(await files(join(cache, 'downloads', 'sha256')), [], 'nothing bad is trusted');
  await pin({ a: { path: '/good.tar', sha256: sha256(good), signed: true } });
  const noGpgv = await run(['fetch', '--cache', cache], { PATH: '/nonexistent' });
  t.is(noGpgv.exitCode, 5, noGpgv.all);
  t.regex(noGpgv.stderr, /missing host tools: gpgv/);
  t.regex(noGpgv.stderr, /doctor --install/);
  t.deepEqual(await files(join(cache, 'downloads', 'sha256')), [], 'an unverified file is not kept');
});

test.serial('disk full during a download is a local fault: exit 7 with the path and ENOSPC, no retry, nothing kept', async (t) => {
  if (!root) return t.log('not run: mounting a small tmpfs needs root');
  await pin({ big: { path: '/big.tar', sha256: sha256(big) } });
  const dir = await temp('enospc');
  const hits = server.hits('/big.tar');
  const result = await inMountNamespace(
    'mount -t tmpfs -o size=1m tmpfs "$1" && "$2" "$3" fetch --cache "$1/cache"; echo "exit=$?"; find "$1/cache/downloads" -type f',
    dir,
    process.execPath,
    cli,
  );
  t.regex(result.all!, /cannot write the download of .*: .*ENOSPC \(no space left on the device\)/);
  t.regex(result.all!, /exit=7/);
  t.notRegex(result.all!, /retrying|check the network/i);
  t.is(server.hits('/big.tar') - hits, 1, 'not retried');
  t.notRegex(result.all!, /\/downloads\/(sha256|tmp)\/./, 'no partial file left');
});

test.serial('disk full during a stage\'s commands is a local fault too (7), not a broken build; nothing of the stage is kept', async (t) => {
  if (!root) return t.log('not run: mounting a small tmpfs needs root');
  const dir = await temp('enospc-build');
  const result = await inMountNamespace(
    'mount -t tmpfs -o size=24k tmpfs "$1" && "$2" "$3" build toolchain --set toolchain.variant=host --cache "$1/cache"; echo "exit=$?"; echo "left:"; ls -A "$1/cache/stages/toolchain"',
    dir,
    process.execPath,
    join(repo, 'dist', 'pipeline', 'cli.js'),
  );
  t.regex(result.all!, /stage toolchain: command exited with code 1: x86_64-linux-gnu-gcc .*; the disk under it refuses writes: .*ENOSPC \(no space left on the device\)/);
  t.regex(result.all!, /exit=7/);
  t.regex(result.all!, /left:\n[0-9a-f]{64}\.lock$/, 'the attempt was discarded: only its lock file is left');
});

test.serial('disk full while a stage extracts its source is a local fault (7), not a bad archive (2)', async (t) => {
  if (!root) return t.log('not run: mounting a small tmpfs needs root');
  // A small tarball that unpacks to 4 MiB, pinned as zlib's source in the copy.
  const src = await temp('tarball');
  await mkdir(join(src, 'zlib-9'));
  await writeFile(join(src, 'zlib-9', 'zeros'), Buffer.alloc(4 << 20));
  await execa('tar', ['-cJf', join(src, 'zlib.tar.xz'), '-C', src, 'zlib-9']);
  const tarball = await readFile(join(src, 'zlib.tar.xz'));
  server.route('/zlib.tar.xz', { kind: 'file', body: tarball });
  await pin({ zlib: { path: '/zlib.tar.xz', sha256: sha256(tarball) } });
  const dir = await temp('enospc-extract');
  const result = await inMountNamespace(
    'mount -t tmpfs -o size=1m tmpfs "$1" && "$2" "$3" build zlib --set toolchain.variant=host --cache "$1/cache"; echo "exit=$?"',
    dir,
    process.execPath,
    cli,
  );
  t.regex(result.all!, /stage zlib: cannot extract zlib\.tar: command exited with code 2: tar -x .*; the disk under it refuses writes: .*ENOSPC \(no space left on the device\)/);
  t.regex(result.all!, /exit=7/);
});

test.serial('a read-only cache: what is cached is used; what is not is a local fault (EROFS), not a network one', async (t) => {
  if (!root) return t.log('not run: a read-only bind mount needs root');
  await pin({ a: { path: '/good.tar', sha256: sha256(good) } });
  const cache = await temp('ro');
  t.is((await run(['fetch', '--cache', cache])).exitCode, 0);
  const cached = await inMountNamespace('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "$3" fetch --cache "$1"', cache, process.execPath, cli);
  t.is(cached.exitCode, 0, cached.all);
  t.regex(cached.all!, /cache \(re-verified\)/);
  await pin({ a: { path: '/good.tar', sha256: sha256(good) }, b: { path: '/big.tar', sha256: sha256(big) } });
  const missing = await inMountNamespace('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "$3" fetch --cache "$1"', cache, process.execPath, cli);
  t.is(missing.exitCode, 7, missing.all);
  t.regex(missing.all!, /EROFS \(read-only file system\)/);
});

test.serial('a build whose holder was pid 1 of a killed PID namespace does not hold its lock: the next build goes on', async (t) => {
  if (!root) return t.log('not run: a PID namespace needs root');
  const cacheRoot = await temp('pidns');
  const marker = join(cacheRoot, 'marker');
  const pins = JSON.stringify({ sources: { alpha: { version: '1', license: 'MIT', files: [{ name: 'alpha-1.tar', sha256: sha256('alpha-1'), urls: [server.url('/alpha-1.tar')] }] }, gamma: { version: '1', license: 'MIT', files: [{ name: 'gamma-1.tar', sha256: sha256('gamma-1'), urls: [server.url('/gamma-1.tar')] }] } } });
  server.route('/alpha-1.tar', { kind: 'file', body: Buffer.from('alpha-1') });
  server.route('/gamma-1.tar', { kind: 'file', body: Buffer.from('gamma-1') });
  const script = fileURLToPath(new URL('./fixtures/killable-build.js', import.meta.url));
  const child = execa('unshare', ['--pid', '--fork', '--kill-child', process.execPath, script, cacheRoot, pins], { env: { TOR_RAMDISK_TEST_HANG: 'b', TOR_RAMDISK_TEST_MARKER: marker }, reject: false });
  for (let i = 0; i < 600 && !(await stat(marker).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
  const locks = (await readdir(join(cacheRoot, 'stages', 'b'))).filter((e) => e.endsWith('.lock'));
  t.is(locks.length, 1);
  t.regex(await readFile(join(cacheRoot, 'stages', 'b', locks[0]!), 'utf8'), /^pid 1 on /, 'the holder was pid 1 in its namespace');
  child.kill('SIGKILL');
  await child;
  const started = Date.now();
  const again = await execa(process.execPath, [script, cacheRoot, pins], { reject: false, timeout: 60_000 });
  t.is(again.exitCode, 0, again.stderr);
  t.log(`the next build finished in ${Date.now() - started} ms`);
  t.deepEqual((await readdir(join(cacheRoot, 'stages', 'b'))).filter((e) => e.startsWith('.tmp-')), [], 'the killed build\'s directory was swept');
});

test.serial('a build waiting on a lock says which key, since when and who holds it', async (t) => {
  const store = new StageStore(await temp('lock'));
  const key = 'ab'.repeat(32);
  const first = await store.lock('stage', key);
  const said: string[] = [];
  const second = store.lock('stage', key, { onWait: (m) => said.push(m) });
  for (let i = 0; i < 200 && said.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.is(said.length, 1);
  t.regex(said[0]!, new RegExp(`waiting for stage ${key.slice(0, 12)}…, which another build is making \\(pid ${process.pid} on .* since \\d{4}-\\d\\d-\\d\\dT`));
  await first();
  await (await second)();
});

test.serial('stale claims: an output whose out/ is gone is not cached; a killed fetch\'s temporary file is swept', async (t) => {
  const store = new StageStore(await temp('store'));
  const key = 'cd'.repeat(32);
  const attempt = await store.begin('s', key);
  await writeFile(attempt.out + '/x', 'x');
  await store.commit('s', attempt.dir, { key, inputs: {} as never, builtAt: '', durationMs: 0 });
  t.truthy(await store.lookup('s', key));
  await execa('rm', ['-r', store.outDir('s', key)]);
  t.is(await store.lookup('s', key), undefined);
  const cache = new DownloadCache(await temp('dl'));
  const left = await cache.tempPath('linux.tar.xz');
  await writeFile(left, 'half a download');
  const fresh = await cache.tempPath('busybox.tar.bz2');
  await writeFile(fresh, 'being written');
  await utimes(left, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
  t.is(await cache.sweepStale(), 1);
  t.deepEqual(await readdir(cache.tmpDir), [fresh.split('/').pop()]);
});

test.serial('bundle: user mistakes exit 2 naming the file or value; seal refuses what open would', async (t) => {
  const dir = await temp('bundle');
  const pass = join(dir, 'pass');
  await writeFile(pass, 'correct horse\n');
  const state = join(dir, 'state');
  await mkdir(join(state, 'keys'), { recursive: true });
  await writeFile(join(state, 'torrc'), 'ORPort 9001\n');
  await writeFile(join(state, 'keys', 'secret_id_key'), 'k');
  const cases: [string[], RegExp][] = [
    [['bundle', 'open', join(dir, 'missing.bundle'), join(dir, 'out'), '--passphrase-file', pass], /cannot read bundle .*missing\.bundle: no such file/],
    [['bundle', 'seal', state, pass, '--passphrase-file', pass], /already exists/],
    [['bundle', 'seal', join(dir, 'keys-only'), join(dir, 'x.bundle'), '--passphrase-file', pass], /has no readable torrc/],
    [['bundle', 'seal', state, join(dir, 'y.bundle'), '--iterations', 'abc', '--passphrase-file', pass], /--iterations abc: expected a whole number/],
    [['bundle', 'seal', state, join(dir, 'z.bundle'), '--iterations', String(MAX_ITERATIONS + 1), '--passphrase-file', pass], /refusing to seal with 10000001 PBKDF2 iterations/],
    [['bundle', 'inspect', dir, '--passphrase-file', pass], /is not a file/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    t.is(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message);
    t.notRegex(result.stderr, /internal error|    at /);
  }
  for (const bad of ['.hidden', 'a'.repeat(91)]) {
    await writeFile(join(state, 'keys', bad), 'x');
    const result = await run(['bundle', 'seal', state, join(dir, 'bad.bundle'), '--passphrase-file', pass]);
    t.is(result.exitCode, 2);
    t.regex(result.stderr, /is not torrc or keys\/<file>/);
    await execa('rm', [join(state, 'keys', bad)]);
  }
  await mkdir(join(state, 'keys', 'sub'));
  const subdir = await run(['bundle', 'seal', state, join(dir, 'sub.bundle'), '--passphrase-file', pass]);
  t.is(subdir.exitCode, 2);
  t.regex(subdir.stderr, /keys\/sub is not a regular file/);
  t.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.bundle')), [], 'nothing was written');
});

test.serial('bundle: a header asking for too many iterations is refused before any work; an oversized file unread', async (t) => {
  const sealed = seal(packState([{ name: 'torrc', data: Buffer.from('ORPort 9001\n') }]), Buffer.from('pw'), 100_000);
  const hostile = Buffer.from(sealed);
  hostile.writeUInt32BE(0xffffffff, 8);
  const started = Date.now();
  const error = t.throws(() => open(hostile, Buffer.from('pw'), 'hostile.bundle'));
  t.true(Date.now() - started < 2000, 'no PBKDF2 was run (4 billion iterations would take hours)');
  t.regex(error!.message, /asks for 4294967295 PBKDF2 iterations, more than 10000000/);
  t.is((error as TorRamdiskError).exitCode, 3);
  const dir = await temp('huge');
  await writeFile(join(dir, 'huge.bundle'), Buffer.alloc(2 << 20));
  const huge = await run(['bundle', 'inspect', join(dir, 'huge.bundle'), '--passphrase-file', join(repo, 'package.json')]);
  t.is(huge.exitCode, 2);
  t.regex(huge.stderr, /is 2097152 bytes: a bundle is at most 1048576/);
});

/** A small deterministic generator (mulberry32): the same mutations every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(input: Buffer, next: () => number): Buffer {
  const out = Buffer.from(input);
  const kind = Math.floor(next() * 3);
  if (kind === 0) for (let i = 0; i < 1 + next() * 8; i++) out[Math.floor(next() * out.length)] = Math.floor(next() * 256);
  if (kind === 1) return out.subarray(0, Math.floor(next() * out.length));
  if (kind === 2) out.writeUInt32LE(Math.floor(next() * 2 ** 32), Math.floor(next() * (out.length - 4)));
  return out;
}

test.serial('fuzz: mutated and random bundles and ELF objects end in a clean refusal (2 or 3), never an internal error', async (t) => {
  const next = random(20261201);
  const sealed = seal(packState([{ name: 'torrc', data: Buffer.from('ORPort 9001\n') }, { name: 'keys/secret_id_key', data: Buffer.alloc(900, 1) }]), Buffer.from('pw'), 100_000);
  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  for (let i = 0; i < 120; i++) {
    const input = i % 4 === 0 ? Buffer.from(Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256))) : mutate(sealed, next);
    try {
      open(input, Buffer.from('pw'), 'fuzzed.bundle');
      count('opened');
    } catch (error) {
      t.true(error instanceof TorRamdiskError && [2, 3].includes(error.exitCode), `bundle ${i}: ${String(error)}`);
      count(`bundle exit ${(error as TorRamdiskError).exitCode}`);
    }
  }
  const elf = await readFile(process.execPath).then((b) => b.subarray(0, 1 << 16));
  const small = await readFile('/bin/true');
  for (let i = 0; i < 1500; i++) {
    const input = mutate(i % 2 ? small : elf, next);
    try {
      parseElf(input, 'fuzzed.elf');
      count('elf parsed');
    } catch (error) {
      t.true(error instanceof TorRamdiskError && [2, 3].includes(error.exitCode), `elf ${i}: ${String(error)}`);
      count(`elf exit ${(error as TorRamdiskError).exitCode}`);
    }
  }
  t.log(JSON.stringify(Object.fromEntries(outcomes)));
});

test.serial('a project file edited while its stage builds: the output is not kept under a key that does not describe it', async (t) => {
  const load = async <T>(module: string): Promise<T> => (await import(pathToFileURL(join(copy, 'dist', 'pipeline', module)).href)) as T;
  const { buildStages } = await load<typeof import('../pipeline/engine/build.js')>('engine/build.js');
  const { cacheDirs } = await load<typeof import('../pipeline/context.js')>('context.js');
  const { loadLayers } = await load<typeof import('../pipeline/config/layers.js')>('config/layers.js');
  const { resolveConfig } = await load<typeof import('../pipeline/config/resolve.js')>('config/resolve.js');
  const hosts = join(copy, 'initramfs', 'etc', 'hosts');
  const stage = {
    name: 'reads-hosts',
    title: 'reads hosts',
    definition: import.meta.url,
    files: ['initramfs/etc/hosts'],
    async run(ctx: import('../pipeline/engine/stage.js').StageContext) {
      await writeFile(join(ctx.out, 'hosts'), await readFile(hosts));
      await writeFile(hosts, `${await readFile(hosts, 'utf8')}# edited during the build\n`);
    },
  };
  const dirs = cacheDirs(await temp('edited'));
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay' }));
  const error = await t.throwsAsync(buildStages({ registry: [stage], targets: [stage.name], config, pins: new Map(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' }));
  t.regex(error!.message, /stage reads-hosts: initramfs\/etc\/hosts changed while it was building; its output was not kept/);
  t.deepEqual((await readdir(join(dirs.store.root, 'reads-hosts'))).filter((e) => !e.endsWith('.lock') && !e.startsWith('last-')), [], 'nothing committed');
});
