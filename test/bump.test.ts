import test from 'ava';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FetchError, InputError, IntegrityError, SignatureError } from '../pipeline/errors.js';
import { sha256 } from '../pipeline/hash.js';
import { bump, type BumpOptions } from '../pipeline/sources/bump.js';
import { compareVersions, upstreamVersion } from '../pipeline/sources/debian.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { throwawayGnupg, type Gnupg } from './helpers/gnupg.js';
import { startServer, type TestServer } from './helpers/http-server.js';

// A small Debian-style archive on 127.0.0.1: one suite per case, each with its own InRelease
// (clearsigned by a throwaway archive key, or spoiled), Sources.gz and pool files; upstream's
// files beside it. Keys are made by gpg for this run.
let server: TestServer;
let gnupg: string;
let keysDir: string;
let pinsText: string;
const tarball = (version: string) => Buffer.from(`tor ${version} source\n`.repeat(500));

let keys: Gnupg;
const gpg = (...args: string[]) => keys.gpg(...args);

async function clearsign(uid: string, text: string): Promise<string> {
  const file = join(gnupg, `release-${sha256(text + uid).slice(0, 8)}`);
  await writeFile(file, text);
  return (await gpg('--local-user', uid, '--clearsign', '--output', '-', file)).stdout;
}

function sources(entries: { package: string; version: string; files: [string, Buffer | string][] }[]): Buffer {
  return gzipSync(
    entries
      .map((e) =>
        [
          `Package: ${e.package}`,
          `Version: ${e.version}`,
          `Directory: pool/main/${e.package[0]}/${e.package}`,
          'Checksums-Sha256:',
          ...e.files.map(([name, body]) => ` ${typeof body === 'string' ? body : sha256(body)} ${typeof body === 'string' ? 1 : body.length} ${name}`),
        ].join('\n'),
      )
      .join('\n\n') + '\n',
  );
}

async function suite(name: string, options: { sources: Buffer; signer?: string; listed?: Buffer; validUntil?: Date; tamper?: boolean; unsigned?: boolean }) {
  const validUntil = options.validUntil ?? new Date(Date.now() + 7 * 86400_000);
  const listed = options.listed ?? options.sources;
  const release = `Origin: Debian\nSuite: ${name}\nDate: ${new Date().toUTCString()}\nValid-Until: ${validUntil.toUTCString()}\nSHA256:\n ${sha256(listed)} ${listed.length} main/source/Sources.gz\n`;
  let signed = options.unsigned ? release : await clearsign(options.signer ?? 'archive@example.invalid', release);
  if (options.tamper) signed = signed.replace(`Suite: ${name}`, `Suite: ${name}x`);
  server.route(`/debian/dists/${name}/InRelease`, { kind: 'file', body: Buffer.from(signed) });
  server.route(`/debian/dists/${name}/main/source/Sources.gz`, { kind: 'file', body: options.sources });
}

test.before(async () => {
  server = await startServer();
  keys = await throwawayGnupg();
  gnupg = keys.home;
  keysDir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-keys-'));
  for (const uid of ['Test Archive Signing Key <archive@example.invalid>', 'Someone Else <other@example.invalid>', 'Busybox Upstream <busybox@example.invalid>']) await keys.newKey(uid);
  await writeFile(join(keysDir, 'debian-archive.asc'), await keys.armored('archive@example.invalid'));
  await writeFile(join(keysDir, 'busybox.asc'), await keys.armored('busybox@example.invalid'));

  const tor12 = tarball('0.4.9.12');
  const bb = Buffer.from('busybox 1.38.1\n'.repeat(300));
  const bbFile = join(gnupg, 'busybox-1.38.1.tar.bz2');
  await writeFile(bbFile, bb);
  const bbSig = Buffer.from((await gpg('--local-user', 'busybox@example.invalid', '--armor', '--detach-sign', '--output', '-', bbFile)).stdout);
  server.route('/debian/pool/main/t/tor/tor_0.4.9.12.orig.tar.gz', { kind: 'file', body: tor12 });
  server.route('/upstream/tor-0.4.9.12.tar.gz', { kind: 'file', body: tor12 });
  server.route('/debian/pool/main/t/tor/tor_0.4.9.13.orig.tar.gz', { kind: 'file', body: tarball('0.4.9.13') });
  server.route('/upstream/tor-0.4.9.13.tar.gz', { kind: 'file', body: Buffer.from('not what Debian has') });
  server.route('/debian/pool/main/b/busybox/busybox_1.38.1.orig.tar.bz2', { kind: 'file', body: bb });
  server.route('/debian/pool/main/b/busybox/busybox_1.38.1.orig.tar.bz2.asc', { kind: 'file', body: bbSig });
  const good = sources([
    { package: 'tor', version: '0.4.9.10-1', files: [['tor_0.4.9.10.orig.tar.gz', tarball('0.4.9.10')]] },
    { package: 'tor', version: '0.4.9.12-1', files: [['tor_0.4.9.12-1.dsc', 'a'.repeat(64)], ['tor_0.4.9.12.orig.tar.gz', tor12]] },
    { package: 'tor', version: '0.4.9.13-1', files: [['tor_0.4.9.13.orig.tar.gz', tarball('0.4.9.13')]] },
    { package: 'tor', version: '0.4.9.14-1', files: [['tor_0.4.9.14.orig.tar.gz', tarball('0.4.9.14')]] },
    { package: 'busybox', version: '1:1.38.1-1', files: [['busybox_1.38.1.orig.tar.bz2', bb], ['busybox_1.38.1.orig.tar.bz2.asc', bbSig]] },
  ]);
  server.route('/debian/pool/main/t/tor/tor_0.4.9.10.orig.tar.gz', { kind: 'file', body: tarball('0.4.9.10') });
  server.route('/upstream/tor-0.4.9.10.tar.gz', { kind: 'file', body: tarball('0.4.9.10') });
  await suite('good', { sources: good });
  await suite('badsig', { sources: good, tamper: true });
  await suite('unpinned', { sources: good, signer: 'other@example.invalid' });
  await suite('unsigned', { sources: good, unsigned: true });
  await suite('badindex', { sources: good, listed: Buffer.from('another Sources.gz') });
  await suite('expired', { sources: good, validUntil: new Date(Date.now() - 86400_000) });
  await suite('badfile', { sources: sources([{ package: 'tor', version: '0.4.9.12-1', files: [['tor_0.4.9.12.orig.tar.gz', 'b'.repeat(64)]] }]) });
  pinsText = `${JSON.stringify(
    {
      sources: {
        tor: {
          version: '0.4.9.11',
          license: 'BSD-3-Clause',
          files: [{ name: 'tor-0.4.9.11.tar.gz', sha256: sha256(tarball('0.4.9.11')), urls: [server.url('/upstream/tor-0.4.9.11.tar.gz'), server.url('/debian/pool/main/t/tor/tor_0.4.9.11.orig.tar.gz')] }],
        },
        busybox: {
          version: '1.38.0',
          license: 'GPL-2.0-only',
          files: [
            {
              name: 'busybox-1.38.0.tar.bz2',
              sha256: 'c'.repeat(64),
              urls: [server.url('/unreachable/busybox-1.38.0.tar.bz2'), server.url('/debian/pool/main/b/busybox/busybox_1.38.0.orig.tar.bz2')],
              signature: { urls: [server.url('/unreachable/busybox-1.38.0.tar.bz2.sig')], keyring: 'busybox' },
            },
          ],
        },
      },
    },
    null,
    2,
  )}\n`;
});
test.after.always(async () => {
  await server?.close();
  await keys?.close();
});

async function options(suites: string[], extra: Partial<BumpOptions> = {}): Promise<BumpOptions> {
  const pinsPath = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-pins-')), 'sources.json');
  await writeFile(pinsPath, pinsText);
  return { pinsPath, keysDir, mirror: server.url('/debian'), suites, allowDowngrade: false, acceptExpiredIndex: false, ...extra };
}

test('a bump renews the pin from the signed index and the upstream file, records how, and changes nothing else', async (t) => {
  const opts = await options(['nonexistent', 'good']);
  const lines: string[] = [];
  const result = await bump('tor', '0.4.9.12', { ...opts, onEvent: (l) => lines.push(l) });
  t.true(result.changed);
  const pins = await loadPins(opts.pinsPath);
  const tor = pins.get('tor')!;
  t.is(tor.version, '0.4.9.12');
  t.deepEqual(tor.files[0], {
    name: 'tor-0.4.9.12.tar.gz',
    sha256: sha256(tarball('0.4.9.12')),
    urls: [server.url('/upstream/tor-0.4.9.12.tar.gz'), server.url('/debian/pool/main/t/tor/tor_0.4.9.12.orig.tar.gz')],
    mirrors: [],
  });
  const written = JSON.parse(await readFile(opts.pinsPath, 'utf8'));
  t.is(written.sources.tor.authenticated.debian.suite, 'good');
  t.regex(written.sources.tor.authenticated.debian.signedBy[0], /^[0-9A-F]{40}$/);
  t.is(written.sources.tor.authenticated.upstream, 'identical to Debian');
  t.deepEqual(written.sources.busybox, JSON.parse(pinsText).sources.busybox);
  t.log(lines.join('\n'));
});

test('a signed source is bumped only with a signature by its pinned keys (here Debian\'s copy of upstream\'s)', async (t) => {
  const opts = await options(['good']);
  const result = await bump('busybox', '1.38.1', opts);
  t.regex(result.authenticated!.signature!, /^[0-9A-F]{40}$/);
  t.is(result.authenticated!.upstream, 'unreachable at bump time');
  t.is((await loadPins(opts.pinsPath)).get('busybox')!.files[0]!.signature!.urls[0], server.url('/unreachable/busybox-1.38.1.tar.bz2.sig'));
});

const refusals: { name: string; source?: string; version: string; suites: string[]; extra?: Partial<BumpOptions>; error: new (...args: never[]) => Error; message: RegExp }[] = [
  { name: 'an unknown source', source: 'tr', version: '1', suites: ['good'], error: InputError, message: /no pin for source "tr" in .*sources\.json/ },
  { name: 'a version no suite lists', version: '0.4.9.99', suites: ['good'], error: InputError, message: /tor 0\.4\.9\.99: no suite of .* lists tor_0\.4\.9\.99\.orig\.tar\.gz in source package tor \(looked in good\)/ },
  { name: 'a listed version the pool does not serve', version: '0.4.9.14', suites: ['good'], error: FetchError, message: /tor_0\.4\.9\.14\.orig\.tar\.gz is 404, though good's signed index lists it/ },
  { name: 'an index whose signature is bad', version: '0.4.9.12', suites: ['badsig'], error: SignatureError, message: /badsig\/InRelease does not verify .*: its signature is bad/ },
  { name: 'an index signed by a key that is not pinned', version: '0.4.9.12', suites: ['unpinned'], error: SignatureError, message: /unpinned\/InRelease does not verify .*: it is signed by a key that is not pinned/ },
  { name: 'an index with no signature', version: '0.4.9.12', suites: ['unsigned'], error: SignatureError, message: /unsigned\/InRelease does not verify .*: it carries no signature/ },
  { name: 'a Sources.gz whose hash the index does not give', version: '0.4.9.12', suites: ['badindex'], error: IntegrityError, message: /sha256 mismatch for .*badindex\/main\/source\/Sources\.gz/ },
  { name: 'a file whose hash Sources does not give', version: '0.4.9.12', suites: ['badfile'], error: IntegrityError, message: /sha256 mismatch for .*tor_0\.4\.9\.12\.orig\.tar\.gz: expected b{64}/ },
  { name: 'an upstream file that differs from Debian\'s', version: '0.4.9.13', suites: ['good'], error: IntegrityError, message: /sha256 mismatch for .*\/upstream\/tor-0\.4\.9\.13\.tar\.gz/ },
  { name: 'an expired index', version: '0.4.9.12', suites: ['expired'], error: SignatureError, message: /expired\/InRelease: the index expired on .*could hide a newer version/ },
  { name: 'a downgrade', version: '0.4.9.10', suites: ['good'], error: InputError, message: /tor 0\.4\.9\.10 is older than the pinned 0\.4\.9\.11: refused/ },
];

for (const refusal of refusals) {
  test(`bump refuses ${refusal.name}, and the pins are untouched`, async (t) => {
    const opts = await options(refusal.suites, refusal.extra);
    const error = await t.throwsAsync(bump(refusal.source ?? 'tor', refusal.version, opts), { instanceOf: refusal.error });
    t.regex(error!.message, refusal.message);
    t.is(await readFile(opts.pinsPath, 'utf8'), pinsText);
  });
}

test('a downgrade is taken with --allow-downgrade, an expired index with --accept-expired-index, each recorded', async (t) => {
  const down = await options(['good'], { allowDowngrade: true });
  t.true((await bump('tor', '0.4.9.10', down)).changed);
  t.is((await loadPins(down.pinsPath)).get('tor')!.version, '0.4.9.10');
  const old = await options(['expired'], { acceptExpiredIndex: true });
  const result = await bump('tor', '0.4.9.12', old);
  t.true(result.authenticated!.debian.expiredAccepted);
});

test('versions order as dpkg orders them', (t) => {
  const ascending = ['0.4.8.99', '0.4.9~rc1', '0.4.9', '0.4.9.1', '0.4.9.10', '0.4.10', '1.0~alpha', '1.0', '1.0a', '1.0.1', '2026.94'];
  for (let i = 0; i + 1 < ascending.length; i++) t.true(compareVersions(ascending[i]!, ascending[i + 1]!) < 0, `${ascending[i]} < ${ascending[i + 1]}`);
  t.is(compareVersions('2.1.13-stable', '2.1.13-stable'), 0);
  t.is(upstreamVersion('1:1.38.1-1'), '1.38.1');
  t.is(upstreamVersion('0.4.9.12-1+deb12u1'), '0.4.9.12');
});
