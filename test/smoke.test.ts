import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { runScenario, scenariosFor } from '../pipeline/qemu/smoke.js';
import { hostBuild } from './helpers/host-build.js';
import { tiers } from './tiers/tiers.js';

// The smoke scenarios that the image tests do not already cover (they boot to the menu over
// BIOS and UEFI): on the host-toolchain images of both arches, and on the uClibc-ng ISOs
// `tor-ramdisk build` has put in the cache.
async function isoIn(dir: string): Promise<string> {
  return join(dir, (await readdir(dir)).find((f) => f.endsWith('.iso'))!);
}

for (const arch of ARCHES) {
  test(`${arch}: silence — after tor has run there is no log anywhere (host toolchain)`, async (t) => {
    const { dir } = await hostBuild(arch, ['iso']);
    const result = await runScenario(arch, await isoIn(dir('iso')), scenariosFor(arch, ['silence'])[0]!);
    t.regex(result.transcript, /tor started \(pid \d+\)/);
    t.regex(result.transcript, /SILENCE: ok/);
    t.log(`${result.seconds.toFixed(0)} s`);
  });
  const iso = tiers().uclibc[arch]?.iso;
  (iso ? test : test.skip)(`${arch}: silence on the uClibc-ng ISO${iso ? '' : ' (not run: not in the stage cache)'}`, async (t) => {
    const result = await runScenario(arch as Arch, await isoIn(iso!), scenariosFor(arch, ['silence'])[0]!);
    t.regex(result.transcript, /SILENCE: ok/);
    t.log(`${result.seconds.toFixed(0)} s`);
  });
}
