import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { Enums, Models, Serialize, Spec, Validation } from '@cyclonedx/cyclonedx-library';
import type { ResolvedConfig } from '../config/resolve.js';
import { stageSources, type Stage, type StageOutput } from '../engine/stage.js';
import { run } from '../exec.js';
import { sha256, sha256File } from '../hash.js';
import { projectRoot } from '../paths.js';
import { patchSeriesHashes, PATCH_DIRS } from '../sources/patches.js';
import type { SourcePins } from '../sources/pins.js';
import { readToolchain } from '../toolchain/toolchain.js';

/** One member of a newc cpio archive. */
export interface CpioMember {
  path: string;
  mode: number;
  data: Buffer;
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** Reads a newc ("070701") cpio archive, as the kernel unpacks an initramfs. */
export function readNewc(archive: Buffer): CpioMember[] {
  const members: CpioMember[] = [];
  let at = 0;
  const pad = (n: number) => (n + 3) & ~3;
  for (;;) {
    if (archive.toString('ascii', at, at + 6) !== '070701') throw new Error(`not a newc cpio archive at byte ${at}`);
    const field = (i: number) => parseInt(archive.toString('ascii', at + 6 + i * 8, at + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const path = archive.toString('utf8', at + 110, at + 110 + nameSize - 1);
    const dataAt = pad(at + 110 + nameSize);
    if (path === 'TRAILER!!!') return members;
    members.push({ path: path.replace(/^\.?\//, ''), mode, data: archive.subarray(dataAt, dataAt + size) });
    at = pad(dataAt + size);
  }
}

export interface SbomInput {
  config: ResolvedConfig;
  pins: SourcePins;
  /** The stages of the image build, and where each one's output is. */
  stages: readonly Stage[];
  outputs: readonly StageOutput[];
  /** The images the release ships: file name → path. */
  images: Record<string, string>;
  /** The release's version (tor's). */
  version: string;
  /** This tool's own version (package.json), which the runtime tree shares. */
  toolVersion: string;
}

/** Files of the project's own runtime tree (`initramfs/`) that the image takes verbatim. */
const RUNTIME = 'tor-ramdisk runtime';

/**
 * The image's bill of materials, CycloneDX 1.6 JSON: every pinned source the build used
 * (version, license, the sha256 and URLs of each file, the patches applied), the toolchain
 * that built it, and every file of the initramfs with its sha256 under the component it came
 * from, found by content in the stage outputs. Deterministic: the same build gives the same
 * text (its serial number is derived from its content, its time is SOURCE_DATE_EPOCH).
 */
export async function imageSbom(input: SbomInput): Promise<string> {
  const { config } = input;
  const dir = (stage: string) => input.outputs.find((o) => o.stage === stage)?.dir;
  const bom = new Models.Bom();
  const image = new Models.Component(Enums.ComponentType.OperatingSystem, `tor-ramdisk-${config.arch}`, {
    version: input.version,
    bomRef: 'tor-ramdisk',
    description: `tor-ramdisk for ${config.arch}, profile ${config.profile}, ${config.toolchainVariant} toolchain`,
  });
  bom.metadata.component = image;
  bom.metadata.timestamp = new Date(Number(config.get('build.sourceDateEpoch')) * 1000);
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, 'tor-ramdisk', { version: input.toolVersion, bomRef: 'tool:tor-ramdisk' }));

  const sources = new Map<string, Models.Component>();
  for (const stage of input.stages) {
    for (const name of stageSources(stage, config)) {
      if (sources.has(name)) continue;
      const pin = input.pins.get(name)!;
      const component = new Models.Component(Enums.ComponentType.Library, name, { version: pin.version, bomRef: `source:${name}` });
      component.licenses.add(new Models.LicenseExpression(pin.license));
      for (const file of pin.files) {
        const part = new Models.Component(Enums.ComponentType.File, file.name, { bomRef: `source:${name}:${file.name}` });
        part.properties.add(new Models.Property('tor-ramdisk:role', 'source'));
        part.hashes.set(Enums.HashAlgorithm['SHA-256'], file.sha256);
        for (const url of [...file.urls, ...file.mirrors.map((m) => m.url)]) part.externalReferences.add(new Models.ExternalReference(url, Enums.ExternalReferenceType.Distribution));
        for (const mirror of file.mirrors) if (mirror.member) part.properties.add(new Models.Property('tor-ramdisk:mirror-member', `${mirror.url} ${mirror.member} sha256:${mirror.sha256}`));
        component.components.add(part);
      }
      sources.set(name, component);
      bom.components.add(component);
    }
  }
  // The project's patch series, in the order they apply.
  for (const source of Object.keys(PATCH_DIRS)) {
    for (const patch of await patchSeriesHashes(source)) sources.get(source)?.properties.add(new Models.Property('tor-ramdisk:patch', `${patch.path} sha256:${patch.sha256}`));
  }
  sources.get('gcc')?.properties.add(new Models.Property('tor-ramdisk:patch', 'gcc-gfdl-build.diff (pinned above)'));

  const toolchainDir = dir('toolchain')!;
  const tc = await readToolchain(toolchainDir);
  const toolchain = new Models.Component(Enums.ComponentType.Platform, `toolchain-${tc.target}`, { bomRef: 'toolchain', description: `${tc.variant} toolchain, ${tc.libc}` });
  for (const [key, value] of Object.entries({ variant: tc.variant, target: tc.target, libc: tc.libc, cflags: tc.cflags.join(' '), ldflags: tc.ldflags.join(' ') })) {
    toolchain.properties.add(new Models.Property(`tor-ramdisk:toolchain:${key}`, value));
  }
  const toolchainStage = input.stages.find((s) => s.name === 'toolchain')!;
  for (const name of stageSources(toolchainStage, config)) toolchain.dependencies.add(sources.get(name)!.bomRef);
  bom.components.add(toolchain);
  image.dependencies.add(toolchain.bomRef);

  // Where each file of the image came from: the stage output (or the sysroot, or the project tree) holding the same bytes.
  const origins = new Map<string, Models.Component>();
  const runtime = new Models.Component(Enums.ComponentType.Application, RUNTIME, { version: input.toolVersion, bomRef: 'runtime', description: 'the init, menu and scripts of initramfs/ in this project' });
  bom.components.add(runtime);
  const members = await initramfsMembers(join(dir('initramfs')!, 'initramfs.cpio.xz'));
  // Only files of a size some image file has can be its origin: nothing else is read.
  const sizes = new Set(members.filter((m) => (m.mode & S_IFMT) === S_IFREG).map((m) => m.data.length));
  const index = async (root: string, owner: Models.Component) => {
    for (const hash of (await treeHashes(root, sizes)).values()) if (!origins.has(hash)) origins.set(hash, owner);
  };
  await index(join(projectRoot, 'initramfs'), runtime);
  const initramfs = input.stages.find((s) => s.name === 'initramfs')!;
  for (const stage of input.stages.filter((s) => initramfs.deps?.includes(s.name) && s.name !== 'toolchain')) {
    const name = stageSources(stage, config)[0];
    if (name && dir(stage.name)) await index(dir(stage.name)!, sources.get(name)!);
  }
  // The libc and the loader come from the toolchain's sysroot (for the host toolchain, this machine's): looked up by name there.
  const libc = tc.variant === 'uclibc' ? sources.get('uclibc-ng')! : toolchain;
  const fromSysroot = async (member: CpioMember, hash: string) => {
    for (const lib of ['lib', 'usr/lib', `lib/${tc.target}`, `usr/lib/${tc.target}`, 'lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64']) {
      const candidate = join(tc.sysroot, lib, posix.basename(member.path));
      if ((await sha256File(candidate).catch(() => undefined)) === hash) return libc;
    }
    return undefined;
  };

  const generated = new Models.Component(Enums.ComponentType.Data, 'tor-ramdisk generated files', { bomRef: 'generated', description: 'written by the initramfs stage (the release file)' });
  const owners = new Map<string, Models.Component>();
  for (const member of members.filter((m) => (m.mode & S_IFMT) === S_IFREG)) {
    const hash = sha256(member.data);
    const file = imageFile(member.path);
    file.hashes.set(Enums.HashAlgorithm['SHA-256'], hash);
    file.properties.add(new Models.Property('tor-ramdisk:mode', (member.mode & 0o7777).toString(8).padStart(4, '0')));
    const owner = origins.get(hash) ?? (await fromSysroot(member, hash)) ?? generated;
    owners.set(member.path, owner);
    owner.components.add(file);
  }
  // A symlink belongs to whoever owns what it points to (busybox's applets to busybox).
  for (const member of members.filter((m) => (m.mode & S_IFMT) === S_IFLNK)) {
    const target = member.data.toString('utf8');
    const resolved = posix.normalize(target.startsWith('/') ? target.slice(1) : posix.join(posix.dirname(member.path), target));
    const file = imageFile(member.path);
    file.properties.add(new Models.Property('tor-ramdisk:symlink', target));
    (owners.get(resolved) ?? runtime).components.add(file);
  }
  if (generated.components.size > 0) bom.components.add(generated);

  for (const [name, path] of Object.entries(input.images)) {
    const file = new Models.Component(Enums.ComponentType.File, name, { bomRef: `image:${name}` });
    file.hashes.set(Enums.HashAlgorithm['SHA-256'], await sha256File(path));
    image.components.add(file);
  }
  for (const component of [...sources.values(), runtime]) image.dependencies.add(component.bomRef);

  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  bom.serialNumber = undefined;
  const unnumbered = serializer.serialize(bom, { sortLists: true, space: 2 });
  const digest = createHash('sha256').update(unnumbered).digest('hex');
  // A name-based UUID (version 5 layout) from the content: the same bill, the same number.
  bom.serialNumber = `urn:uuid:${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-${((parseInt(digest[16]!, 16) & 3) | 8).toString(16)}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

export async function projectVersion(): Promise<string> {
  return (JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The strict CycloneDX 1.6 JSON schema's verdict: undefined when valid, else the errors. */
export async function validateSbom(json: string): Promise<unknown> {
  return (await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json)) ?? undefined;
}

/** A file of the initramfs, named by its path in the image. */
function imageFile(path: string): Models.Component {
  const file = new Models.Component(Enums.ComponentType.File, `/${path}`, { bomRef: `file:/${path}` });
  file.properties.add(new Models.Property('tor-ramdisk:role', 'initramfs'));
  return file;
}

/** The members of an xz-compressed newc initramfs. */
async function initramfsMembers(path: string): Promise<CpioMember[]> {
  const work = await mkdtemp(join(tmpdir(), 'tor-ramdisk-sbom-'));
  try {
    await run('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', path, join(work, 'initramfs.cpio')]);
    return readNewc(await readFile(join(work, 'initramfs.cpio')));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Every regular file under a tree whose size is one of `sizes`: path → sha256. */
async function treeHashes(root: string, sizes: ReadonlySet<number>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (path: string) => {
    for (const name of await readdir(path).catch(() => [] as string[])) {
      const full = join(path, name);
      const info = await lstat(full);
      if (info.isDirectory()) await walk(full);
      else if (info.isFile() && sizes.has(info.size)) out.set(relative(root, full), await sha256File(full));
    }
  };
  await walk(root);
  return out;
}
