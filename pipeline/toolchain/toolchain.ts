import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Arch, ToolchainVariant } from '../config/schema.js';

/** What the toolchain stage hands every later stage: nothing about compilers comes from elsewhere. */
export interface Toolchain {
  variant: ToolchainVariant;
  arch: Arch;
  /** GNU target triplet, e.g. x86_64-linux-uclibc. */
  target: string;
  /** Tool prefix: `${prefix}gcc`, `${prefix}ld`, … (absolute, or resolved on PATH). */
  prefix: string;
  /** Directory holding `${prefix}gcc` and the rest, put first on PATH (relative: inside the toolchain stage's output). */
  binDir: string;
  /** The target's libraries and headers (relative: inside the toolchain stage's output). */
  sysroot: string;
  /** Flags a package build must pass; empty where the compiler hardens by default. */
  cflags: string[];
  ldflags: string[];
  /** The libc: its FORTIFY support decides what the audit may claim. */
  libc: 'uclibc-ng' | 'glibc';
  /** The kernel's ARCH= for this target. */
  kernelArch: 'x86_64' | 'i386';
}

export const TOOLCHAIN_FILE = 'toolchain.json';

/** The toolchain a stage built, with its paths made absolute (the stage output moves once, on commit). */
export async function readToolchain(dir: string): Promise<Toolchain> {
  const tc = JSON.parse(await readFile(join(dir, TOOLCHAIN_FILE), 'utf8')) as Toolchain;
  return { ...tc, binDir: resolve(dir, tc.binDir), sysroot: resolve(dir, tc.sysroot) };
}

/** The flags the configuration's locked hardening keys ask for, for compilers that do not default to them. */
export function hardeningFlags(config: ResolvedConfig): { cflags: string[]; ldflags: string[] } {
  const cflags = ['-O2', `-fstack-protector-${String(config.get('hardening.stackProtector'))}`];
  const ldflags: string[] = [];
  if (config.get('hardening.pie')) {
    cflags.push('-fPIE');
    ldflags.push('-pie');
  }
  if (config.get('hardening.relro')) ldflags.push('-Wl,-z,relro');
  if (config.get('hardening.bindNow')) ldflags.push('-Wl,-z,now');
  if (config.get('hardening.nxStack')) ldflags.push('-Wl,-z,noexecstack');
  return { cflags, ldflags };
}

/**
 * Environment for a package build: CC and friends from the toolchain, first on a PATH that
 * is otherwise the stage's own (`path`, its declared host tools), and the reproducibility knobs.
 */
export function buildEnv(tc: Toolchain, sourceDateEpoch: number, path: string): Record<string, string> {
  return {
    PATH: `${tc.binDir}:${path}`,
    CC: `${tc.prefix}gcc`,
    AR: `${tc.prefix}ar`,
    RANLIB: `${tc.prefix}ranlib`,
    STRIP: `${tc.prefix}strip`,
    CFLAGS: tc.cflags.join(' '),
    LDFLAGS: tc.ldflags.join(' '),
    SOURCE_DATE_EPOCH: String(sourceDateEpoch),
  };
}
