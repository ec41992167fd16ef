import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { projectRoot } from '../paths.js';

/** A mirror whose file is not upstream's (a repack, or the file inside a package): its own pin. */
export interface Mirror {
  url: string;
  sha256: string;
  /** The file sits inside this archive member of a Debian package (`.deb`). */
  member?: string;
  /** sha256 of the member; defaults to the source file's own sha256 (an unmodified upstream file). */
  memberSha256?: string;
  note?: string;
}

export interface Signature {
  /** Detached OpenPGP signature URLs, tried in order. */
  urls: string[];
  /** Name of the pinned keyring: `configs/keys/<keyring>.asc`. */
  keyring: string;
}

export interface SourceFile {
  name: string;
  sha256: string;
  /** Upstream first, then mirrors serving the identical file. */
  urls: string[];
  mirrors: Mirror[];
  signature?: Signature;
}

export interface SourcePin {
  name: string;
  version: string;
  license: string;
  files: SourceFile[];
}

export type SourcePins = Map<string, SourcePin>;

export const defaultPinsPath = join(projectRoot, 'configs', 'sources.json');

const SHA256 = /^[0-9a-f]{64}$/;

export async function loadPins(path: string = defaultPinsPath): Promise<SourcePins> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read source pins ${path}: ${(error as Error).message}`, { cause: error });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InputError(`source pins ${path} are not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parsePins(data, path);
}

export function parsePins(data: unknown, file: string): SourcePins {
  const root = object(data, file, '(top level)');
  const sources = object(root.sources, file, 'sources');
  const pins: SourcePins = new Map();
  for (const [name, raw] of Object.entries(sources)) {
    const at = `sources.${name}`;
    const entry = object(raw, file, at);
    allowKeys(entry, ['version', 'license', 'files', 'note', 'authenticated'], file, at);
    if (entry.authenticated !== undefined) object(entry.authenticated, file, `${at}.authenticated`);
    const files = array(entry.files, file, `${at}.files`).map((f, i) => parseFile(f, file, `${at}.files[${i}]`));
    if (files.length === 0) throw new InputError(`${file}: ${at}.files is empty: no pin, no build`);
    pins.set(name, { name, version: string(entry.version, file, `${at}.version`), license: string(entry.license, file, `${at}.license`), files });
  }
  return pins;
}

function parseFile(raw: unknown, file: string, at: string): SourceFile {
  const entry = object(raw, file, at);
  allowKeys(entry, ['name', 'sha256', 'urls', 'mirrors', 'signature'], file, at);
  const sha256 = hash(entry.sha256, file, `${at}.sha256`);
  const urls = array(entry.urls ?? [], file, `${at}.urls`).map((u, i) => url(u, file, `${at}.urls[${i}]`));
  const mirrors = array(entry.mirrors ?? [], file, `${at}.mirrors`).map((m, i) => {
    const mat = `${at}.mirrors[${i}]`;
    const mirror = object(m, file, mat);
    allowKeys(mirror, ['url', 'sha256', 'member', 'memberSha256', 'note'], file, mat);
    return {
      url: url(mirror.url, file, `${mat}.url`),
      sha256: hash(mirror.sha256, file, `${mat}.sha256`),
      ...(mirror.member === undefined ? {} : { member: string(mirror.member, file, `${mat}.member`) }),
      ...(mirror.memberSha256 === undefined ? {} : { memberSha256: hash(mirror.memberSha256, file, `${mat}.memberSha256`) }),
      ...(mirror.note === undefined ? {} : { note: string(mirror.note, file, `${mat}.note`) }),
    } satisfies Mirror;
  });
  if (urls.length + mirrors.length === 0) throw new InputError(`${file}: ${at} has no URL to fetch from`);
  let signature: Signature | undefined;
  if (entry.signature !== undefined) {
    const sig = object(entry.signature, file, `${at}.signature`);
    allowKeys(sig, ['urls', 'keyring'], file, `${at}.signature`);
    signature = {
      urls: array(sig.urls, file, `${at}.signature.urls`).map((u, i) => url(u, file, `${at}.signature.urls[${i}]`)),
      keyring: string(sig.keyring, file, `${at}.signature.keyring`),
    };
  }
  return { name: string(entry.name, file, `${at}.name`), sha256, urls, mirrors, ...(signature ? { signature } : {}) };
}

function object(value: unknown, file: string, at: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${file}: ${at} must be an object`);
  return value as Record<string, unknown>;
}

function array(value: unknown, file: string, at: string): unknown[] {
  if (!Array.isArray(value)) throw new InputError(`${file}: ${at} must be an array`);
  return value;
}

function string(value: unknown, file: string, at: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InputError(`${file}: ${at} must be a non-empty string`);
  return value;
}

function hash(value: unknown, file: string, at: string): string {
  const text = string(value, file, at);
  if (!SHA256.test(text)) throw new InputError(`${file}: ${at} must be a lowercase hex sha256 (64 characters), got "${text}"`);
  return text;
}

function url(value: unknown, file: string, at: string): string {
  const text = string(value, file, at);
  if (!/^https?:\/\//.test(text)) throw new InputError(`${file}: ${at} must be an http(s) URL, got "${text}"`);
  return text;
}

function allowKeys(entry: Record<string, unknown>, allowed: string[], file: string, at: string): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) throw new InputError(`${file}: unknown key "${key}" in ${at}`, { hint: `Allowed keys: ${allowed.join(', ')}` });
  }
}
