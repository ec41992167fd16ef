import test from 'ava';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../pipeline/hash.js';
import { DownloadCache } from '../pipeline/sources/cache.js';
import { fetchFile, fetchSources, type FetchOptions } from '../pipeline/sources/fetch.js';
import type { SourcePin } from '../pipeline/sources/pins.js';
import { startServer, type TestServer } from './helpers/http-server.js';

const good = Buffer.from('the real tarball\n'.repeat(4096));
const goodSha = sha256(good);
const evil = Buffer.from('a tampered tarball\n'.repeat(4096));

let server: TestServer;
test.before(async () => {
  server = await startServer();
});
test.after.always(async () => {
  await server?.close();
});

async function freshCache(): Promise<DownloadCache> {
  return new DownloadCache(await mkdtemp(join(tmpdir(), 'tor-ramdisk-fetch-')));
}

function pin(name: string, urls: string[], sha = goodSha): SourcePin {
  return { name, version: '1.0', license: 'MIT', files: [{ name: `${name}-1.0.tar.gz`, sha256: sha, urls, mirrors: [] }] };
}

function options(cache: DownloadCache, extra: Partial<FetchOptions> = {}): FetchOptions {
  return { cache, timeoutMs: 400, backoffMs: 10, attempts: 3, ...extra };
}

test('a good file is verified and stored under its sha256', async (t) => {
  server.route('/good/a.tar.gz', { kind: 'file', body: good });
  const cache = await freshCache();
  const p = pin('a', [server.url('/good/a.tar.gz')]);
  const fetched = await fetchFile(p, p.files[0]!, options(cache));
  t.is(fetched.path, cache.pathOf(goodSha));
  t.is(fetched.origin, server.url('/good/a.tar.gz'));
  t.deepEqual(await readFile(fetched.path), good);
  t.deepEqual(await readdir(cache.tmpDir), [], 'no temporary file is left');
});

test('a cache hit is re-verified, and a corrupted cached file is deleted and fetched again', async (t) => {
  server.route('/hit/b.tar.gz', { kind: 'file', body: good });
  const cache = await freshCache();
  const p = pin('b', [server.url('/hit/b.tar.gz')]);
  await fetchFile(p, p.files[0]!, options(cache));
  const again = await fetchFile(p, p.files[0]!, options(cache));
  t.is(again.origin, 'cache');
  t.is(server.hits('/hit/b.tar.gz'), 1);
  await writeFile(cache.pathOf(goodSha), evil);
  const events: string[] = [];
  const repaired = await fetchFile(p, p.files[0]!, options(cache, { onEvent: (e) => events.push(e) }));
  t.is(repaired.origin, server.url('/hit/b.tar.gz'));
  t.deepEqual(await readFile(cache.pathOf(goodSha)), good);
  t.true(events.some((e) => e.includes('cached copy was corrupt')));
});

test('a wrong sha256 deletes the file and tries the next URL; the error names URL, expected and actual', async (t) => {
  server.route('/bad/c.tar.gz', { kind: 'file', body: evil });
  server.route('/mirror/c.tar.gz', { kind: 'file', body: good });
  const cache = await freshCache();
  const p = pin('c', [server.url('/bad/c.tar.gz'), server.url('/mirror/c.tar.gz')]);
  const events: string[] = [];
  const fetched = await fetchFile(p, p.files[0]!, options(cache, { onEvent: (e) => events.push(e) }));
  t.is(fetched.origin, server.url('/mirror/c.tar.gz'));
  t.is(server.hits('/bad/c.tar.gz'), 1, 'a wrong file is not downloaded again from the same URL');
  const mismatch = events.find((e) => e.includes('sha256 mismatch'))!;
  t.true(mismatch.includes(server.url('/bad/c.tar.gz')));
  t.true(mismatch.includes(goodSha));
  t.true(mismatch.includes(sha256(evil)));
  t.deepEqual(await readdir(cache.dir), [goodSha], 'only the verified file is in the cache');

  const only = pin('c2', [server.url('/bad/c.tar.gz')]);
  const error = await t.throwsAsync(fetchFile(only, only.files[0]!, options(await freshCache())));
  t.regex(error!.message, new RegExp(`sha256 mismatch for ${server.url('/bad/c.tar.gz')}: expected ${goodSha}, got ${sha256(evil)}`));
});

test('a 404 is not retried, and the next URL is tried', async (t) => {
  server.route('/gone/d.tar.gz', { kind: 'status', status: 404 });
  server.route('/mirror/d.tar.gz', { kind: 'file', body: good });
  const cache = await freshCache();
  const p = pin('d', [server.url('/gone/d.tar.gz'), server.url('/mirror/d.tar.gz')]);
  const fetched = await fetchFile(p, p.files[0]!, options(cache));
  t.is(fetched.origin, server.url('/mirror/d.tar.gz'));
  t.is(server.hits('/gone/d.tar.gz'), 1);
});

test('a connection dropped mid-body is retried, and nothing partial enters the cache', async (t) => {
  server.route('/drop/e.tar.gz', { kind: 'drop', body: good, after: 1000 });
  const cache = await freshCache();
  const p = pin('e', [server.url('/drop/e.tar.gz')]);
  const error = await t.throwsAsync(fetchFile(p, p.files[0]!, options(cache)));
  t.is(server.hits('/drop/e.tar.gz'), 3, 'retried up to the attempt limit');
  t.regex(error!.message, /attempt 3 of 3/);
  t.deepEqual(await readdir(cache.tmpDir), []);
  t.deepEqual(await readdir(cache.dir).catch(() => []), []);
});

test('a truncated file (complete response, short body) fails verification and moves on', async (t) => {
  server.route('/short/f.tar.gz', { kind: 'file', body: good.subarray(0, 5000) });
  server.route('/mirror/f.tar.gz', { kind: 'file', body: good });
  const cache = await freshCache();
  const p = pin('f', [server.url('/short/f.tar.gz'), server.url('/mirror/f.tar.gz')]);
  const fetched = await fetchFile(p, p.files[0]!, options(cache));
  t.is(fetched.origin, server.url('/mirror/f.tar.gz'));
  t.deepEqual(await readFile(fetched.path), good);
});

test('a slow server times out, and the retry succeeds', async (t) => {
  server.route('/slow/g.tar.gz', { kind: 'slow', body: good, delayMs: 1500, slowTimes: 1 });
  const cache = await freshCache();
  const p = pin('g', [server.url('/slow/g.tar.gz')]);
  const events: string[] = [];
  const fetched = await fetchFile(p, p.files[0]!, options(cache, { onEvent: (e) => events.push(e) }));
  t.is(server.hits('/slow/g.tar.gz'), 2);
  t.true(events.some((e) => /timed out|ETIMEDOUT/i.test(e) && e.includes('retrying')), events.join('\n'));
  t.is(fetched.sha256, goodSha);
});

test('when every URL fails, the error lists each URL and why; one that served wrong bytes makes it a verification failure', async (t) => {
  server.route('/all/404.tar.gz', { kind: 'status', status: 404 });
  server.route('/all/500.tar.gz', { kind: 'status', status: 500 });
  server.route('/all/bad.tar.gz', { kind: 'file', body: evil });
  const cache = await freshCache();
  const urls = [server.url('/all/404.tar.gz'), server.url('/all/500.tar.gz'), server.url('/all/bad.tar.gz'), 'http://nonexistent.invalid/h.tar.gz'];
  const p = pin('h', urls);
  const error = await t.throwsAsync(fetchFile(p, p.files[0]!, options(cache)));
  const message = error!.message;
  t.regex(message, /could not fetch h h-1\.0\.tar\.gz: no URL served the pinned file/);
  t.true(message.includes(`${urls[0]}: HTTP 404 (attempt 1 of 3)`));
  t.true(message.includes(`${urls[1]}: HTTP 500 (attempt 3 of 3)`), '5xx is retried');
  t.true(message.includes(`${urls[2]}: sha256 mismatch`));
  t.true(message.includes(`${urls[3]}: ENOTFOUND (host unreachable)`));
  t.is((error as unknown as { exitCode: number }).exitCode, 3);
  const network = pin('h2', [urls[0]!, urls[1]!, urls[3]!]);
  const offline = await t.throwsAsync(fetchFile(network, network.files[0]!, options(await freshCache())));
  t.regex(offline!.message, /could not fetch h2 h2-1\.0\.tar\.gz: every URL failed/);
  t.is((offline as unknown as { exitCode: number }).exitCode, 6, 'only the network failed');
});

test('--offline with an empty cache names every missing file', async (t) => {
  const cache = await freshCache();
  const pins = [pin('one', [server.url('/x')]), pin('two', [server.url('/y')], sha256('other'))];
  const error = await t.throwsAsync(fetchSources(pins, options(cache, { offline: true })));
  t.regex(error!.message, /offline, and the download cache lacks 2 file\(s\)/);
  t.true(error!.message.includes(`one one-1.0.tar.gz (sha256 ${goodSha})`));
  t.true(error!.message.includes(`two two-1.0.tar.gz (sha256 ${sha256('other')})`));
  t.is(server.hits('/x') + server.hits('/y'), 0, 'offline never touches the network');
});

test('a repacked mirror carries its own pin and is accepted under it', async (t) => {
  const repack = Buffer.from('the repacked tarball\n');
  server.route('/repack/i.tar.gz', { kind: 'file', body: repack });
  const cache = await freshCache();
  const p: SourcePin = {
    name: 'i',
    version: '1.0',
    license: 'MIT',
    files: [{ name: 'i-1.0.tar.gz', sha256: goodSha, urls: ['http://nonexistent.invalid/i.tar.gz'], mirrors: [{ url: server.url('/repack/i.tar.gz'), sha256: sha256(repack) }] }],
  };
  const fetched = await fetchFile(p, p.files[0]!, options(cache));
  t.is(fetched.sha256, sha256(repack));
  t.is(fetched.path, cache.pathOf(sha256(repack)));
});
