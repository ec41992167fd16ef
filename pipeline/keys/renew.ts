import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StateFile } from '../bundle/state.js';
import { installCommand, missingTools, toolName, type HostTool } from '../engine/tools.js';
import { run } from '../exec.js';
import { InputError, localFsError, MissingToolError } from '../errors.js';

/**
 * Renewing the signing key of a relay whose ed25519 master key is kept offline
 * (`OfflineMasterKey 1`): on the operator's workstation, tor itself signs a new medium-term
 * key with the master key (`tor --keygen`), and the relay's bundle gets the new key and
 * certificate, everything else as it was. The master secret never enters the bundle.
 */
export const RENEW_TOOLS: readonly HostTool[] = [{ command: 'tor', package: 'tor' }];

export const MASTER_PUBLIC = 'keys/ed25519_master_id_public_key';
export const MASTER_SECRET = 'keys/ed25519_master_id_secret_key';
export const SIGNING_KEY = 'keys/ed25519_signing_secret_key';
export const SIGNING_CERT = 'keys/ed25519_signing_cert';

// tor's key files: a 32-byte tag, NUL-padded, then the key or certificate.
const TAG_BYTES = 32;
const TAGS = {
  public: '== ed25519v1-public: type0 ==',
  secret: '== ed25519v1-secret: type0 ==',
  encrypted: '== Boxed Ed25519 key: master ==',
  cert: '== ed25519v1-cert: type4 ==',
};

function tagOf(data: Buffer): string {
  return data.subarray(0, TAG_BYTES).toString('latin1').replace(/\0+$/, '');
}

/** The ed25519 identity as tor prints it: the master public key in base64, unpadded. */
export function ed25519Identity(publicKeyFile: Buffer, name = MASTER_PUBLIC): string {
  if (publicKeyFile.length !== TAG_BYTES + 32 || tagOf(publicKeyFile) !== TAGS.public) throw new InputError(`${name} is not tor's ed25519 public key file`);
  return publicKeyFile.subarray(TAG_BYTES).toString('base64').replace(/=+$/, '');
}

export interface SigningCert {
  /** When tor stops accepting it (and a relay with an offline master key exits). */
  expires: Date;
  /** The master public key that signed it (extension 4, signed-with-ed25519-key). */
  signedBy: string;
}

/**
 * keys/ed25519_signing_cert (tor's cert-spec, type 4): version 1, type 4, expiration in hours
 * since the epoch (uint32 BE), key type, the certified key (32), extensions, the signature.
 */
export function parseSigningCert(file: Buffer, name = SIGNING_CERT): SigningCert {
  const bad = (why: string) => new InputError(`${name} is not a signing-key certificate: ${why}`);
  if (tagOf(file) !== TAGS.cert) throw bad(`its tag is not "${TAGS.cert}"`);
  const cert = file.subarray(TAG_BYTES);
  if (cert.length < 40 + 64) throw bad('too short');
  if (cert[0] !== 1 || cert[1] !== 4) throw bad(`version ${cert[0]}, type ${cert[1]}, not 1 and 4`);
  const expires = new Date(cert.readUInt32BE(2) * 3600_000);
  let at = 40;
  let signedBy: string | undefined;
  for (let n = cert[39]!; n > 0; n--) {
    if (at + 4 > cert.length - 64) throw bad('an extension runs past the signature');
    const length = cert.readUInt16BE(at);
    const data = cert.subarray(at + 4, at + 4 + length);
    if (cert[at + 2] === 4 && length === 32) signedBy = data.toString('base64').replace(/=+$/, '');
    at += 4 + length;
  }
  if (!signedBy) throw bad('it does not name the key that signed it');
  return { expires, signedBy };
}

/** "2026-12-25 10:00 UTC", as the image's status view writes a certificate's expiry. */
export function expiryText(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export interface MasterKey {
  /** The master secret key file as tor wrote it: plain, or encrypted by `tor --keygen`. */
  file: Buffer;
  /** Where it came from, for messages. */
  source: string;
  /** Asked only when the file is encrypted. */
  passphrase: () => Promise<Buffer>;
}

/** Is this master key file encrypted (tor --keygen with a passphrase)? Anything else is refused. */
function masterKeyEncrypted(master: Pick<MasterKey, 'file' | 'source'>): boolean {
  const tag = tagOf(master.file);
  if (tag === TAGS.encrypted) return true;
  if (tag === TAGS.secret && master.file.length === TAG_BYTES + 64) return false;
  throw new InputError(`${master.source} is not an ed25519 master secret key file of tor's`, {
    hint: 'Name the ed25519_master_id_secret_key (or ed25519_master_id_secret_key_encrypted) that tor made for this relay.',
  });
}

/** Why tor --keygen refused, from its own warnings, said for the operator. */
function keygenRefusal(output: string, encrypted: boolean, source: string): string {
  if (/ does not match /.test(output)) return `it is not the master key of the relay in ${source}; name the master key this relay was made with`;
  if (encrypted && /Unable to read \S+_encrypted/.test(output)) return 'it does not open with that passphrase; check the master key passphrase';
  const warnings = [...output.matchAll(/ \[(?:warn|err)\] (.*)$/gm)].map((m) => m[1]!).filter((w) => !/running Tor as root|Missing identity key/.test(w));
  return warnings.at(-1) ?? 'tor gave no reason';
}

/**
 * The relay's state with a new signing key and certificate, valid for `lifetimeDays`, signed by
 * `master`; every other file as it was. The master key must be the one whose public half the
 * state holds; a state that holds the master secret itself needs no renewal from outside.
 */
export async function renewSigningKey(state: readonly StateFile[], master: MasterKey, lifetimeDays: number, source: string): Promise<{ state: StateFile[]; cert: SigningCert }> {
  if (!Number.isInteger(lifetimeDays) || lifetimeDays < 1 || lifetimeDays > 365) {
    throw new InputError(`--lifetime ${lifetimeDays}: expected whole days from 1 to 365`, { hint: "tor's own default is 30 days." });
  }
  const publicKey = state.find((f) => f.name === MASTER_PUBLIC);
  if (!publicKey) throw new InputError(`${source} has no ${MASTER_PUBLIC}`, { hint: 'Renew from a bundle the relay exported: it holds the master public key.' });
  const identity = ed25519Identity(publicKey.data, `${source}: ${MASTER_PUBLIC}`);
  if (state.some((f) => f.name === MASTER_SECRET)) {
    throw new InputError(`${source} holds ${MASTER_SECRET}: this relay's master key is not offline, and tor on the relay renews its signing key itself`, {
      hint: 'Keep the master key offline: remove it from the state, say OfflineMasterKey 1 in the torrc, and renew with this command.',
    });
  }
  const encrypted = masterKeyEncrypted(master);
  const missing = missingTools(RENEW_TOOLS);
  if (missing.length > 0) throw new MissingToolError(missing.map(toolName), installCommand(missing));

  // The copy of the master secret tor signs with lives in $TMPDIR if set, else in RAM (/dev/shm), never longer than this call.
  const dir = await mkdtemp(join(process.env.TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()), 'tor-ramdisk-renew-'));
  try {
    const keys = join(dir, 'keys');
    await mkdir(keys, { mode: 0o700 });
    await writeFile(join(keys, 'ed25519_master_id_public_key'), publicKey.data, { mode: 0o600 });
    await writeFile(join(keys, encrypted ? 'ed25519_master_id_secret_key_encrypted' : 'ed25519_master_id_secret_key'), master.file, { mode: 0o600 });
    await writeFile(join(dir, 'torrc'), '', { mode: 0o600 });
    // Only this torrc (never the host's /etc/tor/torrc), and the passphrase on standard input, never in argv.
    await run('tor', ['-f', join(dir, 'torrc'), '--defaults-torrc', join(dir, 'torrc'), '--DataDirectory', dir, '--keygen', '--SigningKeyLifetime', `${lifetimeDays} days`, '--passphrase-fd', '0'], {
      input: encrypted ? `${(await master.passphrase()).toString('utf8')}\n` : '',
      timeoutMs: 60_000,
    }).catch((error: Error) => {
      throw new InputError(`tor --keygen could not sign a new signing key with ${master.source}: ${keygenRefusal(error.message, encrypted, source)}`, { cause: error });
    });
    const cert = await readFile(join(keys, 'ed25519_signing_cert'));
    const signingKey = await readFile(join(keys, 'ed25519_signing_secret_key'));
    const parsed = parseSigningCert(cert);
    if (parsed.signedBy !== identity) {
      throw new InputError(`${master.source} is not the master key of the relay in ${source}: it signs as ${parsed.signedBy}, the relay is ${identity}`, {
        hint: 'Name the master key this relay was made with.',
      });
    }
    const renewed = state.map((f) => (f.name === SIGNING_CERT ? { name: f.name, data: cert } : f.name === SIGNING_KEY ? { name: f.name, data: signingKey } : f));
    for (const [name, data] of [[SIGNING_CERT, cert], [SIGNING_KEY, signingKey]] as const) if (!renewed.some((f) => f.name === name)) renewed.push({ name, data });
    return { state: renewed, cert: parsed };
  } catch (error) {
    throw localFsError(error, 'renewing the signing key') ?? error;
  } finally {
    // It held a copy of the master secret.
    await rm(dir, { recursive: true, force: true });
  }
}
