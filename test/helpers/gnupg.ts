import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A GnuPG home of its own in a temp directory, for keys made for one test run (no passphrase). */
export interface Gnupg {
  home: string;
  gpg(...args: string[]): Promise<{ stdout: string }>;
  /** A new ed25519 signing key for `uid` ("Name <email>"). */
  newKey(uid: string): Promise<void>;
  /** The armored public key of `who`. */
  armored(who: string): Promise<string>;
  close(): Promise<void>;
}

export async function throwawayGnupg(): Promise<Gnupg> {
  const home = await mkdtemp(join(tmpdir(), 'tor-ramdisk-gnupg-'));
  const gpg = (...args: string[]) => execa('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { GNUPGHOME: home } });
  return {
    home,
    gpg,
    newKey: async (uid) => void (await gpg('--quick-gen-key', uid, 'ed25519', 'sign', 'never')),
    armored: async (who) => (await gpg('--armor', '--export', who)).stdout,
    close: async () => void (await execa('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: home }, reject: false })),
  };
}
