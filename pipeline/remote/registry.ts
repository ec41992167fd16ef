import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import got, { type Method, type Response } from 'got';
import { InputError, localFsError } from '../errors.js';

/** Where a remote cache lives: `oci://HOST[:PORT]/REPOSITORY`. */
export interface RegistryRef {
  url: string;
  host: string;
  repository: string;
  /** `https://HOST`, or `http://` for a loopback host (a registry on this machine), as Docker does. */
  base: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;
// The distribution spec's repository name grammar.
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export function parseRemote(url: string): RegistryRef {
  const match = /^oci:\/\/([^/\s]+)\/(.+)$/.exec(url);
  if (!match || !REPOSITORY.test(match[2]!)) {
    throw new InputError(`remote cache "${url}": expected oci://HOST[:PORT]/REPOSITORY (repository in lower case, e.g. oci://ghcr.io/acme/tor-ramdisk-cache)`);
  }
  const host = match[1]!;
  return { url, host, repository: match[2]!, base: `${LOOPBACK.test(host) ? 'http' : 'https'}://${host}` };
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * The login for a registry host from Docker's client configuration (`$DOCKER_CONFIG/config.json`,
 * else `~/.docker/config.json`), which `docker login`, `podman login` and CI actions write:
 * `auths.<host>.auth` (base64 `user:password`) or `username` and `password`.
 */
export async function dockerCredentials(host: string, configDir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker')): Promise<Credentials | undefined> {
  const path = join(configDir, 'config.json');
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw localFsError(error, 'cannot read the registry credentials') ?? error;
  });
  if (text === undefined) return undefined;
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credHelpers?: Record<string, string>; credsStore?: string };
  try {
    config = JSON.parse(text) as typeof config;
  } catch (error) {
    throw new InputError(`${path} is not JSON: ${(error as Error).message}`, { hint: 'Fix or remove it; it holds registry logins.' });
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => key.replace(/^https?:\/\//, '').replace(/\/.*$/, '') === host)?.[1];
  if (entry?.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new InputError(`${path}: auths.${host}.auth is not base64 of user:password`);
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (entry?.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (config.credHelpers?.[host] || (!entry && config.credsStore)) {
    throw new InputError(`${path}: the login for ${host} is kept by a credential helper, which tor-ramdisk does not run`, {
      hint: `Give the login in auths."${host}".auth in a config.json of its own and point DOCKER_CONFIG at its directory.`,
    });
  }
  return undefined;
}

/** A registry's answer that is not the one asked for, or no answer: the remote cache falls back to building. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A blob whose bytes are not those its digest names: tampered with, or cut short. */
export class BlobMismatchError extends RegistryError {}

export interface Blob {
  digest: string;
  size: number;
}

const TIMEOUT = { lookup: 10_000, connect: 10_000, secureConnect: 10_000, response: 30_000, socket: 60_000 };

/**
 * The part of the OCI distribution API a stage cache needs: manifests by tag, blobs by digest,
 * monolithic uploads. Authenticates as registries ask: anonymous, Basic, or the token flow
 * (`WWW-Authenticate: Bearer realm=…,service=…`), with the Docker client's stored login.
 */
export class Registry {
  private authorization: string | undefined;
  private authorizedFor: 'pull' | 'pull,push' | undefined;

  constructor(
    readonly ref: RegistryRef,
    private readonly credentials: Credentials | undefined,
    private readonly signal?: AbortSignal,
  ) {}

  /** The manifest under a tag, or undefined if there is none. */
  async manifest(tag: string): Promise<{ bytes: Buffer; digest: string } | undefined> {
    const response = await this.request('GET', `manifests/${tag}`, 'pull', { headers: { accept: OCI_MANIFEST } });
    if (response.statusCode === 404) return undefined;
    expectStatus(response, [200], `manifest ${tag}`);
    return { bytes: response.rawBody, digest: `sha256:${createHash('sha256').update(response.rawBody).digest('hex')}` };
  }

  /** Streams a blob into a file and checks it against its digest on the way; a mismatch leaves the caller a file it must not use. */
  async blobTo(blob: Blob, file: string): Promise<void> {
    const path = `${this.ref.base}/v2/${this.ref.repository}/blobs/${blob.digest}`;
    await this.authorize('pull');
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(bytes > blob.size ? new BlobMismatchError(`blob ${blob.digest} is longer than its ${blob.size} bytes`) : null, chunk);
      },
    });
    // Redirects (to a storage bucket) are followed without the registry's credentials.
    const stream = got.stream(path, {
      headers: this.authorization ? { authorization: this.authorization } : {},
      timeout: TIMEOUT,
      retry: { limit: 0 },
      followRedirect: false,
      ...(this.signal ? { signal: this.signal } : {}),
    });
    let target = path;
    const redirected = await new Promise<string | undefined>((resolve, reject) => {
      stream.once('response', (response: Response) => {
        if ([301, 302, 303, 307, 308].includes(response.statusCode) && response.headers.location) resolve(new URL(response.headers.location, path).href);
        else resolve(undefined);
      });
      stream.once('error', reject);
    }).catch((error: unknown) => {
      throw registryFault(error, `blob ${blob.digest}`);
    });
    if (redirected) stream.destroy();
    const body = redirected ? got.stream((target = redirected), { timeout: TIMEOUT, retry: { limit: 0 }, ...(this.signal ? { signal: this.signal } : {}) }) : stream;
    try {
      await pipeline(body, count, createWriteStream(file));
    } catch (error) {
      throw localFsError(error, `cannot write ${file}`) ?? registryFault(error, `blob ${blob.digest} from ${target}`);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== blob.digest || bytes !== blob.size) throw new BlobMismatchError(`blob ${blob.digest} arrived as ${digest} (${bytes} of ${blob.size} bytes): tampered with or cut short`);
  }

  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.request('HEAD', `blobs/${digest}`, 'pull,push');
    return response.statusCode === 200;
  }

  /** Uploads a file as one blob (POST, then PUT with the digest) unless the registry has it. */
  async pushBlob(file: string, blob: Blob): Promise<void> {
    if (await this.hasBlob(blob.digest)) return;
    const start = await this.request('POST', 'blobs/uploads/', 'pull,push');
    expectStatus(start, [202], 'blob upload');
    const location = new URL(String(start.headers.location), `${this.ref.base}/v2/`);
    location.searchParams.set('digest', blob.digest);
    const size = (await stat(file)).size;
    const put = await this.request('PUT', location.href, 'pull,push', {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: () => createReadStream(file),
    });
    expectStatus(put, [201], `blob ${blob.digest}`);
  }

  async putManifest(tag: string, bytes: Buffer): Promise<void> {
    const response = await this.request('PUT', `manifests/${tag}`, 'pull,push', { headers: { 'content-type': OCI_MANIFEST }, body: () => bytes });
    expectStatus(response, [201], `manifest ${tag}`);
  }

  /** One request under the repository (or to an absolute upload URL), authenticated for `actions`; one retry with a fresh token on 401. */
  private async request(
    method: Method,
    path: string,
    actions: 'pull' | 'pull,push',
    options: { headers?: Record<string, string>; body?: () => Buffer | NodeJS.ReadableStream } = {},
  ): Promise<Response<Buffer>> {
    const url = /^https?:/.test(path) ? path : `${this.ref.base}/v2/${this.ref.repository}/${path}`;
    for (let attempt = 0; ; attempt++) {
      await this.authorize(actions, attempt > 0);
      let response: Response<Buffer>;
      try {
        response = await got(url, {
          method,
          headers: { ...options.headers, ...(this.authorization ? { authorization: this.authorization } : {}) },
          ...(options.body ? { body: options.body() as Buffer } : {}),
          responseType: 'buffer',
          throwHttpErrors: false,
          followRedirect: false,
          timeout: TIMEOUT,
          retry: { limit: 0 },
          ...(this.signal ? { signal: this.signal } : {}),
        });
      } catch (error) {
        throw registryFault(error, `${method} ${url}`);
      }
      if (response.statusCode !== 401 || attempt > 0) return response;
    }
  }

  /** Learns how the registry wants to be asked (`GET /v2/`) and gets a token for the repository and actions. */
  private async authorize(actions: 'pull' | 'pull,push', again = false): Promise<void> {
    if (!again && (this.authorizedFor === actions || this.authorizedFor === 'pull,push')) return;
    const ping = await got(`${this.ref.base}/v2/`, { throwHttpErrors: false, timeout: TIMEOUT, retry: { limit: 0 }, ...(this.signal ? { signal: this.signal } : {}) }).catch((error: unknown) => {
      throw registryFault(error, `${this.ref.base}/v2/`);
    });
    this.authorizedFor = actions;
    if (ping.statusCode === 200) {
      this.authorization = undefined;
      return;
    }
    const challenge = String(ping.headers['www-authenticate'] ?? '');
    if (ping.statusCode !== 401 || !challenge) throw new RegistryError(`${this.ref.base}/v2/ answered ${ping.statusCode}; is it an OCI registry?`, ping.statusCode);
    const basic = this.credentials ? `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}` : undefined;
    if (/^basic\b/i.test(challenge)) {
      if (!basic) throw new RegistryError(`${this.ref.host} asks for a login and none is stored for it`, 401);
      this.authorization = basic;
      return;
    }
    const params = Object.fromEntries([...challenge.replace(/^bearer\s+/i, '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!/^bearer\b/i.test(challenge) || !params.realm) throw new RegistryError(`${this.ref.host} asks for an authentication scheme tor-ramdisk does not speak: ${challenge}`, 401);
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${this.ref.repository}:${actions}`);
    const answer = await got(realm.href, {
      headers: basic ? { authorization: basic } : {},
      responseType: 'json',
      throwHttpErrors: false,
      timeout: TIMEOUT,
      retry: { limit: 0 },
      ...(this.signal ? { signal: this.signal } : {}),
    }).catch((error: unknown) => {
      throw registryFault(error, `token ${realm.origin}${realm.pathname}`);
    });
    const body = answer.body as { token?: string; access_token?: string };
    const token = body?.token ?? body?.access_token;
    if (answer.statusCode !== 200 || !token) throw new RegistryError(`the token service ${realm.origin}${realm.pathname} refused ${basic ? `the login of ${this.credentials!.username}` : 'an anonymous request'} (${answer.statusCode})`, answer.statusCode);
    this.authorization = `Bearer ${token}`;
  }
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function expectStatus(response: Response<Buffer>, statuses: number[], what: string): void {
  if (statuses.includes(response.statusCode)) return;
  const detail = response.rawBody?.toString('utf8').slice(0, 200).trim();
  throw new RegistryError(`${what}: the registry answered ${response.statusCode}${detail ? ` (${detail})` : ''}`, response.statusCode);
}

function registryFault(error: unknown, what: string): Error {
  if (error instanceof RegistryError) return error;
  const err = error as { code?: string; message?: string };
  return new RegistryError(`${what}: ${err.code ?? 'error'}: ${err.message ?? String(error)}`, undefined, { cause: error });
}
