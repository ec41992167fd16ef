// Runs before the tests (`npm test`): finds which slow tiers can run here and says so.
// The uClibc-ng tier needs its stages in the stage cache (the toolchain alone is most of an
// hour per arch cold): it runs what is there.
import { writeFile } from 'node:fs/promises';
import { loadLayers } from '../../pipeline/config/layers.js';
import { resolveConfig } from '../../pipeline/config/resolve.js';
import { ARCHES } from '../../pipeline/config/schema.js';
import { cacheDirs } from '../../pipeline/context.js';
import { planStages } from '../../pipeline/engine/plan.js';
import { loadPins } from '../../pipeline/sources/pins.js';
import { stages } from '../../pipeline/stages/index.js';
import { which } from '../../pipeline/engine/tools.js';
import { DEBIAN_MIRROR, TIERS_FILE, UCLIBC_TIER_STAGES, type Tiers } from './tiers.js';

/** A fresh bookworm chroot needs root, debootstrap and Debian's archive. */
async function debootstrapTier(): Promise<NonNullable<Tiers['debootstrap']>> {
  if (process.getuid?.() !== 0) return { not: 'not root' };
  if (!which('debootstrap', `${process.env.PATH}:/usr/sbin:/sbin`)) return { not: 'debootstrap is not installed (doctor --tests --install)' };
  const url = `${DEBIAN_MIRROR}/dists/bookworm/InRelease`;
  try {
    const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    return response.ok ? { mirror: DEBIAN_MIRROR } : { not: `${url} answered ${response.status}` };
  } catch (error) {
    return { not: `${url} is out of reach (${(error as Error).message})` };
  }
}

const tiers: Tiers = { uclibc: {}, debootstrap: await debootstrapTier() };
const lines = [
  'test tiers:',
  '  unit, and integration against servers on 127.0.0.1 (HTTP for fetch, docker-registry for the remote stage cache): run',
  '  host toolchain: kernel builds and QEMU boots (x86_64, i686); images built and the ISO booted to the menu (BIOS USB stick: x86_64, i686; UEFI USB stick: x86_64); tor unit tests (x86_64); smoke: silence, and relay in a private Tor network in a network namespace of its own (x86_64, i686), export by FTP and SCP to servers in that namespace (x86_64): run',
];
const store = cacheDirs().store;
for (const arch of ARCHES) {
  const config = resolveConfig(await loadLayers({ arch, profile: 'relay' }));
  const plan = await planStages(stages, [...UCLIBC_TIER_STAGES], config, await loadPins(), store);
  const cached = plan.filter((p) => p.cached && (UCLIBC_TIER_STAGES as readonly string[]).includes(p.stage.name));
  tiers.uclibc[arch] = Object.fromEntries(cached.map((p) => [p.stage.name, store.outDir(p.stage.name, p.key)]));
  const missing = UCLIBC_TIER_STAGES.filter((s) => !cached.some((p) => p.stage.name === s));
  lines.push(
    `  uClibc-ng, ${arch}: ${cached.length > 0 ? `in the cache: ${cached.map((p) => p.stage.name).join(', ')}` : 'nothing in the cache'}` +
      (missing.length > 0 ? `; not run: the tests that need ${missing.join(', ')} (tor-ramdisk build --arch ${arch} puts them there)` : ''),
  );
}
lines.push(`  doctor --install in a fresh debootstrap bookworm chroot: ${'mirror' in tiers.debootstrap! ? 'run' : `not run: ${tiers.debootstrap!.not}`}`);
await writeFile(TIERS_FILE, `${JSON.stringify(tiers)}\n`);
console.log(lines.join('\n'));
