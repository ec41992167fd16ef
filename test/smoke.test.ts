import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { runScenario, scenariosFor } from '../pipeline/qemu/smoke.js';
import { hostBuild } from './helpers/host-build.js';
import { tiers } from './tiers/tiers.js';

// The smoke scenarios that the image tests do not already cover (they boot to the menu over
// BIOS and UEFI): on the host-toolchain images of both arches, and on the uClibc-ng ISOs
// `tor-ramdisk build` has put in the cache. `relay` joins a private Tor network of its own
// in a network namespace with no way out (pipeline/testnet).
async function isoIn(dir: string): Promise<string> {
  return join(dir, (await readdir(dir)).find((f) => f.endsWith('.iso'))!);
}

/** What each scenario's transcript must show besides its own steps. */
const SHOWS: Record<string, RegExp[]> = {
  silence: [/tor started \(pid \d+\)/, /SILENCE: ok/],
  relay: [/imported: the torrc and 8 key files/, /ORPort reachable: yes/, /MaxMemInQueues: 64 MiB, set from \d+ MiB of RAM/],
  'bad-imports': [/failed authentication: wrong passphrase/, /REFUSED: [^\n]* presented host key/, /has a "\.\." component/],
  'offline-key': [/MASTER SECRET: absent/, /signing key certificate: [^\n]*, in [12] days[^]*signing key certificate: [^\n]*, in (29|30) days/],
  unattended: [/imported: the torrc and 8 key files/, /fingerprint: [0-9A-F]{40}\ned25519 identity: [A-Za-z0-9+/]{43}\n/],
  export: [/exported to ftp:/, /exported to scp:/, /ed25519 identity: [A-Za-z0-9+/]{43}\n[^]*ed25519 identity: [A-Za-z0-9+/]{43}\n/],
  y2038: [/CLOCK: 2038-06-01 \d{10}\n/, /signing-cert-expiry: 2040-01-31/],
};

/** npm test runs these on x86_64 only (CI's budget); `tor-ramdisk smoke` runs them on every arch. */
const X86_64_ONLY = new Set(['bad-imports', 'export', 'offline-key', 'unattended']);
/**
 * Only on the uClibc-ng images: the host toolchain's i686 images have Debian's glibc with a
 * 32-bit time_t, which ends in 2038 (what the scenario shows of the uClibc-ng ones), and on
 * x86_64 the host images have nothing to show there.
 */
const UCLIBC_ONLY = new Set(['y2038']);

for (const arch of ARCHES) {
  for (const name of Object.keys(SHOWS)) {
    if (arch !== 'x86_64' && X86_64_ONLY.has(name)) continue;
    const [scenario] = scenariosFor(arch, [name]);
    if (!UCLIBC_ONLY.has(name)) test(`${arch}: ${name} (host toolchain)`, async (t) => {
      const { dir } = await hostBuild(arch, ['iso']);
      const result = await runScenario(arch, await isoIn(dir('iso')), scenario!);
      for (const shown of SHOWS[name]!) t.regex(result.transcript, shown);
      t.log(`${result.seconds.toFixed(0)} s`, JSON.stringify(result.marks));
    });
    const iso = tiers().uclibc[arch]?.iso;
    (iso ? test : test.skip)(`${arch}: ${name} on the uClibc-ng ISO${iso ? '' : ' (not run: not in the stage cache)'}`, async (t) => {
      const result = await runScenario(arch as Arch, await isoIn(iso!), scenario!);
      for (const shown of SHOWS[name]!) t.regex(result.transcript, shown);
      t.log(`${result.seconds.toFixed(0)} s`, JSON.stringify(result.marks));
    });
  }
}
