/** Every configuration key, its type, and what it means. A key not listed here is an error. */
export type KeyType =
  | { kind: 'boolean' }
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] };

export interface KeySpec {
  type: KeyType;
  description: string;
}

export type ConfigValue = boolean | number | string;

export const ARCHES = ['x86_64', 'i686'] as const;
export type Arch = (typeof ARCHES)[number];
export const PROFILES = ['relay', 'bridge', 'exit'] as const;
export type Profile = (typeof PROFILES)[number];
export const TOOLCHAIN_VARIANTS = ['uclibc', 'host', 'external'] as const;
export type ToolchainVariant = (typeof TOOLCHAIN_VARIANTS)[number];

export const configSchema: Record<string, KeySpec> = {
  arch: { type: { kind: 'enum', values: ARCHES }, description: 'target architecture' },
  profile: { type: { kind: 'enum', values: PROFILES }, description: 'what the relay is: relay, bridge or exit' },
  'toolchain.variant': {
    type: { kind: 'enum', values: TOOLCHAIN_VARIANTS },
    description: 'uclibc (built from pinned sources; releases), host (Debian gcc; CI), external (prebuilt)',
  },
  'toolchain.external.path': { type: { kind: 'string' }, description: 'external toolchain: directory holding bin/<prefix>gcc' },
  'toolchain.external.prefix': { type: { kind: 'string' }, description: 'external toolchain: tool prefix, e.g. x86_64-linux-uclibc-' },
  'hardening.pie': { type: { kind: 'boolean' }, description: 'position-independent executables' },
  'hardening.stackProtector': { type: { kind: 'enum', values: ['strong', 'all'] }, description: 'gcc -fstack-protector-<level>' },
  'hardening.relro': { type: { kind: 'boolean' }, description: 'link with -z relro' },
  'hardening.bindNow': { type: { kind: 'boolean' }, description: 'link with -z now (full RELRO)' },
  'hardening.nxStack': { type: { kind: 'boolean' }, description: 'link with -z noexecstack' },
  'logging.kernel': { type: { kind: 'boolean' }, description: 'kernel log (printk); off in every release image' },
  'logging.userland': { type: { kind: 'boolean' }, description: 'syslog daemons and log files; off in every image' },
  'kernel.modules': { type: { kind: 'boolean' }, description: 'loadable kernel modules' },
  'kernel.compression': { type: { kind: 'enum', values: ['xz', 'gzip'] }, description: 'bzImage and initramfs compression' },
  'remote.url': { type: { kind: 'string' }, description: 'shared stage cache in an OCI registry, oci://HOST[:PORT]/REPOSITORY; empty: none' },
  'remote.trust': {
    type: { kind: 'enum', values: ['signed', 'none'] },
    description: 'signed: use a remote entry only if a key in remote.keyring signed it; none: use entries unchecked (never for images you ship)',
  },
  'remote.keyring': { type: { kind: 'string' }, description: 'armored OpenPGP public keys whose signatures on remote entries are trusted' },
  'remote.signKey': { type: { kind: 'string' }, description: 'gpg key that signs what this build pushes; empty: pull only' },
  'build.sourceDateEpoch': { type: { kind: 'integer', min: 0, max: 4_102_444_800 }, description: 'SOURCE_DATE_EPOCH: the one timestamp every output carries' },
};

export function describeType(type: KeyType): string {
  switch (type.kind) {
    case 'boolean':
      return 'true or false';
    case 'integer':
      return `an integer from ${type.min} to ${type.max}`;
    case 'string':
      return 'a string';
    case 'enum':
      return `one of ${type.values.join(', ')}`;
  }
}

export function checkType(type: KeyType, value: unknown): value is ConfigValue {
  switch (type.kind) {
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value) && (value as number) >= type.min && (value as number) <= type.max;
    case 'string':
      return typeof value === 'string';
    case 'enum':
      return typeof value === 'string' && type.values.includes(value);
  }
}

/** Reads a command-line `--set key=value` value in the key's type. */
export function parseFlagValue(type: KeyType, text: string): unknown {
  switch (type.kind) {
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'integer':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    default:
      return text;
  }
}
