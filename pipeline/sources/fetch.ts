import { copyFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FetchError, IntegrityError, localFsError, SignatureError, TorRamdiskError } from '../errors.js';
import { run } from '../exec.js';
import { sha256File } from '../hash.js';
import type { DownloadCache } from './cache.js';
import { classifyFailure, httpDownloader, type Downloader } from './download.js';
import type { Mirror, SourceFile, SourcePin } from './pins.js';
import { verifySignature } from './signature.js';
import type { HostTool } from '../engine/tools.js';

/** What fetching runs: gpgv for upstream signatures, dpkg-deb and tar for a file shipped inside a Debian package. */
export const FETCH_TOOLS: readonly HostTool[] = [
  { command: 'gpgv', package: 'gpgv' },
  { command: 'sh', package: 'dash' },
  { command: 'dpkg-deb', package: 'dpkg' },
  { command: 'tar', package: 'tar' },
  { command: 'xz', package: 'xz-utils' },
];

export interface FetchOptions {
  cache: DownloadCache;
  downloader?: Downloader;
  /** Use the cache only; never touch the network. */
  offline?: boolean;
  /** Attempts per URL for transient failures (resets, timeouts, 5xx). */
  attempts?: number;
  timeoutMs?: number;
  /** First pause between attempts; doubles each time. */
  backoffMs?: number;
  keysDir?: string;
  signal?: AbortSignal;
  /** Hosts that refused or did not resolve earlier in this run are not asked again. */
  unreachableHosts?: Set<string>;
  onEvent?: (message: string) => void;
}

export interface FetchedFile {
  source: string;
  name: string;
  path: string;
  /** sha256 of the content actually used (a repacked mirror's differs from upstream's). */
  sha256: string;
  /** Where it came from this time: `cache` or the URL. */
  origin: string;
  signedBy?: string;
}

interface Candidate {
  url: string;
  /** sha256 the downloaded bytes must have. */
  sha256: string;
  member?: string;
  /** sha256 of what we keep: the member for a package, else the download itself. */
  contentSha256: string;
  /** Upstream's bytes, so upstream's signature applies. */
  upstream: boolean;
}

function candidates(file: SourceFile): Candidate[] {
  const direct = file.urls.map((url) => ({ url, sha256: file.sha256, contentSha256: file.sha256, upstream: true }));
  const mirrors = file.mirrors.map((mirror: Mirror) => {
    const contentSha256 = mirror.member ? (mirror.memberSha256 ?? file.sha256) : mirror.sha256;
    return {
      url: mirror.url,
      sha256: mirror.sha256,
      contentSha256,
      upstream: contentSha256 === file.sha256,
      ...(mirror.member ? { member: mirror.member } : {}),
    };
  });
  return [...direct, ...mirrors];
}

/** Every content hash a pin accepts, upstream's first. */
export function acceptedHashes(file: SourceFile): string[] {
  return [...new Set(candidates(file).map((c) => c.contentSha256))];
}

export class MissingFromCacheError extends FetchError {}

/** Returns a verified local copy of one pinned file: from the cache if intact, else downloaded. */
export async function fetchFile(pin: SourcePin, file: SourceFile, options: FetchOptions): Promise<FetchedFile> {
  const { cache } = options;
  const say = options.onEvent ?? (() => {});
  const label = `${pin.name} ${file.name}`;
  for (const sha256 of acceptedHashes(file)) {
    const hit = await cache.lookup(sha256);
    if (hit.path) return { source: pin.name, name: file.name, path: hit.path, sha256, origin: 'cache' };
    if (hit.corrupt) say(`${label}: cached copy was corrupt (sha256 ${hit.corrupt}); deleted`);
  }
  // A file inside a package already in the cache (another member of it was fetched) needs no download.
  for (const candidate of candidates(file).filter((c) => c.member)) {
    const pkg = await cache.lookup(candidate.sha256);
    if (!pkg.path) continue;
    const temp = await cache.tempPath(file.name);
    await copyFile(pkg.path, temp);
    try {
      const stored = await admit(pin, file, candidate, temp, options);
      return { source: pin.name, name: file.name, path: stored.path, sha256: candidate.contentSha256, origin: 'cache', ...stored.signed };
    } catch (error) {
      await rm(temp, { force: true });
      if (!isVerificationFailure(error)) throw error;
    }
  }
  if (options.offline) {
    throw new MissingFromCacheError(`${label} (sha256 ${file.sha256}) is not in the download cache ${cache.dir}`, {
      hint: 'Run `tor-ramdisk fetch` with network access first.',
    });
  }

  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 1000;
  const unreachable = options.unreachableHosts ?? new Set<string>();
  const failures: string[] = [];
  let verificationFailures = 0;
  for (const candidate of candidates(file)) {
    const host = new URL(candidate.url).host;
    if (unreachable.has(host)) {
      failures.push(`${candidate.url}: skipped, ${host} was unreachable earlier in this run`);
      continue;
    }
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const temp = await cache.tempPath(file.name);
      try {
        await (options.downloader ?? httpDownloader).download(candidate.url, temp, {
          timeoutMs: options.timeoutMs ?? 30_000,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const stored = await admit(pin, file, candidate, temp, options);
        say(`${label}: verified from ${candidate.url}`);
        return { source: pin.name, name: file.name, path: stored.path, sha256: candidate.contentSha256, origin: candidate.url, ...stored.signed };
      } catch (error) {
        await rm(temp, { force: true });
        if (options.signal?.aborted) throw error;
        // A local fault, a missing tool: final, and not the network's.
        if (error instanceof TorRamdiskError && !isVerificationFailure(error)) throw error;
        const local = localFsError(error, `cannot store ${label}`);
        if (local) throw local;
        if (isVerificationFailure(error)) {
          // A wrong file is not retried from the same URL: it would be wrong again.
          verificationFailures++;
          failures.push(`${candidate.url}: ${(error as Error).message}`);
          say(`${label}: ${(error as Error).message}; trying the next URL`);
          break;
        }
        const failure = classifyFailure(error);
        const more = failure.kind === 'transient' && attempt < attempts;
        failures.push(`${candidate.url}: ${failure.message} (attempt ${attempt} of ${attempts}${more ? ', retrying' : ''})`);
        if (failure.kind === 'unreachable') unreachable.add(host);
        if (!more) break;
        say(`${label}: ${candidate.url}: ${failure.message}; retrying`);
        await sleep(backoffMs * 2 ** (attempt - 1));
      }
    }
  }
  const list = failures.map((f) => `  - ${f}`).join('\n');
  if (verificationFailures > 0) {
    // Someone served bytes that are not the pinned ones: that is a verification failure, whatever the other URLs did.
    throw new TorRamdiskError('ERR_INTEGRITY', 'verification', `could not fetch ${label}: no URL served the pinned file:\n${list}`, {
      hint: 'A wrong sha256 or signature: a changed upstream file, a wrong pin or mirror, or a man-in-the-middle attack. Nothing of it was kept.',
    });
  }
  throw new FetchError(`could not fetch ${label}: every URL failed:\n${list}`, {
    hint: 'Check the network and the URLs in configs/sources.json.',
  });
}

function isVerificationFailure(error: unknown): boolean {
  const code = (error as TorRamdiskError).code;
  return code === 'ERR_INTEGRITY' || code === 'ERR_SIGNATURE';
}

/** Verifies a downloaded file completely, then (and only then) moves it into the cache. */
async function admit(
  pin: SourcePin,
  file: SourceFile,
  candidate: Candidate,
  temp: string,
  options: FetchOptions,
): Promise<{ path: string; signed: { signedBy?: string } }> {
  const { cache } = options;
  const actual = await sha256File(temp);
  if (actual !== candidate.sha256) throw new IntegrityError(candidate.url, candidate.sha256, actual);
  let content = temp;
  if (candidate.member) {
    content = await cache.tempPath(`${file.name}.member`);
    try {
      await extractDebMember(temp, candidate.member, content);
      const memberSha = await sha256File(content);
      if (memberSha !== candidate.contentSha256) throw new IntegrityError(`${candidate.url} member ${candidate.member}`, candidate.contentSha256, memberSha);
    } catch (error) {
      await rm(content, { force: true });
      throw error;
    }
  }
  let signed: { signedBy?: string } = {};
  try {
    if (file.signature && candidate.upstream) signed = { signedBy: await checkSignature(pin, file, content, options) };
  } catch (error) {
    if (content !== temp) await rm(content, { force: true });
    throw error;
  }
  if (content !== temp) {
    // Keep the verified package too, so the member can be taken out again offline.
    await cache.commit(temp, candidate.sha256);
  }
  return { path: await cache.commit(content, candidate.contentSha256), signed };
}

async function extractDebMember(deb: string, member: string, destination: string): Promise<void> {
  const path = member.startsWith('./') ? member : `./${member}`;
  await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2" > "$3"', 'sh', deb, path, destination]);
}

async function checkSignature(pin: SourcePin, file: SourceFile, content: string, options: FetchOptions): Promise<string> {
  const signature = file.signature!;
  const failures: string[] = [];
  for (const url of signature.urls) {
    const temp = await options.cache.tempPath(`${file.name}.sig`);
    try {
      await (options.downloader ?? httpDownloader).download(url, temp, {
        timeoutMs: options.timeoutMs ?? 30_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const { fingerprint } = await verifySignature(content, temp, signature.keyring, options.keysDir);
      return fingerprint;
    } catch (error) {
      if (error instanceof TorRamdiskError) throw error;
      const local = localFsError(error, `cannot store the signature of ${pin.name} ${file.name}`);
      if (local) throw local;
      failures.push(`${url}: ${classifyFailure(error).message}`);
    } finally {
      await rm(temp, { force: true });
    }
  }
  throw new SignatureError(`no signature for ${pin.name} ${file.name} could be fetched:\n${failures.map((f) => `  - ${f}`).join('\n')}`, {
    hint: 'The pin says upstream signs this file; without the signature it is not trusted.',
  });
}

/** Fetches every file of the given pins; offline, names every missing file at once. */
export async function fetchSources(pins: SourcePin[], options: FetchOptions): Promise<FetchedFile[]> {
  await options.cache.sweepStale();
  const unreachableHosts = options.unreachableHosts ?? new Set<string>();
  const fetched: FetchedFile[] = [];
  const missing: string[] = [];
  for (const pin of pins) {
    for (const file of pin.files) {
      try {
        fetched.push(await fetchFile(pin, file, { ...options, unreachableHosts }));
      } catch (error) {
        if (!(error instanceof MissingFromCacheError)) throw error;
        missing.push(`${pin.name} ${file.name} (sha256 ${file.sha256})`);
      }
    }
  }
  if (missing.length > 0) {
    throw new MissingFromCacheError(`offline, and the download cache lacks ${missing.length} file(s):\n${missing.map((m) => `  - ${m}`).join('\n')}`, {
      hint: 'Run `tor-ramdisk fetch` with network access first.',
    });
  }
  return fetched;
}
