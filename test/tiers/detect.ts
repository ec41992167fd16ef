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
import { TIERS_FILE, UCLIBC_TIER_STAGES, type Tiers } from './tiers.js';

const tiers: Tiers = { uclibc: {} };
const lines = [
  'test tiers:',
  '  unit, and integration against servers on 127.0.0.1: run',
  '  host toolchain: kernel builds and QEMU boots (x86_64, i686); images built and the ISO booted to the menu (BIOS CD: x86_64, i686; UEFI disk: x86_64); tor unit tests (x86_64): run',
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
await writeFile(TIERS_FILE, `${JSON.stringify(tiers)}\n`);
console.log(lines.join('\n'));
