import test from 'ava';
import { join } from 'node:path';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { ARCHES } from '../pipeline/config/schema.js';
import { checkFragments, configValues, mergeFragments, parseKconfig, readFragment } from '../pipeline/kconfig/fragment.js';
import { hardwareReport, parseHardwareList, readHardwareList } from '../pipeline/kconfig/hardware.js';
import { KERNEL_FRAGMENTS_DIR, kernelFragmentNames } from '../pipeline/stages/kernel.js';

test('a fragment says on with =y and off with "is not set"', (t) => {
  const fragment = parseKconfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="text"\nCONFIG_D=100\n', 'f.config');
  t.deepEqual(
    fragment.settings.map((s) => [s.symbol, s.value]),
    [
      ['CONFIG_A', 'y'],
      ['CONFIG_B', 'n'],
      ['CONFIG_C', '"text"'],
      ['CONFIG_D', '100'],
    ],
  );
});

test('CONFIG_X=n is refused, naming the file and line', (t) => {
  const error = t.throws(() => parseKconfig('CONFIG_A=y\nCONFIG_B=n\n', 'kernel/base.config'));
  t.regex(error!.message, /kernel\/base\.config:2: CONFIG_B=n is not how Kconfig says "off"/);
});

test('fragments merge in order onto a base config; the last one wins', (t) => {
  const base = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_KEEP=y\n';
  const merged = mergeFragments(base, [parseKconfig('CONFIG_B=y\nCONFIG_C=y\n', 'one'), parseKconfig('# CONFIG_A is not set\n# CONFIG_C is not set\n', 'two')]);
  const values = Object.fromEntries(parseKconfig(merged, 'merged').settings.map((s) => [s.symbol, s.value]));
  t.deepEqual(values, { CONFIG_KEEP: 'y', CONFIG_A: 'n', CONFIG_B: 'y', CONFIG_C: 'n' });
});

test('the check names the fragment and symbol Kconfig dropped', (t) => {
  const fragments = [parseKconfig('CONFIG_NET=y\nCONFIG_E1000=y\n', 'kernel/drivers.config'), parseKconfig('CONFIG_NET=y\n', 'kernel/base.config')];
  const final = parseKconfig('CONFIG_NET=y\n# CONFIG_PCI is not set\n', '.config');
  t.deepEqual(checkFragments(fragments, final), [{ fragment: 'kernel/drivers.config', symbol: 'CONFIG_E1000', wanted: 'y', actual: 'n (absent)' }]);
});

test('a symbol that stays off as asked is not a mismatch, whether written or absent', (t) => {
  const fragments = [parseKconfig('# CONFIG_MODULES is not set\n# CONFIG_GONE is not set\n', 'base')];
  t.deepEqual(checkFragments(fragments, parseKconfig('# CONFIG_MODULES is not set\n', '.config')), []);
});

test('every device of kernel/hardware.md is built in by the fragments of each arch it lists', async (t) => {
  const devices = await readHardwareList();
  t.true(devices.length >= 15);
  for (const arch of ARCHES) {
    const config = resolveConfig(await loadLayers({ arch, profile: 'relay', flags: [] }));
    const fragments = await Promise.all(kernelFragmentNames(config).map((name) => readFragment(join(KERNEL_FRAGMENTS_DIR, `${name}.config`))));
    const wanted = configValues({ name: 'fragments', settings: fragments.flatMap((f) => f.settings) });
    for (const { device, actual } of hardwareReport(devices, arch, wanted)) t.is(actual, 'y', `${arch}: ${device.device} (${device.symbol}) is not set =y by a fragment`);
  }
});

test('a hardware list row that is not | device | where | `SYMBOL` | arches | is refused with its line', (t) => {
  const table = '| Device | Where it is met | Symbol | Arch |\n| --- | --- | --- | --- |\n| virtio-net | VPS | `VIRTIO_NET` | x86_64, i686 |\n';
  t.deepEqual(parseHardwareList(table).map((d) => [d.symbol, d.arches]), [['VIRTIO_NET', ['x86_64', 'i686']]]);
  t.regex(t.throws(() => parseHardwareList(`${table}| e1000 | servers | E1000 | x86_64 |\n`))!.message, /kernel\/hardware\.md:4: expected/);
  t.regex(t.throws(() => parseHardwareList(`${table}| e1000 | servers | \`E1000\` | arm64 |\n`))!.message, /kernel\/hardware\.md:4: expected/);
  t.regex(t.throws(() => parseHardwareList('no table here\n'))!.message, /no device table/);
  const report = hardwareReport(parseHardwareList(`${table}| EFI framebuffer | UEFI | \`FB_EFI\` | x86_64 |\n`), 'i686', new Map([['CONFIG_VIRTIO_NET', 'y']]));
  t.deepEqual(report.map((r) => [r.device.symbol, r.actual]), [['VIRTIO_NET', 'y']]);
});
