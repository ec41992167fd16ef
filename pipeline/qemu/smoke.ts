import type { Arch } from '../config/schema.js';
import { InputError, TorRamdiskError } from '../errors.js';
import { boot, type BootMedium, type BootOptions } from './boot.js';

/** One exchange on the serial console: wait for `expect` (within `timeoutMs`), then type `type`. */
export interface Step {
  expect: RegExp;
  timeoutMs: number;
  type?: string;
}

/** A smoke scenario is data: the medium, the machine, the exchange, and how the guest must end. */
export interface Scenario {
  name: string;
  description: string;
  /** The arches it runs on (default: every arch). */
  arches?: readonly Arch[];
  boot: (iso: string) => BootMedium & { fwCfg?: string[] };
  steps: readonly Step[];
  /** The whole run's limit; the guest is ended after it whatever happens. */
  timeoutMs: number;
}

/** The operator menu, waiting for a choice. */
export const MENU = /10 +Halt \(power off\)\n\n> $/;

/** Halt from the menu: no export, power off. */
const HALT: readonly Step[] = [
  { expect: MENU, timeoutMs: 360_000, type: '10\n' },
  { expect: /export first\? \[y\/N\] $/, timeoutMs: 30_000, type: 'n\n' },
  { expect: /poweroff now\? \[y\/N\] $/, timeoutMs: 30_000, type: 'y\n' },
];

/**
 * Run in the guest's shell once tor has run: every place a log could be, and one verdict line.
 * The DataDirectory and the torrc are the running tor's own (from its command line).
 */
const SILENCE_CHECK = [
  String.raw`p=$(pidof tor) || { echo "SILENCE: tor is not running"; exit; }`,
  String.raw`arg() { tr "\0" "\n" < /proc/$p/cmdline | sed -n "/^$1\$/{n;p;}"; }`,
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

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'menu-bios',
    description: 'the ISO as a CD through BIOS and isolinux, to the operator menu on the serial console; then power off',
    boot: (iso) => ({ image: iso, as: 'cdrom' as const, firmware: 'bios' as const }),
    steps: [{ expect: /boot: $/, timeoutMs: 120_000, type: 'serial\n' }, ...HALT],
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
      ...HALT,
    ],
    timeoutMs: 600_000,
  },
  {
    name: 'menu-uefi',
    description: 'the ISO as a disk (a USB stick) through UEFI, the kernel its own EFI application, to the menu; then power off',
    arches: ['x86_64'],
    // Straight from UEFI the kernel has no command line: fw_cfg tells init which console the menu is on.
    boot: (iso) => ({ image: iso, as: 'disk' as const, firmware: 'uefi' as const, fwCfg: ['name=opt/tor-ramdisk/console,string=ttyS0'] }),
    steps: HALT,
    timeoutMs: 480_000,
  },
];

export interface SmokeResult {
  scenario: string;
  arch: Arch;
  seconds: number;
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

/** Runs one scenario on an ISO; a step that does not come is a failed smoke test, with the transcript. */
export async function runScenario(arch: Arch, iso: string, scenario: Scenario): Promise<SmokeResult> {
  const started = Date.now();
  const guest = await boot({ arch, ...scenario.boot(iso), timeoutMs: scenario.timeoutMs } as BootOptions);
  try {
    for (const step of scenario.steps) {
      await guest.waitFor(step.expect, step.timeoutMs).catch((error: Error) => {
        throw new TorRamdiskError('ERR_SMOKE', 'build', `smoke ${scenario.name} (${arch}) failed: ${error.message}`, { hint: `The image at ${iso} does not do what ${scenario.name} expects: ${scenario.description}.` });
      });
      if (step.type) guest.type(step.type);
    }
    const { exitCode, timedOut } = await guest.exited;
    if (timedOut || exitCode !== 0) {
      throw new TorRamdiskError('ERR_SMOKE', 'build', `smoke ${scenario.name} (${arch}) failed: the guest did not power off (${timedOut ? 'timed out' : `QEMU exit ${exitCode}`}); its output:\n${guest.output().slice(-3000)}`);
    }
    return { scenario: scenario.name, arch, seconds: (Date.now() - started) / 1000, transcript: guest.output() };
  } finally {
    guest.kill();
  }
}
