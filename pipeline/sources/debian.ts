import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import got from 'got';
import { FetchError, IntegrityError, SignatureError } from '../errors.js';
import { sha256 } from '../hash.js';
import { gpgv } from './signature.js';

export const DEBIAN_ARCHIVE = 'https://deb.debian.org/debian';

/** A suite's index as its signed `InRelease` vouches for it. */
export interface ReleaseIndex {
  suite: string;
  /** The index's `Date:`. */
  date: string;
  validUntil?: string;
  /** Fingerprints of the pinned keys whose signatures verified. */
  signedBy: string[];
  /** `SHA256:` section: path → sha256 and size. */
  files: Map<string, { sha256: string; size: number }>;
}

/** One source package paragraph of `Sources`. */
export interface SourcePackage {
  package: string;
  version: string;
  directory: string;
  files: { name: string; sha256: string; size: number }[];
}

/** GET a URL into memory; 404 is `undefined`, any other failure is the network's. */
export async function getFile(url: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const response = await got(url, {
    responseType: 'buffer',
    throwHttpErrors: false,
    timeout: { lookup: 15_000, connect: 15_000, response: 30_000, socket: 60_000 },
    retry: { limit: 2 },
    ...(signal ? { signal } : {}),
  }).catch((error: { code?: string; message?: string }) => {
    throw new FetchError(`${url}: ${error.code ?? 'error'}: ${error.message ?? String(error)}`, { hint: 'Check the network, or name another mirror with --mirror.' });
  });
  if (response.statusCode === 404 || response.statusCode === 410) return undefined;
  if (response.statusCode !== 200) throw new FetchError(`${url}: HTTP ${response.statusCode}`, { hint: 'Try again later, or name another mirror with --mirror.' });
  return response.rawBody;
}

/**
 * Fetches `dists/<suite>/InRelease` and verifies its inline signature with gpgv against the
 * pinned archive keys and nothing else; an index whose `Valid-Until` has passed is refused
 * (a replayed old index would hide a newer version) unless the caller accepts it.
 */
export async function releaseIndex(mirror: string, suite: string, keyringPath: string, options: { acceptExpired: boolean; now?: Date }): Promise<ReleaseIndex | undefined> {
  const url = `${mirror}/dists/${suite}/InRelease`;
  const signed = await getFile(url);
  if (!signed) return undefined;
  const home = await mkdtemp(join(tmpdir(), 'tor-ramdisk-archive-'));
  let text: string;
  let signedBy: string[];
  try {
    await writeFile(join(home, 'InRelease'), signed);
    const verdict = await gpgv(keyringPath, ['--output', join(home, 'Release'), join(home, 'InRelease')]);
    if ('refused' in verdict) {
      throw new SignatureError(`${url} does not verify against ${keyringPath}: ${verdict.refused === 'bad' ? 'its signature is bad (the index was altered)' : verdict.refused === 'not pinned' ? 'it is signed by a key that is not pinned' : verdict.why}`, {
        hint: 'The pins were not changed. If Debian rotated its archive key, pin the new one in configs/keys/debian-archive.asc from debian-archive-keyring.',
      });
    }
    signedBy = verdict.valid;
    // What gpgv wrote is what the signature covers; the text around the signature block is not trusted.
    text = await readFile(join(home, 'Release'), 'utf8');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
  const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(text)?.[1]?.trim();
  const date = field('Date');
  if (!date) throw new SignatureError(`${url}: the signed index has no Date field`, { hint: 'Not a Debian Release file.' });
  const validUntil = field('Valid-Until');
  if (validUntil && Date.parse(validUntil) < (options.now ?? new Date()).getTime() && !options.acceptExpired) {
    throw new SignatureError(`${url}: the index expired on ${validUntil} (dated ${date}): a mirror serving an old index could hide a newer version`, {
      hint: 'Use a current mirror (--mirror), or, knowing the mirror is a frozen copy, --accept-expired-index (recorded in the pin).',
    });
  }
  const files = new Map<string, { sha256: string; size: number }>();
  const section = /^SHA256:\n((?: .+\n?)+)/m.exec(text)?.[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^ ([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(line);
    if (m) files.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  return { suite, date, ...(validUntil ? { validUntil } : {}), signedBy, files };
}

/** `main/source/Sources.gz` of a verified index, checked against the sha256 the index gives it. */
export async function sourcesIndex(mirror: string, index: ReleaseIndex): Promise<SourcePackage[]> {
  const path = 'main/source/Sources.gz';
  const expected = index.files.get(path);
  if (!expected) throw new SignatureError(`${mirror}/dists/${index.suite}/InRelease lists no ${path}`, { hint: 'Not a Debian archive index.' });
  const url = `${mirror}/dists/${index.suite}/${path}`;
  const compressed = await getFile(url);
  if (!compressed) throw new FetchError(`${url}: HTTP 404, though the signed index lists it`, { hint: 'The mirror is incomplete; name another with --mirror.' });
  const actual = sha256(compressed);
  if (actual !== expected.sha256) throw new IntegrityError(url, expected.sha256, actual);
  return parseSources(gunzipSync(compressed).toString('utf8'));
}

export function parseSources(text: string): SourcePackage[] {
  const packages: SourcePackage[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const line of paragraph.split('\n')) {
      if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      else {
        const m = /^([\w-]+):\s*(.*)$/.exec(line);
        if (m) fields.set((last = m[1]!), m[2]!);
      }
    }
    const name = fields.get('Package');
    if (!name) continue;
    const files = (fields.get('Checksums-Sha256') ?? '')
      .split('\n')
      .map((l) => /^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(l.trim()))
      .filter((m) => m !== null)
      .map((m) => ({ sha256: m[1]!, size: Number(m[2]), name: m[3]! }));
    packages.push({ package: name, version: fields.get('Version') ?? '', directory: fields.get('Directory') ?? '', files });
  }
  return packages;
}

/** The upstream part of a Debian version: no epoch, no Debian revision. */
export function upstreamVersion(debian: string): string {
  return debian.replace(/^\d+:/, '').replace(/-[^-]+$/, '');
}

/**
 * Orders two upstream versions as dpkg does: runs of non-digits compared character by
 * character (letters before other characters, `~` before everything, even the end), runs of
 * digits compared as numbers.
 */
export function compareVersions(a: string, b: string): number {
  const order = (c: string | undefined) => (c === undefined ? 0 : c === '~' ? -1 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ca = i < a.length && !/\d/.test(a[i]!) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]!) ? b[j] : undefined;
      if (order(ca) !== order(cb)) return order(ca) - order(cb);
      i++;
      j++;
    }
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const diff = Number(na || '0') - Number(nb || '0');
    if (diff !== 0) return diff;
  }
  return 0;
}
