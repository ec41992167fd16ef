import { loadLayers } from '../../pipeline/config/layers.js';
import { resolveConfig } from '../../pipeline/config/resolve.js';
import type { Arch } from '../../pipeline/config/schema.js';
import { cacheDirs } from '../../pipeline/context.js';
import { buildStages, type StageResult } from '../../pipeline/engine/build.js';
import { loadPins } from '../../pipeline/sources/pins.js';
import { stages } from '../../pipeline/stages/index.js';

/**
 * The host-toolchain tier: builds the targets (and what they need) for an arch in the default
 * stage cache, or takes them from it, as `tor-ramdisk build --set toolchain.variant=host` would.
 */
export async function hostBuild(arch: Arch, targets: string[]) {
  const config = resolveConfig(await loadLayers({ arch, profile: 'relay', flags: ['toolchain.variant=host'] }));
  const dirs = cacheDirs();
  const results = await buildStages({ registry: stages, targets, config, pins: await loadPins(), store: dirs.store, downloads: dirs.downloads, renderer: 'silent' });
  const output = (stage: string): StageResult => results.find((r) => r.stage === stage)!;
  return { output, dir: (stage: string) => output(stage).dir, store: dirs.store };
}
