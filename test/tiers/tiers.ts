import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../../pipeline/config/schema.js';

/** What `detect` found: the cached uClibc-ng toolchain's output directory per arch. */
export interface Tiers {
  uclibc: Partial<Record<Arch, string>>;
}

export const TIERS_FILE = fileURLToPath(new URL('../../test-tiers.json', import.meta.url));

/** Read synchronously: ava wants every test declared before the first await. */
export function tiers(): Tiers {
  try {
    return JSON.parse(readFileSync(TIERS_FILE, 'utf8')) as Tiers;
  } catch {
    return { uclibc: {} };
  }
}
