import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { StageResult } from '../engine/build.js';
import type { Stage } from '../engine/stage.js';
import { InputError, localFsError, TorRamdiskError } from '../errors.js';
import { run } from '../exec.js';
import { sha256File } from '../hash.js';
import { scenariosFor, smokeSideBySide, type SmokeResult } from '../qemu/smoke.js';
import type { SourcePins } from '../sources/pins.js';
import { gpgEnv } from '../sources/signature.js';
import { releaseBase, releaseImages } from './images.js';
import { compareImages } from './reproducible.js';
import { imageSbom, projectVersion, validateSbom } from './sbom.js';

export interface ReleaseArch {
  config: ResolvedConfig;
  /** Builds (or takes from the cache) the image stages for this arch. */
  build(): Promise<StageResult[]>;
  /** A second, independent build (another cache, path and umask): its images must be bit-identical. */
  rebuild?(): Promise<StageResult[]>;
}

export interface ReleaseOptions {
  arches: readonly ReleaseArch[];
  stages: readonly Stage[];
  pins: SourcePins;
  out: string;
  signKey: string;
  /** Smoke scenarios to run (default: all that run on the arch). */
  scenarios?: readonly string[];
  onEvent?: (line: string) => void;
}

export interface Release {
  dir: string;
  files: string[];
  smoke: SmokeResult[];
}

/**
 * A release directory: for each arch the images, named `tor-ramdisk-<version>-<arch>.<ext>`,
 * each booted by the smoke scenarios first, and its SBOM; `SHA256SUMS` over all of them and
 * `SHA256SUMS.asc`, a detached signature by the maintainer's key. Written into a temporary
 * directory beside `out` and renamed into place only when all of it holds; an existing `out`
 * is never written into.
 */
export async function makeRelease(options: ReleaseOptions): Promise<Release> {
  const say = options.onEvent ?? (() => {});
  if (await stat(options.out).then(() => true, () => false)) {
    throw new InputError(`${options.out} exists: a release goes into a new directory`, { hint: 'Name another with --out, or remove it yourself.' });
  }
  // The key is checked before hours of work, not after.
  await run('gpg', ['--batch', '--list-secret-keys', options.signKey], { env: gpgEnv() }).catch(() => {
    throw new InputError(`--sign-key ${options.signKey}: gpg has no secret key by that name${process.env.GNUPGHOME ? ` in ${process.env.GNUPGHOME}` : ''}`, { hint: 'Import the maintainer key (gpg --import) or name the right one.' });
  });
  const version = options.pins.get('tor')!.version;
  const toolVersion = await projectVersion();
  await mkdir(dirname(options.out), { recursive: true });
  const temp = `${options.out}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(temp);
  try {
    const built: { config: ResolvedConfig; outputs: StageResult[]; images: Record<string, string> }[] = [];
    for (const arch of options.arches) {
      const { config } = arch;
      const outputs = await arch.build();
      const images = await releaseImages(config, version, outputs);
      if (arch.rebuild) {
        say(`${config.arch}: building again, independently, to compare`);
        const differences = await compareImages(images, await releaseImages(config, version, await arch.rebuild()));
        if (differences.length > 0) {
          throw new TorRamdiskError('ERR_REPRODUCIBLE', 'build', `${config.arch}: two builds of the same inputs differ: ${differences.map((d) => (d.member ? `${d.file} (first differing member: ${d.member})` : d.file)).join('; ')}`, {
            hint: 'A build that is not reproducible is a bug: the differing member names where to look.',
          });
        }
        say(`${config.arch}: ${Object.keys(images).length} images bit-identical across the two builds`);
      }
      built.push({ config, outputs, images });
    }
    const smoke = await smokeSideBySide(
      built.map(({ config, images }) => ({
        arch: config.arch,
        iso: Object.entries(images).find(([name]) => name.endsWith('.iso'))![1],
        scenarios: scenariosFor(config.arch, options.scenarios),
      })),
      say,
    );
    for (const { config, outputs, images } of built) {
      for (const [name, path] of Object.entries(images)) await copyFile(path, join(temp, name));
      const sbom = await imageSbom({ config, pins: options.pins, stages: options.stages, outputs, images, version, toolVersion });
      const invalid = await validateSbom(sbom);
      if (invalid) throw new Error(`the SBOM for ${config.arch} fails CycloneDX's strict schema: ${JSON.stringify(invalid).slice(0, 2000)}`);
      await writeFile(join(temp, `${releaseBase(config, version)}.cdx.json`), sbom);
    }
    const files = (await readdir(temp)).sort();
    const sums = await Promise.all(files.map(async (f) => `${await sha256File(join(temp, f))}  ${f}\n`));
    await writeFile(join(temp, 'SHA256SUMS'), sums.join(''));
    await run('gpg', ['--batch', '--yes', '--local-user', options.signKey, '--armor', '--detach-sign', '--output', join(temp, 'SHA256SUMS.asc'), join(temp, 'SHA256SUMS')], { env: gpgEnv() });
    await rename(temp, options.out);
    return { dir: options.out, files: [...files, 'SHA256SUMS', 'SHA256SUMS.asc'], smoke };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw localFsError(error, `cannot write the release into ${temp}`) ?? error;
  }
}
