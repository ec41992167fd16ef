import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import { InputError } from '../pipeline/errors.js';
import { makeRelease } from '../pipeline/release/release.js';
import { validateSbom } from '../pipeline/release/sbom.js';
import { loadPins } from '../pipeline/sources/pins.js';
import { IMAGE_TARGETS, stages } from '../pipeline/stages/index.js';
import { throwawayGnupg, type Gnupg } from './helpers/gnupg.js';

// Tier: host toolchain. A release of the x86_64 images (built or taken from the default stage
// cache), smoke-tested by booting its ISO (BIOS), signed with a throwaway key made here.
let gnupg: string;

let keys: Gnupg;

test.before(async () => {
  keys = await throwawayGnupg();
  gnupg = keys.home;
  process.env.GNUPGHOME = gnupg;
  await keys.newKey('Release Maintainer <maintainer@example.invalid>');
});
test.after.always(async () => {
  await keys?.close();
});

async function options(out: string) {
  const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: ['toolchain.variant=host'] }));
  const pins = await loadPins();
  const dirs = cacheDirs();
  return {
    arches: [{ config, build: () => buildStages({ registry: stages, targets: [...IMAGE_TARGETS], config, pins, store: dirs.store, downloads: dirs.downloads, renderer: 'silent' as const }) }],
    stages,
    pins,
    out,
    signKey: 'maintainer@example.invalid',
    scenarios: ['menu-bios'],
  };
}

test('a release directory: smoke-tested images named for what they are, SBOM, SHA256SUMS that verify, a signature gpgv accepts', async (t) => {
  const out = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-release-')), 'release');
  const lines: string[] = [];
  const release = await makeRelease({ ...(await options(out)), onEvent: (l) => lines.push(l) });
  const version = (await loadPins()).get('tor')!.version;
  const base = `tor-ramdisk-${version}-x86_64-host`;
  t.deepEqual((await readdir(out)).sort(), [`${base}-embedded.bzImage`, `${base}.bzImage`, `${base}.cdx.json`, `${base}.initramfs.cpio.xz`, `${base}.iso`, 'SHA256SUMS', 'SHA256SUMS.asc'].sort());
  t.true(release.smoke.some((s) => s.scenario === 'menu-bios' && /10 +Halt \(power off\)/.test(s.transcript)));
  t.log(lines.join('\n'));
  const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
  t.regex(check.stdout, new RegExp(`${base}\\.iso: OK`));
  // gpg writes the keyring itself: a binary key through a pipe would lose a last byte 0x0a to execa's newline stripping.
  await execa('gpg', ['--batch', '--output', join(gnupg, 'maintainer.gpg'), '--export', 'maintainer@example.invalid'], { env: { GNUPGHOME: gnupg } });
  const verified = await execa('gpgv', ['--keyring', join(gnupg, 'maintainer.gpg'), join(out, 'SHA256SUMS.asc'), join(out, 'SHA256SUMS')], { reject: false });
  t.is(verified.exitCode, 0, verified.stderr);
  t.is(await validateSbom(await readFile(join(out, `${base}.cdx.json`), 'utf8')), undefined);
  // A tampered SHA256SUMS no longer verifies.
  await writeFile(join(out, 'SHA256SUMS'), `${await readFile(join(out, 'SHA256SUMS'), 'utf8')}# one more line\n`);
  t.not((await execa('gpgv', ['--keyring', join(gnupg, 'maintainer.gpg'), join(out, 'SHA256SUMS.asc'), join(out, 'SHA256SUMS')], { reject: false })).exitCode, 0);
});

test('a release never writes into an existing directory, and a key gpg lacks is refused before anything is built', async (t) => {
  const existing = await mkdtemp(join(tmpdir(), 'tor-ramdisk-release-'));
  await mkdir(join(existing, 'mine'));
  const error = await t.throwsAsync(makeRelease(await options(existing)), { instanceOf: InputError });
  t.regex(error!.message, /exists: a release goes into a new directory/);
  t.deepEqual(await readdir(existing), ['mine']);
  const fresh = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-release-')), 'release');
  const noKey = await t.throwsAsync(makeRelease({ ...(await options(fresh)), signKey: 'nobody@example.invalid' }), { instanceOf: InputError });
  t.regex(noKey!.message, /--sign-key nobody@example\.invalid: gpg has no secret key by that name/);
  t.deepEqual(await readdir(join(fresh, '..')), []);
});
