import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCommand, which } from '../engine/tools.js';
import { MissingToolError, SignatureError } from '../errors.js';
import { run } from '../exec.js';
import { projectRoot } from '../paths.js';

export const defaultKeysDir = join(projectRoot, 'configs', 'keys');

/**
 * Binary OpenPGP packets from ASCII armor (RFC 4880 §6.2). gpgv reads binary keyrings only,
 * and the pinned keys stay reviewable as armored text in configs/keys.
 */
export function dearmor(text: string, source: string): Buffer {
  const blocks = [...text.matchAll(/-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n([\s\S]*?)-----END PGP PUBLIC KEY BLOCK-----/g)];
  if (blocks.length === 0) throw new SignatureError(`${source} holds no armored OpenPGP public key block`);
  return Buffer.concat(
    blocks.map((block) => {
      // Armor headers (e.g. "Comment:") end at the first empty line; the CRC line starts with "=".
      const lines = block[1]!.split(/\r?\n/);
      const base64 = lines
        .slice(lines.indexOf('') + 1)
        .filter((line) => line.length > 0 && !line.startsWith('='))
        .join('');
      return Buffer.from(base64, 'base64');
    }),
  );
}

export interface VerifiedSignature {
  fingerprint: string;
}

/**
 * Verifies a detached signature with gpgv against one pinned keyring and nothing else:
 * gpgv makes no trust decisions and reads no keyring it is not given.
 */
export async function verifySignature(
  file: string,
  signatureFile: string,
  keyring: string,
  keysDir: string = defaultKeysDir,
): Promise<VerifiedSignature> {
  return verifyWithKeyring(file, signatureFile, join(keysDir, `${keyring}.asc`), {
    unreadable: 'Pin the signing keys in configs/keys/.',
    refused: 'Nothing was added to the cache. If upstream rotated its key, pin the new key in configs/keys/ after checking it.',
  });
}

/** The same check against an armored keyring file anywhere (the keys a user pinned for a remote stage cache). */
export async function verifyWithKeyring(
  file: string,
  signatureFile: string,
  keyringPath: string,
  hints: { unreadable: string; refused: string },
): Promise<VerifiedSignature> {
  const armored = await readFile(keyringPath, 'utf8').catch((error: Error) => {
    throw new SignatureError(`cannot read pinned keyring ${keyringPath}: ${error.message}`, { hint: hints.unreadable });
  });
  // Without gpgv nothing can be verified: that is a missing tool, not a bad signature.
  if (!which('gpgv')) throw new MissingToolError(['gpgv'], installCommand([{ command: 'gpgv', package: 'gpgv' }]));
  const home = await mkdtemp(join(tmpdir(), 'tor-ramdisk-gpgv-'));
  try {
    const binary = join(home, 'pinned.gpg');
    await writeFile(binary, dearmor(armored, keyringPath));
    let status: string;
    try {
      ({ stdout: status } = await run('gpgv', ['--status-fd', '1', '--keyring', binary, signatureFile, file], { env: { GNUPGHOME: home } }));
    } catch (error) {
      const cause = (error as { cause?: { stdout?: unknown; stderr?: unknown } }).cause;
      const output = `${String(cause?.stdout ?? '')}\n${String(cause?.stderr ?? '')}`;
      const reason = /NO_PUBKEY|No public key/.test(output)
        ? 'it was made by a key that is not pinned'
        : /BADSIG|BAD signature/.test(output)
          ? 'the signature is bad (the file or the signature was altered)'
          : 'gpgv refused it';
      throw new SignatureError(`signature ${signatureFile} does not verify ${file} against keyring ${keyringPath}: ${reason}`, {
        cause: error,
        hint: hints.refused,
      });
    }
    const valid = /^\[GNUPG:\] VALIDSIG ([0-9A-F]{40,64}) /m.exec(status);
    if (!valid) throw new SignatureError(`gpgv accepted ${signatureFile} but reported no VALIDSIG`, { hint: 'Refusing an unexplained success.' });
    return { fingerprint: valid[1]! };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** What gpg runs with when it signs: the user's own keys (GNUPGHOME, else ~/.gnupg), nothing else of the environment. */
export function gpgEnv(): Record<string, string> {
  return process.env.GNUPGHOME ? { GNUPGHOME: process.env.GNUPGHOME } : {};
}
