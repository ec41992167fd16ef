import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { FetchError, InputError, IntegrityError, SignatureError } from '../errors.js';
import { sha256 } from '../hash.js';
import { compareVersions, getFile, releaseIndex, sourcesIndex, upstreamVersion, type ReleaseIndex, type SourcePackage } from './debian.js';
import { parsePins } from './pins.js';
import { verifySignature } from './signature.js';

export interface BumpOptions {
  pinsPath: string;
  /** Holds `debian-archive.asc` (the archive keys) and the sources' own keyrings. */
  keysDir: string;
  mirror: string;
  /** Tried in order; the first whose signed index lists the version is used. */
  suites: readonly string[];
  allowDowngrade: boolean;
  acceptExpiredIndex: boolean;
  onEvent?: (line: string) => void;
}

export interface BumpResult {
  source: string;
  from: string;
  to: string;
  changed: boolean;
  authenticated?: Authentication;
}

/** How a bumped pin's sha256 was established, recorded beside it in configs/sources.json. */
export interface Authentication {
  debian: { suite: string; indexDate: string; validUntil?: string; expiredAccepted?: true; signedBy: string[] };
  upstream: 'identical to Debian' | 'unreachable at bump time';
  signature?: string;
}

interface RawFile {
  name: string;
  sha256: string;
  urls?: string[];
  mirrors?: unknown[];
  signature?: { urls: string[]; keyring: string };
}

/**
 * Renews one source's pin to a new version. The sha256 comes from Debian's archive: the suite's
 * `InRelease` verified with gpgv against the pinned archive keys, `Sources.gz` checked against
 * the sha256 in it, the file's sha256 read from `Sources` and checked on the file served; the
 * upstream URLs (the pin's, with the new version) must serve the same bytes if they answer,
 * and a source that upstream signs must carry a signature by its pinned keys. The pins are
 * rewritten only when all of it holds.
 */
export async function bump(source: string, version: string, options: BumpOptions): Promise<BumpResult> {
  const say = options.onEvent ?? (() => {});
  const text = await readFile(options.pinsPath, 'utf8').catch((error: Error) => {
    throw new InputError(`cannot read source pins ${options.pinsPath}: ${error.message}`);
  });
  const pins = parsePins(JSON.parse(text), options.pinsPath);
  const data = JSON.parse(text) as { sources: Record<string, { version: string; files: RawFile[]; authenticated?: Authentication }> };
  const pin = pins.get(source);
  if (!pin) throw new InputError(`no pin for source "${source}" in ${options.pinsPath}`, { hint: `Pinned: ${[...pins.keys()].join(', ')}` });
  const from = pin.version;
  const order = compareVersions(version, from);
  if (order === 0) return { source, from, to: version, changed: false };
  if (order < 0 && !options.allowDowngrade) {
    throw new InputError(`${source} ${version} is older than the pinned ${from}: refused`, {
      hint: 'A relay must not go back to a version the Tor network may no longer accept. If you mean it (a bad release withdrawn), pass --allow-downgrade.',
    });
  }
  const raw = data.sources[source]!;
  if (raw.files.length !== 1 || (raw.files[0]!.mirrors ?? []).length > 0) {
    throw new InputError(`${source}: bump renews a source pinned as one file that Debian serves unchanged; ${source}'s pin has ${raw.files.length} file(s) and ${(raw.files[0]!.mirrors ?? []).length} mirror(s) with pins of their own`, {
      hint: `Edit configs/sources.json by hand for ${source}, then run tor-ramdisk fetch ${source}.`,
    });
  }
  const old = raw.files[0]!;
  const renew = (value: string) => value.split(from).join(version);
  if (!old.name.includes(from)) throw new InputError(`${source}: the pinned file name ${old.name} does not contain the version ${from}, so the new one cannot be named`);
  const urls = (old.urls ?? []).map(renew);
  const pool = urls.find((u) => /\/pool\/main\/[^/]+\/[^/]+\/[^/]+$/.test(u));
  if (!pool) throw new InputError(`${source}: no URL of its pin is in Debian's pool (…/pool/main/<x>/<package>/…), so Debian's index cannot vouch for it`);
  const debianPackage = /\/pool\/main\/[^/]+\/([^/]+)\//.exec(pool)![1]!;
  const origName = basename(pool);

  const keyringPath = join(options.keysDir, 'debian-archive.asc');
  let found: { index: ReleaseIndex; entry: SourcePackage } | undefined;
  const looked: string[] = [];
  for (const suite of options.suites) {
    const index = await releaseIndex(options.mirror, suite, keyringPath, { acceptExpired: options.acceptExpiredIndex });
    if (!index) {
      looked.push(`${suite} (no InRelease)`);
      continue;
    }
    say(`${suite}: InRelease of ${index.date} verified (signed by ${index.signedBy.join(', ')})`);
    const entry = (await sourcesIndex(options.mirror, index)).find((p) => p.package === debianPackage && upstreamVersion(p.version) === version && p.files.some((f) => f.name === origName));
    if (entry) {
      found = { index, entry };
      break;
    }
    looked.push(suite);
  }
  if (!found) {
    throw new InputError(`${source} ${version}: no suite of ${options.mirror} lists ${origName} in source package ${debianPackage} (looked in ${looked.join(', ')})`, {
      hint: 'Check the version, or wait until Debian has it; the pins were not changed.',
    });
  }
  const listed = found.entry.files.find((f) => f.name === origName)!;
  const poolUrl = `${options.mirror}/${found.entry.directory}/${origName}`;
  const file = await getFile(poolUrl);
  if (!file) throw new FetchError(`${source} ${version}: ${poolUrl} is 404, though ${found.index.suite}'s signed index lists it (${found.entry.package} ${found.entry.version})`, { hint: 'This mirror does not serve the file; try another with --mirror. The pins were not changed.' });
  const actual = sha256(file);
  if (actual !== listed.sha256) throw new IntegrityError(poolUrl, listed.sha256, actual);
  say(`${origName}: sha256 ${actual} as ${found.index.suite}'s Sources lists it (${found.entry.package} ${found.entry.version})`);

  let upstream: Authentication['upstream'] = 'unreachable at bump time';
  for (const url of urls.filter((u) => u !== pool)) {
    const body = await getFile(url).catch((error: unknown) => {
      say(`${url}: ${(error as Error).message}`);
      return undefined;
    });
    if (!body) continue;
    if (sha256(body) !== actual) throw new IntegrityError(url, actual, sha256(body));
    upstream = 'identical to Debian';
    say(`${url}: the same bytes`);
  }

  let signature: string | undefined;
  if (old.signature) {
    const candidates = [...old.signature.urls.map(renew), ...found.entry.files.filter((f) => f.name === `${origName}.asc`).map((f) => `${options.mirror}/${found.entry.directory}/${f.name}`)];
    const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bump-'));
    try {
      await writeFile(join(work, origName), file);
      for (const url of candidates) {
        const body = await getFile(url).catch(() => undefined);
        if (!body) continue;
        await writeFile(join(work, 'signature.asc'), body);
        signature = (await verifySignature(join(work, origName), join(work, 'signature.asc'), old.signature.keyring, options.keysDir)).fingerprint;
        say(`${url}: signed by ${signature} (configs/keys/${old.signature.keyring}.asc)`);
        break;
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    if (!signature) throw new SignatureError(`${source} ${version}: upstream signs ${source}, and no signature could be fetched from ${candidates.join(', ')}`, { hint: 'The pins were not changed.' });
  }

  const authenticated: Authentication = {
    debian: {
      suite: found.index.suite,
      indexDate: found.index.date,
      ...(found.index.validUntil ? { validUntil: found.index.validUntil } : {}),
      ...(found.index.validUntil && Date.parse(found.index.validUntil) < Date.now() ? { expiredAccepted: true as const } : {}),
      signedBy: found.index.signedBy,
    },
    upstream,
    ...(signature ? { signature } : {}),
  };
  raw.version = version;
  raw.files = [{ ...old, name: renew(old.name), sha256: actual, urls, ...(old.signature ? { signature: { ...old.signature, urls: old.signature.urls.map(renew) } } : {}) }];
  raw.authenticated = authenticated;
  const next = `${JSON.stringify(data, null, 2)}\n`;
  parsePins(JSON.parse(next), options.pinsPath);
  const temp = `${options.pinsPath}.${process.pid}.tmp`;
  await writeFile(temp, next);
  await rename(temp, options.pinsPath);
  return { source, from, to: version, changed: true, authenticated };
}
