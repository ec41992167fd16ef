import test from 'ava';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { ARCHES, type Arch } from '../pipeline/config/schema.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import { run } from '../pipeline/exec.js';
import { sha256 } from '../pipeline/hash.js';
import { releaseImages } from '../pipeline/release/images.js';
import { imageSbom, readNewc, S_IFMT, S_IFREG, validateSbom } from '../pipeline/release/sbom.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { stages } from '../pipeline/stages/index.js';
import { IMAGE_TARGETS } from '../pipeline/stages/index.js';
import { tiers } from './tiers/tiers.js';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Component {
  type: string;
  name: string;
  version?: string;
  hashes?: { alg: string; content: string }[];
  properties?: { name: string; value: string }[];
  components?: Component[];
}

/** The SBOM of the images of one arch and toolchain, built or taken from the default stage cache. */
async function sbomFor(arch: Arch, variant: 'host' | 'uclibc') {
  const config = resolveConfig(await loadLayers({ arch, profile: 'relay', flags: [`toolchain.variant=${variant}`] }));
  const dirs = cacheDirs();
  const pins = await loadPins();
  const outputs = await buildStages({ registry: stages, targets: [...IMAGE_TARGETS], config, pins, store: dirs.store, downloads: dirs.downloads, renderer: 'silent' });
  const version = pins.get('tor')!.version;
  const input = { config, pins, stages, outputs, images: await releaseImages(config, version, outputs), version, toolVersion: '0.1.0' };
  const json = await imageSbom(input);
  const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-sbom-test-'));
  await run('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', join(outputs.find((o) => o.stage === 'initramfs')!.dir, 'initramfs.cpio.xz'), join(work, 'cpio')]);
  return { json, again: () => imageSbom(input), members: readNewc(await readFile(join(work, 'cpio'))), images: input.images };
}

/** Each image file's owner: the path of the component it sits under. */
function owners(bom: { components: Component[] }): Map<string, { owner: string; sha256?: string }> {
  const out = new Map<string, { owner: string; sha256?: string }>();
  const walk = (c: Component) => {
    for (const child of c.components ?? []) {
      if (child.type === 'file' && child.properties?.some((p) => p.name === 'tor-ramdisk:role' && p.value === 'initramfs')) {
        out.set(child.name, { owner: c.name, ...(child.hashes ? { sha256: child.hashes.find((h) => h.alg === 'SHA-256')!.content } : {}) });
      } else walk(child);
    }
  };
  for (const c of bom.components) walk(c);
  return out;
}

function check(t: import("ava").ExecutionContext, got: Awaited<ReturnType<typeof sbomFor>>, libc: RegExp) {
  const bom = JSON.parse(got.json) as { specVersion: string; components: Component[]; metadata: { component: Component } };
  t.is(bom.specVersion, '1.6');
  const files = owners(bom);
  // Every file of the initramfs, with the sha256 it has there.
  for (const member of got.members.filter((m) => (m.mode & S_IFMT) === S_IFREG)) {
    t.is(files.get(`/${member.path}`)?.sha256, sha256(member.data), `/${member.path}`);
  }
  t.is(files.get('/usr/bin/tor')!.owner, 'tor');
  t.is(files.get('/lib/libcrypto.so.3')!.owner, 'openssl');
  t.is(files.get('/lib/libevent-2.1.so.7')!.owner, 'libevent');
  t.is(files.get('/lib/libz.so.1')!.owner, 'zlib');
  t.is(files.get('/bin/busybox')!.owner, 'busybox');
  t.is(files.get('/bin/sh')!.owner, 'busybox');
  t.is(files.get('/usr/bin/dbclient')!.owner, 'dropbear');
  t.is(files.get('/init')!.owner, 'tor-ramdisk runtime');
  t.regex(files.get('/lib/libc.so.6')?.owner ?? files.get('/lib/libc.so.0')?.owner ?? '', libc);
  const generated = [...files].filter(([, f]) => f.owner === 'tor-ramdisk generated files').map(([p]) => p);
  t.deepEqual(generated, ['/etc/tor-ramdisk-release']);
  // Every source with its license and the sha256 of each file; the images themselves.
  const tor = bom.components.find((c) => c.name === 'tor')!;
  t.truthy(tor.version);
  t.true(tor.components!.some((c) => c.properties?.some((p) => p.value === 'source') && c.hashes?.length === 1));
  t.true(bom.components.find((c) => c.name === 'linux')!.properties!.some((p) => p.name === 'tor-ramdisk:patch' && /^kernel\/patches\/0001-.*sha256:[0-9a-f]{64}$/.test(p.value)));
  t.true(bom.components.find((c) => c.name === 'tor')!.properties!.some((p) => p.name === 'tor-ramdisk:patch' && /^configs\/tor\/patches\/0001-.*sha256:[0-9a-f]{64}$/.test(p.value)));
  t.deepEqual(bom.metadata.component.components!.map((c) => c.name).sort(), Object.keys(got.images).sort());
  t.log(`${files.size} image files, ${bom.components.length} components, ${got.json.length} bytes`);
}

test('the SBOM of the host-toolchain images passes the strict CycloneDX 1.6 schema, names every file and its origin, and is the same twice', async (t) => {
  const got = await sbomFor('x86_64', 'host');
  t.is(await validateSbom(got.json), undefined);
  check(t, got, /^toolchain-x86_64-linux-gnu$/);
  t.is(await got.again(), got.json);
  const spoiled = JSON.parse(got.json);
  spoiled.components[0].hashes = [{ alg: 'SHA-256', content: 'not a hash' }];
  t.truthy(await validateSbom(JSON.stringify(spoiled)), 'the validator must be able to fail');
});

for (const arch of ARCHES) {
  const cached = tiers().uclibc[arch]?.iso !== undefined;
  (cached ? test : test.skip)(`the SBOM of the uClibc-ng images (${arch}) passes the strict schema; the libc is uClibc-ng's${cached ? '' : ' (not run: the uClibc-ng images are not in the stage cache)'}`, async (t) => {
    const got = await sbomFor(arch, 'uclibc');
    t.is(await validateSbom(got.json), undefined);
    check(t, got, /^uclibc-ng$/);
    const uclibc = (JSON.parse(got.json) as { components: Component[] }).components.find((c) => c.name === 'uclibc-ng')!;
    t.true(uclibc.properties!.some((p) => p.name === 'tor-ramdisk:patch' && /^configs\/uclibc\/patches\/0001-.*sha256:[0-9a-f]{64}$/.test(p.value)));
  });
}
