import test from 'ava';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { planStages } from '../pipeline/engine/plan.js';
import { stageFiles } from '../pipeline/engine/stage.js';
import { StageStore } from '../pipeline/engine/store.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { IMAGE_TARGETS, stages } from '../pipeline/stages/index.js';

// The real pipeline's graph, keys only (nothing is built): which stages a change reaches.
async function keys(change: (pins: Awaited<ReturnType<typeof loadPins>>) => void, flags: string[] = []) {
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: ['toolchain.variant=host', ...flags] }));
  const pins = await loadPins();
  change(pins);
  const store = new StageStore(await mkdtemp(join(tmpdir(), 'tor-ramdisk-graph-')));
  return Object.fromEntries((await planStages(stages, [...IMAGE_TARGETS], config, pins, store)).map((p) => [p.stage.name, p.key]));
}

function changed(a: Record<string, string>, b: Record<string, string>): string[] {
  return Object.keys(a).filter((name) => a[name] !== b[name]).sort();
}

test('an openssl pin change rebuilds openssl, tor (which links it) and the images; nothing else', async (t) => {
  const before = await keys(() => {});
  const after = await keys((pins) => {
    const openssl = pins.get('openssl')!;
    pins.set('openssl', { ...openssl, version: `${openssl.version}-next` });
  });
  t.deepEqual(changed(before, after), ['initramfs', 'iso', 'kernel-embedded', 'openssl', 'tor']);
});

test("the toolchain variant reaches every stage's key", async (t) => {
  const host = await keys(() => {});
  const uclibc = await keys(() => {}, ['toolchain.variant=uclibc']);
  t.deepEqual(changed(host, uclibc), Object.keys(host).sort());
});

test('a file under initramfs/ is read by the initramfs stage alone, and reaches only the images built on it', async (t) => {
  for (const arch of ['x86_64', 'i686'] as const) {
    const config = resolveConfig(await loadLayers({ arch, profile: 'relay' }));
    const readers = stages.filter((s) => stageFiles(s, config).some((f) => f === 'initramfs' || f.startsWith('initramfs/'))).map((s) => s.name);
    t.deepEqual(readers, ['initramfs']);
  }
  const reached = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of stages) {
      if (!reached.has(s.name) && (s.deps ?? []).some((d) => d === 'initramfs' || reached.has(d))) grew = Boolean(reached.add(s.name));
    }
  }
  t.deepEqual([...reached].sort(), ['iso', 'kernel-embedded']);
});

test('a kernel fragment of one arch reaches only that arch\'s kernel', async (t) => {
  for (const [arch, other] of [['x86_64', 'i686'], ['i686', 'x86_64']] as const) {
    const config = resolveConfig(await loadLayers({ arch, profile: 'relay' }));
    const files = stages.flatMap((s) => stageFiles(s, config));
    t.true(files.includes(`kernel/arch-${arch}.config`));
    t.false(files.includes(`kernel/arch-${other}.config`));
  }
});
