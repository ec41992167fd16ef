import { createCipheriv, createDecipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { InputError, TorRamdiskError } from '../errors.js';

/**
 * The relay-state bundle, the same bytes the image writes with bundle-crypt and sha256sum:
 *
 *   "TRDBUN01" | iterations (uint32 BE) | "Salted__" | salt (8) | AES-256-CTR(tar) | HMAC-SHA256
 *
 * key‖iv = PBKDF2-HMAC-SHA256(passphrase, salt, iterations, 48), as `openssl enc -pbkdf2 -md sha256`
 * derives them; macKey = SHA-256(key‖iv‖"tor-ramdisk bundle mac v1"); the HMAC covers every byte
 * before it. Encrypt-then-MAC with the one AEAD-free cipher mode `openssl enc` offers that needs no
 * padding (so `openssl enc -d` opens it too): the image seals and opens without a key ever
 * appearing in a process's argv.
 */
export const MAGIC = Buffer.from('TRDBUN01', 'latin1');
export const DEFAULT_ITERATIONS = 600_000;
/** The bounds the image applies too (bundle.sh's TRD_ITER_MIN, TRD_ITER_MAX, TRD_BUNDLE_MAX): checked before any work. */
export const MIN_ITERATIONS = 100_000;
export const MAX_ITERATIONS = 10_000_000;
export const MAX_BUNDLE_BYTES = 1_048_576;
const SALTED = Buffer.from('Salted__', 'latin1');
const MAC_LABEL = Buffer.from('tor-ramdisk bundle mac v1', 'latin1');
const HEADER = MAGIC.length + 4 + SALTED.length + 8;
const MAC = 32;

export class BundleError extends TorRamdiskError {
  constructor(message: string, hint: string) {
    super('ERR_BUNDLE', 'verification', message, { hint });
  }
}

function keys(passphrase: Buffer, salt: Buffer, iterations: number) {
  const derived = pbkdf2Sync(passphrase, salt, iterations, 48, 'sha256');
  const key = derived.subarray(0, 32);
  const iv = derived.subarray(32, 48);
  const macKey = createHash('sha256').update(key).update(iv).update(MAC_LABEL).digest();
  return { key, iv, macKey };
}

export function seal(plaintext: Buffer, passphrase: Buffer, iterations = DEFAULT_ITERATIONS, salt: Buffer = randomBytes(8)): Buffer {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new InputError(`refusing to seal with ${iterations} PBKDF2 iterations`, { hint: `Use a whole number from ${MIN_ITERATIONS} to ${MAX_ITERATIONS} (the image opens nothing else); the default is ${DEFAULT_ITERATIONS}.` });
  }
  const { key, iv, macKey } = keys(passphrase, salt, iterations);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(iterations);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const body = Buffer.concat([MAGIC, count, SALTED, salt, cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([body, createHmac('sha256', macKey).update(body).digest()]);
}

/** Checks everything before decrypting anything; any doubt is a refusal that says which. */
export function open(bundle: Buffer, passphrase: Buffer, source = 'bundle'): Buffer {
  if (bundle.length < HEADER + MAC + 1 || !bundle.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BundleError(`${source} is not a tor-ramdisk bundle (or is truncated)`, 'Export the state again; nothing was changed.');
  }
  if (!bundle.subarray(12, 20).equals(SALTED)) throw new BundleError(`${source}: malformed header`, 'Export the state again; nothing was changed.');
  if (bundle.length > MAX_BUNDLE_BYTES) throw new BundleError(`${source} is ${bundle.length} bytes, more than a bundle's ${MAX_BUNDLE_BYTES}`, 'This is not a tor-ramdisk bundle; nothing was changed.');
  // Read before anything is authenticated: bounded before it costs any work.
  const iterations = bundle.readUInt32BE(8);
  if (iterations < MIN_ITERATIONS) throw new BundleError(`${source} asks for only ${iterations} PBKDF2 iterations`, `A bundle needs at least ${MIN_ITERATIONS}; this one was not made by tor-ramdisk.`);
  if (iterations > MAX_ITERATIONS) throw new BundleError(`${source} asks for ${iterations} PBKDF2 iterations, more than ${MAX_ITERATIONS}`, 'Refused before any work: a damaged or hostile header.');
  const salt = bundle.subarray(20, 28);
  const { key, iv, macKey } = keys(passphrase, salt, iterations);
  const body = bundle.subarray(0, bundle.length - MAC);
  const expected = createHmac('sha256', macKey).update(body).digest();
  if (!timingSafeEqual(expected, bundle.subarray(bundle.length - MAC))) {
    throw new BundleError(`${source} failed authentication: wrong passphrase, or the file was altered or truncated`, 'Nothing was decrypted or changed.');
  }
  const decipher = createDecipheriv('aes-256-ctr', key, iv);
  return Buffer.concat([decipher.update(body.subarray(HEADER)), decipher.final()]);
}
