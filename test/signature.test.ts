import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../pipeline/hash.js';
import { DownloadCache } from '../pipeline/sources/cache.js';
import { fetchFile } from '../pipeline/sources/fetch.js';
import type { SourcePin } from '../pipeline/sources/pins.js';
import { startServer, type TestServer } from './helpers/http-server.js';

// Real keys, made by gpg for this run: one pinned in the keys directory, one not.
let server: TestServer;
let keysDir: string;
let gnupg: string;
const tarball = Buffer.from('a signed release\n'.repeat(1000));

async function gpg(...args: string[]) {
  return execa('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { GNUPGHOME: gnupg } });
}

async function sign(uid: string, content: Buffer, name: string): Promise<Buffer> {
  const file = join(gnupg, `${name}.data`);
  await writeFile(file, content);
  await gpg('--local-user', uid, '--armor', '--detach-sign', '--output', `${file}.asc`, file);
  const { readFile } = await import('node:fs/promises');
  return readFile(`${file}.asc`);
}

test.before(async () => {
  server = await startServer();
  gnupg = await mkdtemp(join(tmpdir(), 'tor-ramdisk-gnupg-'));
  keysDir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-keys-'));
  await gpg('--quick-gen-key', 'Pinned Release Key <pinned@example.invalid>', 'ed25519', 'sign', 'never');
  await gpg('--quick-gen-key', 'Someone Else <other@example.invalid>', 'ed25519', 'sign', 'never');
  const { stdout } = await gpg('--armor', '--export', 'pinned@example.invalid');
  await writeFile(join(keysDir, 'upstream.asc'), stdout);
  server.route('/rel.tar.gz', { kind: 'file', body: tarball });
  server.route('/good.asc', { kind: 'file', body: await sign('pinned@example.invalid', tarball, 'good') });
  server.route('/other-content.asc', { kind: 'file', body: await sign('pinned@example.invalid', Buffer.from('something else'), 'bad') });
  server.route('/unpinned.asc', { kind: 'file', body: await sign('other@example.invalid', tarball, 'unpinned') });
});
test.after.always(async () => {
  await server?.close();
});

function signedPin(signatureUrl: string): SourcePin {
  return {
    name: 'rel',
    version: '1',
    license: 'MIT',
    files: [{ name: 'rel-1.tar.gz', sha256: sha256(tarball), urls: [server.url('/rel.tar.gz')], mirrors: [], signature: { urls: [signatureUrl], keyring: 'upstream' } }],
  };
}

async function attempt(signatureUrl: string) {
  const cache = new DownloadCache(await mkdtemp(join(tmpdir(), 'tor-ramdisk-sig-')));
  const p = signedPin(signatureUrl);
  return { cache, result: fetchFile(p, p.files[0]!, { cache, keysDir, timeoutMs: 2000, backoffMs: 10 }) };
}

test('a signature by the pinned key is accepted and its fingerprint reported', async (t) => {
  const { result } = await attempt(server.url('/good.asc'));
  const fetched = await result;
  const { stdout } = await gpg('--with-colons', '--fingerprint', 'pinned@example.invalid');
  const fingerprint = /^fpr:+([0-9A-F]+):/m.exec(stdout)![1];
  t.is(fetched.signedBy, fingerprint);
});

test('a bad signature is refused and nothing enters the cache', async (t) => {
  const { cache, result } = await attempt(server.url('/other-content.asc'));
  const error = await t.throwsAsync(result);
  t.regex(error!.message, /signature is bad/);
  t.deepEqual(await readdir(cache.dir).catch(() => []), []);
});

test('a signature by an unpinned key is refused', async (t) => {
  const { cache, result } = await attempt(server.url('/unpinned.asc'));
  const error = await t.throwsAsync(result);
  t.regex(error!.message, /made by a key that is not pinned/);
  t.deepEqual(await readdir(cache.dir).catch(() => []), []);
});

test('a missing signature is refused: the pin says upstream signs', async (t) => {
  const { result } = await attempt(server.url('/no-such.asc'));
  const error = await t.throwsAsync(result);
  t.regex(error!.message, /no signature for rel rel-1\.tar\.gz could be fetched/);
});
