// Runs before the tests (`npm test`): finds which slow tiers can run here and says so.
// The uClibc-ng tier needs the toolchain in the stage cache (most of an hour per arch cold).
import { writeFile } from 'node:fs/promises';
import { loadLayers } from '../../pipeline/config/layers.js';
import { resolveConfig } from '../../pipeline/config/resolve.js';
import { ARCHES } from '../../pipeline/config/schema.js';
import { cacheDirs } from '../../pipeline/context.js';
import { planStages } from '../../pipeline/engine/plan.js';
import { loadPins } from '../../pipeline/sources/pins.js';
import { stages } from '../../pipeline/stages/index.js';
import { TIERS_FILE, type Tiers } from './tiers.js';

const tiers: Tiers = { uclibc: {} };
const lines = ['test tiers:', '  unit, and integration against servers on 127.0.0.1: run', '  host toolchain: kernel builds and QEMU boots for x86_64 and i686, image boot to the menu for x86_64: run; i686 image boot: not run (time budget)'];
for (const arch of ARCHES) {
  const config = resolveConfig(await loadLayers({ arch, profile: 'relay' }));
  const [toolchain] = await planStages(stages, ['toolchain'], config, await loadPins(), cacheDirs().store);
  if (toolchain!.cached) tiers.uclibc[arch] = cacheDirs().store.outDir('toolchain', toolchain!.key);
  lines.push(`  uClibc-ng toolchain, ${arch}: ${toolchain!.cached ? 'run (in the cache)' : `not run: not in the cache (tor-ramdisk build toolchain --arch ${arch})`}`);
}
await writeFile(TIERS_FILE, `${JSON.stringify(tiers)}\n`);
console.log(lines.join('\n'));
