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
  const keyringPath = join(keysDir, `${keyring}.asc`);
  const verdict = await gpgv(keyringPath, [signatureFile, file]);
  if ('refused' in verdict) {
    throw new SignatureError(`signature ${signatureFile} does not verify ${file} against keyring ${keyringPath}: ${verdict.why}`, {
      hint: 'Nothing was added to the cache. If upstream rotated its key, pin the new key in configs/keys/ after checking it.',
    });
  }
  return { fingerprint: verdict.valid[0]! };
}

/** Why gpgv refused, in the words every caller reports. */
export type GpgvRefusal = 'not pinned' | 'bad' | 'unsigned' | 'refused';

const REFUSALS: Record<GpgvRefusal, string> = {
  'not pinned': 'it was made by a key that is not pinned',
  bad: 'the signature is bad (the file or the signature was altered)',
  unsigned: 'it carries no signature',
  refused: 'gpgv refused it',
};

/**
 * Runs gpgv with one armored keyring file as its only keys, in a home of its own: the
 * fingerprints of the valid signatures, or why there are none. `args` follow the keyring.
 */
export async function gpgv(keyringPath: string, args: readonly string[]): Promise<{ valid: string[] } | { refused: GpgvRefusal; why: string }> {
  const armored = await readFile(keyringPath, 'utf8').catch((error: Error) => {
    throw new SignatureError(`cannot read pinned keyring ${keyringPath}: ${error.message}`, { hint: 'Name a file of armored OpenPGP public keys.' });
  });
  // Without gpgv nothing can be verified: that is a missing tool, not a bad signature.
  if (!which('gpgv')) throw new MissingToolError(['gpgv'], installCommand([{ command: 'gpgv', package: 'gpgv' }]));
  const home = await mkdtemp(join(tmpdir(), 'tor-ramdisk-gpgv-'));
  try {
    const binary = join(home, 'pinned.gpg');
    await writeFile(binary, dearmor(armored, keyringPath));
    const result = await run('gpgv', ['--status-fd', '1', '--keyring', binary, ...args], { env: { GNUPGHOME: home } }).catch((error: { cause?: { stdout?: unknown; stderr?: unknown } }) => {
      const output = `${String(error.cause?.stdout ?? '')}\n${String(error.cause?.stderr ?? '')}`;
      const refused: GpgvRefusal = /NO_PUBKEY|No public key/.test(output) ? 'not pinned' : /BADSIG|BAD signature/.test(output) ? 'bad' : /NODATA|no signature|not a detached/i.test(output) ? 'unsigned' : 'refused';
      return { refused };
    });
    if ('refused' in result) return { refused: result.refused, why: REFUSALS[result.refused] };
    const valid = [...result.stdout.matchAll(/^\[GNUPG:\] VALIDSIG ([0-9A-F]{40,64}) /gm)].map((m) => m[1]!);
    if (valid.length === 0) throw new SignatureError(`gpgv accepted ${args.join(' ')} but reported no VALIDSIG`, { hint: 'Refusing an unexplained success.' });
    return { valid };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** What gpg runs with when it signs: the user's own keys (GNUPGHOME, else ~/.gnupg), nothing else of the environment. */
export function gpgEnv(): Record<string, string> {
  return process.env.GNUPGHOME ? { GNUPGHOME: process.env.GNUPGHOME } : {};
}
