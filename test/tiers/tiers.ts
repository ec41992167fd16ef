import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../../pipeline/config/schema.js';

/** What `detect` found: per arch, the uClibc-ng stages in the cache (stage → output directory). */
export interface Tiers {
  uclibc: Partial<Record<Arch, Record<string, string>>>;
  /** Debian's archive, when this machine reaches it and can debootstrap from it (as root); else why not. */
  debootstrap?: { mirror: string } | { not: string };
}

/** The uClibc-ng stages the tiered tests use; `detect` looks each one up. */
export const UCLIBC_TIER_STAGES = ['toolchain', 'zlib', 'libevent', 'openssl', 'libseccomp', 'tor', 'iso'] as const;

export const TIERS_FILE = fileURLToPath(new URL('../../test-tiers.json', import.meta.url));

/** Read synchronously: ava wants every test declared before the first await. */
export function tiers(): Tiers {
  try {
    return JSON.parse(readFileSync(TIERS_FILE, 'utf8')) as Tiers;
  } catch {
    return { uclibc: {}, debootstrap: { not: 'the tiers were not detected' } };
  }
}

/** Where a fresh Debian 12 chroot comes from. */
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
