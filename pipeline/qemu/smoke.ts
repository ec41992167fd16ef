import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import type { Arch } from '../config/schema.js';
import { installCommand, missingTools, toolName, type HostTool } from '../engine/tools.js';
import { InputError, MissingToolError, TorRamdiskError } from '../errors.js';
import { MIN_ITERATIONS, open, seal } from '../bundle/format.js';
import { packState, unpackState, type StateFile } from '../bundle/state.js';
import { tarArchive } from '../bundle/ustar.js';
import { ed25519Identity, expiryText, MASTER_PUBLIC, MASTER_SECRET, renewSigningKey, type SigningCert } from '../keys/renew.js';
import { GUEST_NET, startTestnet, TESTNET, TESTNET_TOOLS, type Testnet } from '../testnet/network.js';
import { boot, type BootMedium, type BootOptions } from './boot.js';

/** What the scenarios run: QEMU, UEFI firmware, and the private Tor network's programs. */
export const SMOKE_TOOLS: readonly HostTool[] = [
  { command: 'qemu-system-x86_64', package: 'qemu-system-x86' },
  { command: 'qemu-system-i386', package: 'qemu-system-x86' },
  // UEFI firmware for the x86_64 ISO's UEFI boot (qemu/x86_64.json names the file).
  { file: '/usr/share/ovmf/OVMF.fd', package: 'ovmf' },
  ...TESTNET_TOOLS,
];

/** What a testnet scenario's steps may use once the network runs: its servers and the relay identity. */
export interface Run {
  net: Testnet;
  relay: Relay;
  /** This guest's console so far. */
  output(): string;
}

/**
 * One step: an exchange on the serial console (wait for `expect` within `timeoutMs`, then type
 * `type`), a check on the private Tor network, a fresh VM powered on once the last one has
 * powered off, or a wait until `seconds` after an earlier step's mark (the guest left alone).
 * `mark` names the moment it completes, for the figures.
 */
export type Step =
  | (({ expect: RegExp | ((run: Run) => RegExp); type?: string | ((run: Run) => string) } | { testnet: 'running' | 'circuit' | 'exported' }) & { timeoutMs: number; mark?: string })
  | { powerOn: 'fresh' }
  | { hold: string; seconds: number };

/** A smoke scenario is data: the medium, the machine, the exchange, and how the guest must end. */
export interface Scenario {
  name: string;
  description: string;
  /** The arches it runs on (default: every arch). */
  arches?: readonly Arch[];
  boot: (iso: string, arch: Arch) => BootMedium & { fwCfg?: string[] };
  /** The guest's RAM, if not the machine definition's. */
  memoryMb?: number;
  /** The guest's clock at power on (its RTC), if not now. */
  clock?: string;
  /**
   * The guest joins a private Tor network (pipeline/testnet) on a tap, and a relay identity
   * for this network waits for it, sealed, on the network's FTP server as RELAY_URL; its
   * passphrase reaches the guest through fw_cfg.
   */
  testnet?: boolean;
  /** Files the network's FTP server offers besides the relay's bundle, made for this relay. */
  serves?: (relay: Relay) => Record<string, Buffer> | Promise<Record<string, Buffer>>;
  steps: readonly Step[];
  /** Each guest's limit, from its power on; it is ended after it whatever happens. */
  timeoutMs: number;
}

/**
 * A step that waits on the bundle's PBKDF2 (600 000 iterations to seal; the bundle's own count
 * to open): minutes under software emulation with other guests beside it.
 */
export const PBKDF2_MS = 420_000;

/** The operator menu, waiting for a choice. */
export const MENU = /10 +Halt \(power off\)\n\n> $/;

/** Halt from the menu (its first appearance marked `mark`): no export, power off. */
const halt = (mark?: string): Step[] => [
  { expect: MENU, timeoutMs: 360_000, type: '10\n', mark },
  { expect: /export first\? \[y\/N\] $/, timeoutMs: 30_000, type: 'n\n' },
  { expect: /poweroff now\? \[y\/N\] $/, timeoutMs: 30_000, type: 'y\n' },
];

/** The two exports a testnet scenario makes from the menu, and the file name they land as. */
const EXPORTED = 'smoke-export.trd';
const EXPORTS: readonly Step[] = [
  { expect: MENU, timeoutMs: 30_000, type: '3\n' },
  { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '8\n' },
  { expect: /URL(?: \[[^\]\n]*\])?: $/, timeoutMs: 30_000, type: ({ net }) => `${net.uploads.ftp}/${EXPORTED}\n` },
  { expect: /exported to ftp:[^\n]*\n\n\(Enter\) $/, timeoutMs: PBKDF2_MS, type: '\n' },
  { expect: MENU, timeoutMs: 30_000, type: '3\n' },
  { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '8\n' },
  { expect: /URL(?: \[[^\]\n]*\])?: $/, timeoutMs: 30_000, type: ({ net }) => `${net.uploads.scp}/${EXPORTED}\n` },
  { expect: /host key of [^\n]*: $/, timeoutMs: 30_000, type: ({ net }) => `${net.uploads.hostKey}\n` },
  { expect: /SSH password for [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /exported to scp:[^\n]*\n\n\(Enter\) $/, timeoutMs: PBKDF2_MS, type: '\n' },
  { testnet: 'exported', timeoutMs: 30_000 },
];

/** Import at power on, then tor started: the steps after the boot line. */
const IMPORTED: readonly Step[] = [
  { expect: /imported: the torrc and \d+ key files\n/, timeoutMs: PBKDF2_MS },
  { expect: /tor started \(pid \d+\)\n/, timeoutMs: 120_000 },
];

/** The status view names the relay's own identity: its RSA fingerprint and its ed25519 identity. */
const SAME_IDENTITY: readonly Step[] = [
  { expect: MENU, timeoutMs: 30_000, type: '5\n' },
  { expect: ({ relay }) => new RegExp(`fingerprint: ${relay.fingerprint}\ned25519 identity: ${escapeRegExp(relay.ed25519)}\n`), timeoutMs: 60_000 },
  { expect: /\(Enter\) $/, timeoutMs: 90_000, type: '\n' },
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** In the guest's shell, with tor's pid in $p: `arg OPTION` is the value the running tor was given. */
const TOR_ARG = String.raw`arg() { tr "\0" "\n" < /proc/$p/cmdline | sed -n "/^$1\$/{n;p;}"; }`;

/**
 * Run in the guest's shell once tor has run: every place a log could be, and one verdict line.
 * The DataDirectory and the torrc are the running tor's own (from its command line).
 */
const SILENCE_CHECK = [
  String.raw`p=$(pidof tor) || { echo "SILENCE: tor is not running"; exit; }`,
  TOR_ARG,
  String.raw`s=ok`,
  String.raw`for f in /var/log /dev/log /run/log; do [ -e $f ] && s="$f exists"; done`,
  String.raw`ps -o comm | grep -qE '^(syslogd|klogd|rsyslogd|logd)$' && s="a log daemon runs"`,
  String.raw`[ -n "$(dmesg 2>/dev/null)" ] && s="the kernel log is readable"`,
  String.raw`find "$(arg --DataDirectory)" -iname "*log*" | grep -q . && s="a log in the DataDirectory"`,
  String.raw`grep -qiE '^[[:space:]]*Log[[:space:]]' "$(arg -f)" && s="a Log line in the running torrc"`,
  String.raw`echo "SILENCE: $s"`,
].join('; ');

/** From the menu: a new relay torrc, every question answered with its default but the nickname. */
const NEW_RELAY_TORRC: readonly Step[] = [
  { expect: MENU, timeoutMs: 360_000, type: '3\n' },
  { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '1\n' },
  { expect: /Nickname \(1-19 letters and digits\): $/, timeoutMs: 30_000, type: 'smoke\n' },
  { expect: /ContactInfo [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /ORPort \[\d+\]: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /RelayBandwidthRate [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /\(OfflineMasterKey 1\)\? \[y\/N\] $/, timeoutMs: 30_000, type: 'n\n' },
  { expect: /FamilyId [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /MyFamily [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
  { expect: /MetricsPort [^\n]*\? \[y\/N\] $/, timeoutMs: 30_000, type: 'n\n' },
  { expect: /written to [^\n]*\n\n\(Enter\) $/, timeoutMs: 30_000, type: '\n' },
];

/** The relay identity a testnet scenario imports. */
const RELAY = 'smoke';
const RELAY_URL = `ftp://${TESTNET.authority}/${RELAY}.trd`;

/** In the guest's shell: a digest of the running tor's torrc and keys/, and its pid, on one line. */
const STATE_DIGEST = [
  String.raw`p=$(pidof tor) || { echo "STATE: tor is not running"; exit; }`,
  TOR_ARG,
  String.raw`echo "STATE $(cat "$(arg -f)" "$(arg --DataDirectory)"/keys/* | sha256sum | cut -c1-16), tor pid $p"`,
].join('; ');
const STATE = /STATE ([0-9a-f]{16}), tor pid (\d+)\n/;

/** From the menu to the shell and back: the state digest, first taken or (`same`) the first one again. */
const stateDigest = (same: boolean): Step[] => [
  { expect: MENU, timeoutMs: 30_000, type: '8\n' },
  { expect: /# $/, timeoutMs: 30_000, type: `${STATE_DIGEST}\nexit\n` },
  { expect: same ? ({ output }) => new RegExp(escapeRegExp(STATE.exec(output())![0])) : STATE, timeoutMs: 60_000 },
];

/** The bundles the bad-imports scenario offers besides the relay's own, each to be refused. */
function badBundles(relay: Relay): Record<string, Buffer> {
  const passphrase = Buffer.from(relay.passphrase);
  const good = seal(packState(relay.state), passphrase, MIN_ITERATIONS);
  const corrupted = Buffer.from(good);
  corrupted[corrupted.length >> 1]! ^= 0x40;
  return {
    'wrong-passphrase.trd': seal(packState(relay.state), Buffer.from('not the relay\'s passphrase'), MIN_ITERATIONS),
    'corrupted.trd': corrupted,
    // Sealed with the right passphrase: only the member names are wrong.
    'hostile.trd': seal(tarArchive([{ path: 'torrc', body: 'Nickname hostile\n' }, { path: 'keys/', type: 'dir' }, { path: 'keys/../../../etc/tor/torrc', body: 'ExitRelay 1\n' }]), passphrase, MIN_ITERATIONS),
  };
}

/** A host key that is not the SSH server's. */
const WRONG_HOST_KEY = `SHA256:${createHash('sha256').update('not the testnet SSH server').digest('base64').replace(/=+$/, '')}`;

/** An import from the menu that must be refused with `refusal` on the console. */
const refusedImport = (url: string | ((run: Run) => string), refusal: RegExp, hostKey?: string): Step[] => [
  { expect: MENU, timeoutMs: 30_000, type: '3\n' },
  { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '7\n' },
  { expect: /URL(?: \[[^\]\n]*\])?: $/, timeoutMs: 30_000, type: (run) => `${typeof url === 'string' ? url : url(run)}\n` },
  ...(hostKey
    ? [
        { expect: /host key of [^\n]*: $/, timeoutMs: 30_000, type: `${hostKey}\n` },
        { expect: /SSH password for [^\n]*: $/, timeoutMs: 30_000, type: '\n' },
      ]
    : []),
  { expect: new RegExp(`${refusal.source}[^]*\\(Enter\\) $`), timeoutMs: PBKDF2_MS, type: '\n' },
];

const BAD_IMPORTS: readonly Step[] = [
  ...refusedImport(`ftp://${TESTNET.authority}/wrong-passphrase.trd`, /refused: [^\n]*wrong-passphrase\.trd failed authentication: wrong passphrase/),
  ...refusedImport(`ftp://${TESTNET.authority}/corrupted.trd`, /refused: [^\n]*corrupted\.trd failed authentication/),
  ...refusedImport(({ net }) => `${net.uploads.scp}/${RELAY}.trd`, /scp: REFUSED: [^\n]* presented host key SHA256:\S+, not SHA256:\S+: nothing sent, nothing trusted/, WRONG_HOST_KEY),
  // Nothing listens on that port: the server is not there.
  ...refusedImport(`ftp://${TESTNET.authority}:2121/${RELAY}.trd`, /ftp: no answer from [^\n]* port 2121\n/),
  ...refusedImport(`ftp://${TESTNET.authority}/missing.trd`, /ftp: RETR missing\.trd failed: 550/),
  ...refusedImport(`ftp://${TESTNET.authority}/hostile.trd`, /member "keys\/\.\.\/[^"\n]*" has a "\.\." component\n[^\n]*refused: [^\n]*hostile\.trd holds an archive that is not a tor-ramdisk state/),
];

/**
 * The offline-master-key scenario's bundles, each signed on the host by `tor-ramdisk keys renew`'s
 * code: the relay's state with OfflineMasterKey 1 and no master secret, its certificate valid 2
 * days; and the same with a new signing key valid 30 days. What the guest must show for each.
 */
const OFFLINE = new WeakMap<Relay, { first: SigningCert; renewed: SigningCert }>();
async function offlineBundles(relay: Relay): Promise<Record<string, Buffer>> {
  const master = relay.state.find((f) => f.name === MASTER_SECRET);
  if (!master) throw new Error(`the testnet relay has no ${MASTER_SECRET}`);
  const key = { file: master.data, source: `the testnet relay's ${MASTER_SECRET}`, passphrase: () => Promise.reject(new Error('the testnet master key is not encrypted')) };
  const offline = relay.state
    .filter((f) => f.name !== MASTER_SECRET)
    .map((f) => (f.name === 'torrc' ? { name: f.name, data: Buffer.concat([f.data, Buffer.from('OfflineMasterKey 1\n')]) } : f));
  const first = await renewSigningKey(offline, key, 2, 'offline.trd');
  const renewed = await renewSigningKey(first.state, key, 30, 'offline.trd');
  OFFLINE.set(relay, { first: first.cert, renewed: renewed.cert });
  const passphrase = Buffer.from(relay.passphrase);
  return { 'offline.trd': seal(packState(first.state), passphrase, MIN_ITERATIONS), 'renewed.trd': seal(packState(renewed.state), passphrase, MIN_ITERATIONS) };
}

/**
 * In the guest's shell: is any ed25519 master secret key anywhere in its filesystems? A walk in
 * the shell alone (the image has no `find`), counting what it saw, so a walk that saw nothing
 * cannot pass for one that found nothing.
 */
const MASTER_SEARCH = String.raw`n=0 m=; walk() { local f; for f in "$1"/* "$1"/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] || continue; case $f in /proc|/sys) continue ;; esac; n=$((n + 1)); case $f in */ed25519_master_id_secret_key*) m="$m $f" ;; esac; [ -d "$f" ] && [ ! -L "$f" ] && walk "$f"; done; }; walk ''; [ -n "$m" ] || m=absent; echo "MASTER SECRET: $m among $n files"`;

/** The status view's signing certificate line: `which` certificate's expiry, to the hour. */
const certShown = (which: 'first' | 'renewed'): Step[] => [
  { expect: MENU, timeoutMs: 30_000, type: '5\n' },
  { expect: ({ relay }) => new RegExp(`signing key certificate: ${escapeRegExp(expiryText(OFFLINE.get(relay)![which].expires))}, in ${which === 'first' ? '[12]' : '(29|30)'} days`), timeoutMs: 60_000 },
  { expect: /\(Enter\) $/, timeoutMs: 90_000, type: '\n' },
];

/**
 * In the guest's shell, its clock past 2038-01-19 (where a 32-bit time_t ends): the date and
 * seconds it reads, a clock set to 2040, and tor making a signing key certificate then and
 * printing its expiry (its own time arithmetic, parsing and formatting).
 */
const Y2038_CHECK = [
  String.raw`echo "CLOCK: $(date -u '+%Y-%m-%d') $(date -u +%s)"`,
  String.raw`date -u -s '2040-01-01 00:00:00' >/dev/null && echo "SET: $(date -u '+%Y-%m-%d') $(date -u +%s)"`,
  String.raw`k=$(mktemp -d) && : > $k/torrc && tor -f $k/torrc --defaults-torrc $k/torrc --DataDirectory $k --keygen --no-passphrase --SigningKeyLifetime '30 days' > /dev/null 2>&1`,
  String.raw`tor -f $k/torrc --defaults-torrc $k/torrc --DataDirectory $k --key-expiration sign 2>&1 | grep -- -cert-expiry; rm -rf $k`,
].join('; ');

/**
 * The status screen of the tor that started (pid in the console's "tor started (pid N)"), still
 * running, answering its control port and sandboxed. Uptime is tor's own count of the seconds it
 * worked, which an emulated guest under load reports short: the host's clock, not it, measures
 * the 3 minutes (the hold before this screen).
 */
const STILL_SANDBOXED = ({ output }: Run) => {
  const pid = /tor started \(pid (\d+)\)\n/.exec(output())?.[1] ?? 'none';
  return new RegExp(`tor: running, pid ${pid}\\nversion: \\d+\\.\\d+[^\\n]*\\nup: \\d+ s\\nsandbox: on \\(seccomp\\)\\n`);
};

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'menu-bios',
    description: 'the ISO as a disk (a USB stick) through BIOS, its isohybrid MBR and isolinux, to the operator menu on the serial console; then power off (the other BIOS scenarios boot it as a CD)',
    boot: (iso) => ({ image: iso, as: 'disk' as const, firmware: 'bios' as const }),
    steps: [{ expect: /boot: $/, timeoutMs: 120_000, type: 'serial\n' }, ...halt('menu')],
    timeoutMs: 480_000,
  },
  {
    name: 'silence',
    description: 'start tor from the menu, then look everywhere a log could be: /var/log, /dev/log, a log daemon, the kernel log, the DataDirectory, the running torrc',
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: 'serial\n' },
      ...NEW_RELAY_TORRC,
      { expect: MENU, timeoutMs: 30_000, type: '4\n' },
      { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '1\n' },
      { expect: /tor started \(pid \d+\)\n\n\(Enter\) $/, timeoutMs: 120_000, type: '\n' },
      { expect: MENU, timeoutMs: 30_000, type: '8\n' },
      { expect: /# $/, timeoutMs: 30_000, type: `${SILENCE_CHECK}\nexit\n` },
      { expect: /SILENCE: ok\n/, timeoutMs: 60_000 },
      ...halt(),
    ],
    timeoutMs: 600_000,
  },
  {
    name: 'relay',
    description: `power on with 96 MiB into a private Tor network, nothing typed but the boot line: the relay identity imported over anonymous FTP with the passphrase from fw_cfg, tor started with MaxMemInQueues and DirCache set from the RAM; the relay Running in the consensus, a circuit with it as the middle hop carries a file whose bytes match, and 3 minutes after it started tor is still up in its seccomp sandbox and answers its control port`,
    testnet: true,
    memoryMb: 96,
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: `serial ${GUEST_NET} trd.import=${RELAY_URL} trd.start=1\n` },
      { expect: /imported: the torrc and \d+ key files\n/, timeoutMs: PBKDF2_MS },
      { expect: /tor started \(pid \d+\)\n/, timeoutMs: 120_000, mark: 'tor started' },
      { testnet: 'running', timeoutMs: 420_000, mark: 'Running in the consensus' },
      { testnet: 'circuit', timeoutMs: 180_000, mark: 'circuit through it' },
      // Three minutes of a relay's work in its seccomp sandbox: a system call it does not allow fails (EPERM, tor's default action), and tor exits when it cannot go on.
      { hold: 'tor started', seconds: 180 },
      { expect: MENU, timeoutMs: 30_000, type: '5\n' },
      { expect: STILL_SANDBOXED, timeoutMs: 120_000 },
      { expect: /ORPort reachable: yes\n[^]*MaxMemInQueues: 64 MiB, set from \d+ MiB of RAM\nDirCache: 0, set from \d+ MiB of RAM\n/, timeoutMs: 30_000 },
      { expect: /\(Enter\) $/, timeoutMs: 30_000, type: '\n' },
      ...halt(),
    ],
    timeoutMs: 1_200_000,
  },
  {
    name: 'export',
    description: `power on into the private Tor network's namespace as the relay does, then export from the menu to vsftpd by anonymous FTP and to OpenSSH's sshd by SCP (the host key typed, the guest's SSH key from fw_cfg): both bundles open on the host and hold the torrc and every key imported (RSA identity, ed25519 master, signing key and certificate, family key); then a fresh VM imports the FTP export at power on, another the SCP one, and each shows the relay's RSA fingerprint and ed25519 identity`,
    testnet: true,
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: `serial ${GUEST_NET} trd.import=${RELAY_URL} trd.start=1\n` },
      ...IMPORTED,
      ...EXPORTS,
      ...halt(),
      // The identity round trip: a fresh VM imports the FTP export, another the SCP one.
      { powerOn: 'fresh' },
      { expect: /boot: $/, timeoutMs: 120_000, type: `serial ${GUEST_NET} trd.import=ftp://${TESTNET.authority}/incoming/${EXPORTED} trd.start=1\n` },
      ...IMPORTED,
      ...SAME_IDENTITY,
      ...halt(),
      { powerOn: 'fresh' },
      { expect: /boot: $/, timeoutMs: 120_000, type: ({ net }) => `serial ${GUEST_NET} trd.import=${net.uploads.scp}/${EXPORTED} trd.hostkey=${net.uploads.hostKey} trd.start=1\n` },
      // The guest's SSH key came by fw_cfg: no password.
      { expect: /password for [^\n]*: $/, timeoutMs: 120_000, type: '\n' },
      ...IMPORTED,
      ...SAME_IDENTITY,
      ...halt(),
    ],
    timeoutMs: 1_200_000,
  },
  {
    name: 'bad-imports',
    description: `power on into the private Tor network's namespace with the relay imported and tor running, then import from the menu what must be refused: a bundle sealed with another passphrase, a corrupted one, one from an SSH server whose host key is not the one typed, from a server that is not there, a file that is not there, and a bundle with a member named keys/../../../etc/tor/torrc; each refusal on the console, and after them the torrc, keys/ and tor's pid as they were, and the same identity in the status view`,
    testnet: true,
    serves: badBundles,
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: `serial ${GUEST_NET} trd.import=${RELAY_URL} trd.start=1\n` },
      ...IMPORTED,
      ...stateDigest(false),
      ...BAD_IMPORTS,
      ...stateDigest(true),
      ...SAME_IDENTITY,
      ...halt(),
    ],
    timeoutMs: 1_200_000,
  },
  {
    name: 'offline-key',
    description: `power on into the private Tor network importing a relay whose master key is offline (OfflineMasterKey 1: the signing key and its 2-day certificate, no master secret), tor started: no master secret anywhere in the guest, and the status view shows when the certificate expires; then import from the menu the bundle \`tor-ramdisk keys renew\` made (a new signing key, 30 days), tor stopped only for the swap: the same identity, and the expiry moved`,
    testnet: true,
    serves: offlineBundles,
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: `serial ${GUEST_NET} trd.import=ftp://${TESTNET.authority}/offline.trd trd.start=1\n` },
      ...IMPORTED,
      { expect: MENU, timeoutMs: 30_000, type: '8\n' },
      { expect: /# $/, timeoutMs: 30_000, type: `${MASTER_SEARCH}\nexit\n` },
      { expect: /MASTER SECRET: absent among [1-9]\d{2,} files\n/, timeoutMs: 60_000 },
      ...certShown('first'),
      { expect: MENU, timeoutMs: 30_000, type: '3\n' },
      { expect: / 0 +back\n\n> $/, timeoutMs: 30_000, type: '7\n' },
      { expect: /URL(?: \[[^\]\n]*\])?: $/, timeoutMs: 30_000, type: `ftp://${TESTNET.authority}/renewed.trd\n` },
      { expect: /tor is running: stop it to swap the new state in \(it starts again after\)\? \[y\/N\] $/, timeoutMs: PBKDF2_MS, type: 'y\n' },
      { expect: /imported: the torrc and \d+ key files\n[^]*tor started \(pid \d+\)\n[^]*\(Enter\) $/, timeoutMs: 120_000, type: '\n' },
      ...certShown('renewed'),
      ...SAME_IDENTITY,
      ...halt(),
    ],
    timeoutMs: 1_200_000,
  },
  {
    name: 'unattended',
    description: `power on into the private Tor network with nothing typed at all: the boot settings (${GUEST_NET} trd.import=… trd.start=1), the console and the passphrase through fw_cfg; on x86_64 the ISO as a disk through UEFI (a kernel started by UEFI has no command line), on i686 as a CD through BIOS, isolinux left to boot its default; the identity imported, tor running, the same identity in the status view`,
    testnet: true,
    boot: (iso, arch) => ({
      image: iso,
      ...(arch === 'x86_64' ? { as: 'disk' as const, firmware: 'uefi' as const } : { as: 'cdrom' as const, firmware: 'bios' as const }),
      // QEMU's option syntax: a comma in a value is written twice.
      fwCfg: ['name=opt/tor-ramdisk/console,string=ttyS0', `name=opt/tor-ramdisk/cmdline,string=${`${GUEST_NET} trd.import=${RELAY_URL} trd.start=1`.replaceAll(',', ',,')}`],
    }),
    steps: [
      { expect: /imported: the torrc and \d+ key files\n/, timeoutMs: 360_000 },
      { expect: /tor started \(pid \d+\)\n/, timeoutMs: 120_000, mark: 'tor started' },
      ...SAME_IDENTITY,
      ...halt(),
    ],
    timeoutMs: 900_000,
  },
  {
    name: 'y2038',
    description: 'power on with the clock at 2038-06-01, past the end of a 32-bit time_t: the shell reads the date and the seconds, sets the clock to 2040, and tor makes a signing key certificate and prints its expiry, 2040-01-31',
    clock: '2038-06-01T00:00:00',
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [
      { expect: /boot: $/, timeoutMs: 120_000, type: 'serial\n' },
      { expect: MENU, timeoutMs: 360_000, type: '8\n' },
      { expect: /# $/, timeoutMs: 30_000, type: `${Y2038_CHECK}\nexit\n` },
      { expect: /CLOCK: 2038-06-01 (\d{10})\n/, timeoutMs: 30_000 },
      { expect: /SET: 2040-01-01 22089\d{5}\n/, timeoutMs: 30_000 },
      { expect: /signing-cert-expiry: 2040-01-31 \d\d:\d\d:\d\d/, timeoutMs: 120_000 },
      ...halt(),
    ],
    timeoutMs: 600_000,
  },
  {
    name: 'menu-uefi',
    description: 'the ISO as a disk (a USB stick) through UEFI, the kernel its own EFI application, to the menu; then power off',
    arches: ['x86_64'],
    // Straight from UEFI the kernel has no command line: fw_cfg tells init which console the menu is on.
    boot: (iso) => ({ image: iso, as: 'disk' as const, firmware: 'uefi' as const, fwCfg: ['name=opt/tor-ramdisk/console,string=ttyS0'] }),
    steps: halt('menu'),
    timeoutMs: 480_000,
  },
];

export interface SmokeResult {
  scenario: string;
  arch: Arch;
  seconds: number;
  /** Seconds from power on to each marked step. */
  marks: Record<string, number>;
  transcript: string;
}

/** The scenarios that run on an arch, or the named ones (each must exist and run there). */
export function scenariosFor(arch: Arch, names: readonly string[] = []): Scenario[] {
  for (const name of names) {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (!scenario) throw new InputError(`no smoke scenario "${name}"`, { hint: `Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}` });
    if (scenario.arches && !scenario.arches.includes(arch)) throw new InputError(`smoke scenario ${name} does not run on ${arch} (only ${scenario.arches.join(', ')})`);
  }
  return SCENARIOS.filter((s) => (names.length > 0 ? names.includes(s.name) : !s.arches || s.arches.includes(arch)));
}

/** Exit 5, naming each missing tool, before anything boots. */
function requireSmokeTools(): void {
  const missing = missingTools(SMOKE_TOOLS);
  if (missing.length > 0) throw new MissingToolError(missing.map(toolName), installCommand(missing));
}

/**
 * Each arch's scenarios on its ISO: the arches side by side, each arch's scenarios in turn (a
 * guest spends most of a scenario waiting on the private network or a hold, and the guests of
 * the machine are bounded, `guestSlots`). After a failure no arch starts another scenario; the
 * first failure is thrown once the running ones have ended.
 */
export async function smokeSideBySide(runs: readonly { arch: Arch; iso: string; scenarios: readonly Scenario[] }[], say: (line: string) => void): Promise<SmokeResult[]> {
  let failed = false;
  const settled = await Promise.allSettled(
    runs.map(async ({ arch, iso, scenarios }) => {
      const results: SmokeResult[] = [];
      for (const scenario of scenarios) {
        if (failed) break;
        say(`${arch}: smoke ${scenario.name}: ${scenario.description}`);
        const result = await runScenario(arch, iso, scenario).catch((error: unknown) => {
          failed = true;
          throw error;
        });
        say(`${arch}: smoke ${scenario.name} passed in ${result.seconds.toFixed(0)} s`);
        results.push(result);
      }
      return results;
    }),
  );
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []));
}

/** Runs one scenario on an ISO; a step that does not come is a failed smoke test, with the transcript. */
export async function runScenario(arch: Arch, iso: string, scenario: Scenario): Promise<SmokeResult> {
  const failed = (why: string) =>
    new TorRamdiskError('ERR_SMOKE', 'build', `smoke ${scenario.name} (${arch}) failed: ${why}`, { hint: `The image at ${iso} does not do what ${scenario.name} expects: ${scenario.description}.` });
  requireSmokeTools();
  const testnet = scenario.testnet ? await startTestnet() : undefined;
  try {
    const medium = scenario.boot(iso, arch);
    const fwCfg = [...(medium.fwCfg ?? [])];
    const relay = testnet ? await testnetRelay(testnet, fwCfg) : undefined;
    const started = Date.now();
    const marks: Record<string, number> = {};
    const options = { arch, ...medium, fwCfg, memoryMb: scenario.memoryMb, clock: scenario.clock, network: testnet ? { tap: testnet.namespace } : undefined, timeoutMs: scenario.timeoutMs } as BootOptions;
    for (const [name, data] of Object.entries(testnet && scenario.serves ? await scenario.serves(relay!) : {})) await testnet!.serve(name, data);
    const earlier: string[] = [];
    let guest = await boot(options);
    const run = testnet ? { net: testnet, relay: relay!, output: () => guest.output() } : undefined;
    const poweredOff = async () => {
      const { exitCode, timedOut } = await guest.exited;
      if (timedOut || exitCode !== 0) throw failed(`the guest did not power off (${timedOut ? 'timed out' : `QEMU exit ${exitCode}`}); its output:\n${guest.output().slice(-3000)}`);
    };
    try {
      for (const step of scenario.steps) {
        if ('hold' in step) {
          const since = marks[step.hold];
          if (since === undefined) throw new Error(`smoke ${scenario.name}: a hold on "${step.hold}", which no earlier step marks`);
          await setTimeout(Math.max(0, started + (since + step.seconds) * 1000 - Date.now()));
          continue;
        }
        if ('powerOn' in step) {
          await poweredOff();
          earlier.push(guest.output());
          guest = await boot(options);
          continue;
        }
        if ('testnet' in step) {
          if (step.testnet === 'exported') {
            const problems = await checkExports(testnet!, relay!);
            if (problems.length > 0) throw failed(`the exported bundles: ${problems.join('; ')}`);
            if (step.mark) marks[step.mark] = (Date.now() - started) / 1000;
            continue;
          }
          const check = step.testnet === 'running' ? testnet!.waitForRelay(relay!.fingerprint, step.timeoutMs) : testnet!.fetchThrough(relay!.fingerprint, step.timeoutMs);
          await check.catch(async (error: Error) => {
            // What the relay says of itself, if the menu is there to ask.
            guest.type('5\n');
            await guest.waitFor(/\(Enter\) $/, 20_000).catch(() => undefined);
            throw failed(`${error.message}\nthe testnet's nodes:\n${await testnet!.logs()}\nthe guest's console:\n${guest.output().slice(-3000)}`);
          });
        } else {
          await guest.waitFor(typeof step.expect === 'function' ? step.expect(run!) : step.expect, step.timeoutMs).catch((error: Error) => {
            throw failed(error.message);
          });
          if (step.type) guest.type(typeof step.type === 'string' ? step.type : step.type(run!));
        }
        if (step.mark) marks[step.mark] = (Date.now() - started) / 1000;
      }
      await poweredOff();
      return { scenario: scenario.name, arch, seconds: (Date.now() - started) / 1000, marks, transcript: [...earlier, guest.output()].join('') };
    } finally {
      guest.kill();
    }
  } finally {
    await testnet?.stop();
  }
}

/**
 * `tor-ramdisk testnet`: the private Tor network, and the ISO powered on into it with its serial
 * console on `io` (typed text in, output out); `note` hears how the relay does. Ends when the
 * guest powers off or `io.end` fires.
 */
export async function testnetSession(arch: Arch, iso: string, memoryMb: number | undefined, io: { input: (type: (text: string) => void) => void; output: (text: string) => void; end: Promise<void>; note: (line: string) => void }): Promise<void> {
  requireSmokeTools();
  io.note('starting the private Tor network…');
  const testnet = await startTestnet();
  try {
    const fwCfg: string[] = [];
    const { fingerprint } = await testnetRelay(testnet, fwCfg);
    const line = `serial ${GUEST_NET} trd.import=${RELAY_URL} trd.start=1`;
    io.note(`network namespace ${testnet.namespace.name}; relay ${RELAY} ${fingerprint}; boot line: ${line} (the passphrase comes by fw_cfg; Ctrl-] ends the guest and the network)`);
    io.note(`exports: ${testnet.uploads.ftp}/NAME, or ${testnet.uploads.scp}/NAME with host key ${testnet.uploads.hostKey} (the guest's SSH key comes by fw_cfg)`);
    const guest = await boot({ arch, image: iso, as: 'cdrom', firmware: 'bios', fwCfg, memoryMb, network: { tap: testnet.namespace }, onOutput: io.output, timeoutMs: 24 * 3600_000 });
    await guest.waitFor(/boot: $/, 120_000);
    guest.type(`${line}\n`);
    io.input((text) => guest.type(text));
    const started = Date.now();
    const since = () => `${((Date.now() - started) / 1000).toFixed(0)} s after power on`;
    void testnet
      .waitForRelay(fingerprint, 3600_000)
      .then((flags) => io.note(`the relay is in the consensus (${flags.join(' ')}), ${since()}`))
      .then(() => testnet.fetchThrough(fingerprint, 600_000))
      .then(({ bytes }) => io.note(`a circuit authority → ${RELAY} → exit carried ${bytes} bytes, byte for byte, ${since()}`))
      .catch((error: Error) => io.note(error.message));
    await Promise.race([guest.exited, io.end]);
    guest.kill();
  } finally {
    await testnet.stop();
  }
}

interface Relay {
  fingerprint: string;
  /** The ed25519 identity as tor writes it: the master public key in base64, unpadded. */
  ed25519: string;
  passphrase: string;
  state: StateFile[];
}

/** The relay identity on the testnet's FTP server; its passphrase and the guest's SSH key for fw_cfg. */
async function testnetRelay(testnet: Testnet, fwCfg: string[]): Promise<Relay> {
  const passphrase = randomBytes(24).toString('base64');
  const { fingerprint, url, state } = await testnet.addRelay(RELAY, passphrase);
  if (url !== RELAY_URL) throw new Error(`the testnet serves the relay at ${url}, not ${RELAY_URL}`);
  const file = join(testnet.dir, 'passphrase');
  await writeFile(file, `${passphrase}\n`, { mode: 0o600 });
  fwCfg.push(`name=opt/tor-ramdisk/passphrase,file=${file}`, `name=opt/tor-ramdisk/sshkey,file=${testnet.uploads.clientKey}`);
  const master = state.find((f) => f.name === MASTER_PUBLIC);
  if (!master) throw new Error(`the testnet relay has no ${MASTER_PUBLIC}`);
  return { fingerprint, ed25519: ed25519Identity(master.data), passphrase, state };
}

/**
 * What is wrong with the bundles the guest exported by FTP and by SCP: each must open with the
 * relay's passphrase (as `tor-ramdisk bundle open` opens it) and hold the torrc and every key
 * it imported (RSA identity, ed25519 master, signing key and certificate, family key), byte for byte.
 */
async function checkExports(testnet: Testnet, relay: Relay): Promise<string[]> {
  const problems: string[] = [];
  const arrived = await testnet.exported(EXPORTED);
  for (const via of ['ftp', 'scp'] as const) {
    const bundle = arrived[via];
    if (!bundle) {
      problems.push(`nothing arrived by ${via}`);
      continue;
    }
    const files = await unpackState(open(bundle, Buffer.from(relay.passphrase), `${via} export`), `${via} export`).catch((error: Error) => error);
    if (files instanceof Error) {
      problems.push(`the ${via} export does not open: ${files.message}`);
      continue;
    }
    // tor may have added keys of its own since (say, rotated onion keys): those may come along.
    for (const want of relay.state) {
      const got = files.find((f) => f.name === want.name);
      if (!got) problems.push(`the ${via} export has no ${want.name}`);
      else if (!got.data.equals(want.data)) problems.push(`${want.name} in the ${via} export differs from the imported one`);
    }
  }
  return problems;
}
