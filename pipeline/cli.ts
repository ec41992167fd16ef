#!/usr/bin/env node
import { availableParallelism, tmpdir } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { explainConfig } from './config/resolve.js';
import { ARCHES, PROFILES, type Arch, type Profile } from './config/schema.js';
import { CACHE_MARKER, cacheDirs, cacheRootFrom, configFor, isCache, openCache, type CacheDirs } from './context.js';
import { buildArches, buildStages, type Renderer } from './engine/build.js';
import { formatPlan, planStages } from './engine/plan.js';
import { graphDot, graphSvg } from './engine/pictures.js';
import { installCommand, missingTools, packagesFor, toolName } from './engine/tools.js';
import { ExitCode, InputError, localFsError, MissingToolError, TorRamdiskError } from './errors.js';
import { fetchSources } from './sources/fetch.js';
import { defaultPinsPath, loadPins } from './sources/pins.js';
import { bump } from './sources/bump.js';
import { releaseImages } from './release/images.js';
import { imageSbom, projectVersion, validateSbom } from './release/sbom.js';
import { makeRelease } from './release/release.js';
import { scenariosFor, SCENARIOS, smokeSideBySide, testnetSession } from './qemu/smoke.js';
import { DEBIAN_ARCHIVE } from './sources/debian.js';
import { defaultKeysDir } from './sources/signature.js';
import { RemoteCache } from './remote/cache.js';
import { buildTools, testTools } from './host-tools.js';
import { run } from './exec.js';
import { IMAGE_TARGETS, stages } from './stages/index.js';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { DEFAULT_ITERATIONS, MAX_BUNDLE_BYTES, open, seal } from './bundle/format.js';
import { readPassphrase } from './bundle/passphrase.js';
import { packState, readState, unpackState, writeState } from './bundle/state.js';
import { expiryText, parseSigningCert, renewSigningKey, SIGNING_CERT } from './keys/renew.js';
import { sha256 } from './hash.js';
import { join, resolve } from 'node:path';
import type { FragmentReport } from './stages/kernel.js';
import { configValues, parseKconfig } from './kconfig/fragment.js';
import { hardwareReport, readHardwareList } from './kconfig/hardware.js';
import { formatLinkage, type LinkageRecord } from './elf/linkage.js';

const common = {
  arch: { type: 'string', default: 'x86_64' },
  profile: { type: 'string', default: 'relay' },
  config: { type: 'string' },
  layer: { type: 'string', multiple: true },
  set: { type: 'string', multiple: true },
  cache: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Command {
  summary: string;
  usage: string;
  options: ParseArgsConfig['options'];
  run(values: Record<string, unknown>, positionals: string[]): Promise<void>;
}

const configHelp = `Configuration (applied in this order, nothing else):
  configs/layers/base.json → arch/<A>.json → profile/<P>.json → --layer NAME… → --config FILE → --set key=value…
  --arch A        x86_64 or i686 (default x86_64)${''}
  --profile P     relay, bridge or exit (default relay)
  --layer NAME    an extra layer from configs/layers (e.g. debug), repeatable
  --config FILE   your own layer file (JSON: {"set": {...}, "unlock": [...]})
  --set KEY=VAL   one value, repeatable
  --cache DIR     cache root (default $TOR_RAMDISK_CACHE, else $XDG_CACHE_HOME/tor-ramdisk)`;

function archList(value: unknown): Arch[] {
  const text = String(value);
  if (text === 'all') return [...ARCHES];
  if (!(ARCHES as readonly string[]).includes(text)) throw new InputError(`--arch ${text}: expected ${ARCHES.join(', ')} or all`);
  return [text as Arch];
}

function profileOf(value: unknown): Profile {
  const text = String(value);
  if (!(PROFILES as readonly string[]).includes(text)) throw new InputError(`--profile ${text}: expected ${PROFILES.join(', ')}`);
  return text as Profile;
}

function selection(values: Record<string, unknown>, arch: Arch) {
  return {
    arch,
    profile: profileOf(values.profile),
    ...(values.config ? { userFile: String(values.config) } : {}),
    extra: (values.layer as string[] | undefined) ?? [],
    flags: (values.set as string[] | undefined) ?? [],
  };
}

/**
 * Some of the test tools are servers (the registry) whose packages start a system service on
 * install, listening on every interface. The tests start their own on 127.0.0.1; Debian's
 * policy-rc.d hook keeps the packaged ones from starting. Only a hook this run wrote is removed.
 */
async function withoutServiceStarts<T>(install: () => Promise<T>): Promise<T> {
  const hook = '/usr/sbin/policy-rc.d';
  const written = await writeFile(hook, '#!/bin/sh\n# written by tor-ramdisk doctor --install while it installs packages\nexit 101\n', { flag: 'wx', mode: 0o755 }).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false;
      throw localFsError(error, 'cannot keep packaged services from starting') ?? error;
    },
  );
  try {
    return await install();
  } finally {
    if (written) await rm(hook, { force: true });
  }
}

/** The ISO to boot for an arch: the one in --image DIR, or the one the build makes (cached stages taken from the cache). */
async function isoFor(values: Record<string, unknown>, arch: Arch): Promise<string> {
  if (values.image !== undefined) {
    const dir = String(values.image);
    const found = (await readdir(dir).catch((error: NodeJS.ErrnoException) => {
      throw localFsError(error, `cannot read --image ${dir}`) ?? error;
    })).filter((f) => f.endsWith('.iso') && f.includes(`-${arch}`));
    if (found.length !== 1) throw new InputError(`--image ${dir}: ${found.length === 0 ? 'no' : 'more than one'} ISO for ${arch} there (tor-ramdisk-*-${arch}*.iso)`);
    return join(dir, found[0]!);
  }
  const config = await configFor(selection(values, arch));
  const dirs = await openCache(cacheRootFrom(values.cache));
  const outputs = await buildStages({ registry: stages, targets: ['iso'], config, pins: await loadPins(), store: dirs.store, downloads: dirs.downloads, renderer: renderer() });
  const dir = outputs.find((o) => o.stage === 'iso')!.dir;
  return join(dir, (await readdir(dir)).find((f) => f.endsWith('.iso'))!);
}

function renderer(): Renderer {
  return process.stdout.isTTY && !process.env.CI ? 'default' : 'simple';
}

const commands: Record<string, Command> = {
  fetch: {
    summary: 'download and verify pinned sources into the download cache',
    usage: `tor-ramdisk fetch [SOURCE…] [--offline] [--cache DIR]

Downloads every pinned file (or only the named sources), verifies its sha256 (and its
OpenPGP signature where upstream signs), and stores it in the content-addressed cache.
A cached file is verified again. --offline uses the cache only and names what is missing.`,
    options: { offline: { type: 'boolean' }, cache: common.cache, help: common.help },
    async run(values, names) {
      const pins = await loadPins();
      for (const name of names) if (!pins.has(name)) throw new InputError(`no pin for source "${name}" in configs/sources.json`, { hint: `Pinned: ${[...pins.keys()].join(', ')}` });
      const selected = names.length > 0 ? names.map((n) => pins.get(n)!) : [...pins.values()];
      const { downloads } = await openCache(cacheRootFrom(values.cache));
      const started = Date.now();
      const fetched = await fetchSources(selected, {
        cache: downloads,
        offline: Boolean(values.offline),
        onEvent: (message) => process.stderr.write(`${message}\n`),
      });
      const width = Math.max(...fetched.map((f) => `${f.source} ${f.name}`.length));
      for (const f of fetched) {
        const signed = f.signedBy ? `  signed by ${f.signedBy}` : '';
        console.log(`${`${f.source} ${f.name}`.padEnd(width)}  ${f.sha256.slice(0, 16)}  ${f.origin === 'cache' ? 'cache (re-verified)' : f.origin}${signed}`);
      }
      console.log(`${fetched.length} files verified in ${((Date.now() - started) / 1000).toFixed(2)} s; cache: ${downloads.dir}`);
    },
  },
  plan: {
    summary: 'show which stages are cached and which input changed for the rest',
    usage: `tor-ramdisk plan [STAGE…] [options]

For each stage (default: the image and everything it needs): cached or to build,
its key, and which inputs differ from the last build for this arch.

${configHelp}`,
    options: { ...common },
    async run(values, targets) {
      const pins = await loadPins();
      const { store } = cacheDirs(cacheRootFrom(values.cache));
      for (const arch of archList(values.arch)) {
        const config = await configFor(selection(values, arch));
        const plan = await planStages(stages, targets.length > 0 ? targets : defaultTargets(), config, pins, store);
        console.log(formatPlan(plan, arch));
      }
    },
  },
  build: {
    summary: 'build stages (default: the images) for an arch and profile',
    usage: `tor-ramdisk build [STAGE…] [--arch x86_64|i686|all] [--profile P] [--jobs N] [--offline] [options]

Builds the named stages and everything they need; stages whose inputs did not change
are taken from the cache. Stage logs: <cache>/logs/<stage>/<key>.log.

${configHelp}
  --jobs N        parallel jobs (default: the number of cores)
  --offline       use only cached downloads

Shared stage cache (an OCI registry; logins from ~/.docker/config.json or $DOCKER_CONFIG):
  --remote oci://HOST[:PORT]/REPO   look each stage up there before building it (remote.url)
  --set remote.keyring=FILE         the armored public keys whose signed entries are used
  --set remote.signKey=KEYID        sign and push what this build makes (gpg, $GNUPGHOME)
  --remote-trust none               use entries without checking signatures (loudly; never ship)`,
    options: { ...common, jobs: { type: 'string' }, offline: { type: 'boolean' }, remote: { type: 'string' }, 'remote-trust': { type: 'string' } },
    async run(values, targets) {
      const pins = await loadPins();
      const dirs = await openCache(cacheRootFrom(values.cache));
      const jobs = values.jobs ? Number(values.jobs) : availableParallelism();
      if (!Number.isInteger(jobs) || jobs < 1) throw new InputError(`--jobs ${String(values.jobs)}: expected a positive integer`);
      const remoteFlags = [
        ...(values.remote === undefined ? [] : [`remote.url=${String(values.remote)}`]),
        ...(values['remote-trust'] === undefined ? [] : [`remote.trust=${String(values['remote-trust'])}`]),
      ];
      const builds = await Promise.all(
        archList(values.arch).map(async (arch) => {
          const config = await configFor(selection({ ...values, set: [...((values.set as string[] | undefined) ?? []), ...remoteFlags] }, arch));
          const remote = await RemoteCache.open(config);
          return { config, ...(remote ? { remote } : {}) };
        }),
      );
      // Every arch in one build, under one job budget.
      const results = await buildArches(
        {
          registry: stages,
          targets: targets.length > 0 ? targets : defaultTargets(),
          pins,
          store: dirs.store,
          downloads: dirs.downloads,
          jobs,
          offline: Boolean(values.offline),
          renderer: renderer(),
          ...(builds.some((b) => b.remote) ? { onRemote: (line: string) => console.error(line) } : {}),
        },
        builds,
      );
      for (const [i, { config }] of builds.entries()) {
        for (const r of results[i]!) console.log(`${config.arch} ${r.stage.padEnd(16)} ${r.cached ? 'cached' : r.pulled ? 'pulled' : 'built '} ${r.dir}`);
      }
      if (results.flat().some((r) => !r.cached)) console.log(`timeline: ${dirs.store.timelinePath(builds.length > 1 ? 'all' : builds[0]!.config.arch)}`);
    },
  },
  bump: {
    summary: 'renew a source pin to a new version, authenticated through Debian\'s signed archive index',
    usage: `tor-ramdisk bump SOURCE VERSION [--suite S…] [--mirror URL] [--allow-downgrade] [--accept-expired-index] [options]

Finds VERSION of SOURCE in Debian's archive: dists/<suite>/InRelease verified with gpgv against
configs/keys/debian-archive.asc, main/source/Sources.gz checked against the sha256 in it, the
file's sha256 from Sources checked on the file the pool serves; the pin's upstream URLs, with
the new version, must serve the same bytes if they answer, and a signed source must carry a
signature by its pinned keys. Then rewrites the pin in configs/sources.json (recording the
suite, the index date and the signing keys) and prints the plan. Nothing changes on any failure.

  --suite S               suites to look in, in order (default: sid, trixie, bookworm)
  --mirror URL            Debian mirror (default ${DEBIAN_ARCHIVE})
  --allow-downgrade       accept a version older than the pinned one
  --accept-expired-index  accept an index past its Valid-Until (a frozen mirror)

${configHelp}`,
    options: {
      ...common,
      suite: { type: 'string', multiple: true },
      mirror: { type: 'string', default: DEBIAN_ARCHIVE },
      'allow-downgrade': { type: 'boolean' },
      'accept-expired-index': { type: 'boolean' },
    },
    async run(values, positionals) {
      if (positionals.length !== 2) throw new InputError('usage: tor-ramdisk bump SOURCE VERSION');
      const [source, version] = positionals as [string, string];
      const result = await bump(source, version, {
        pinsPath: defaultPinsPath,
        keysDir: defaultKeysDir,
        mirror: String(values.mirror).replace(/\/+$/, ''),
        suites: (values.suite as string[] | undefined) ?? ['sid', 'trixie', 'bookworm'],
        allowDowngrade: Boolean(values['allow-downgrade']),
        acceptExpiredIndex: Boolean(values['accept-expired-index']),
        onEvent: (line) => console.error(line),
      });
      if (!result.changed) {
        console.log(`${source} is pinned at ${version} already; nothing changed`);
        return;
      }
      const how = result.authenticated!;
      console.log(`${source}: ${result.from} → ${result.to} (Debian ${how.debian.suite}, index of ${how.debian.indexDate}; upstream ${how.upstream}${how.signature ? `; signed by ${how.signature}` : ''})`);
      const pins = await loadPins();
      const { store } = cacheDirs(cacheRootFrom(values.cache));
      for (const arch of archList(values.arch)) {
        const config = await configFor(selection(values, arch));
        console.log(formatPlan(await planStages(stages, defaultTargets(), config, pins, store), arch));
      }
    },
  },
  sbom: {
    summary: 'the bill of materials of the images (CycloneDX 1.6 JSON), checked against the strict schema',
    usage: `tor-ramdisk sbom [--arch A] [--out FILE] [options]

Builds the images (cached stages are taken from the cache) and writes their CycloneDX 1.6
SBOM: every pinned source (version, license, the sha256 and URLs of each file, the patches
applied), the toolchain, every file of the initramfs with its sha256 under the component it
came from, and the images. Validated with CycloneDX's strict JSON schema before it is written.

${configHelp}
  --out FILE      write it there (default: standard output; with --arch all, FILE-<arch>.json)`,
    options: { ...common, out: { type: 'string' } },
    async run(values) {
      const pins = await loadPins();
      const dirs = await openCache(cacheRootFrom(values.cache));
      const arches = archList(values.arch);
      for (const arch of arches) {
        const config = await configFor(selection(values, arch));
        // Written to standard output, the SBOM must be the only thing there.
        const outputs = await buildStages({ registry: stages, targets: defaultTargets(), config, pins, store: dirs.store, downloads: dirs.downloads, renderer: values.out === undefined ? 'silent' : renderer() });
        const version = pins.get('tor')!.version;
        const json = await imageSbom({ config, pins, stages, outputs, images: await releaseImages(config, version, outputs), version, toolVersion: await projectVersion() });
        const invalid = await validateSbom(json);
        if (invalid) throw new Error(`the SBOM for ${arch} fails CycloneDX's strict schema: ${JSON.stringify(invalid).slice(0, 2000)}`);
        if (values.out === undefined) process.stdout.write(json);
        else {
          const path = arches.length > 1 ? `${String(values.out).replace(/\.json$/, '')}-${arch}.json` : String(values.out);
          await writeFile(path, json);
          console.error(`${arch}: ${path}`);
        }
      }
    },
  },
  smoke: {
    summary: 'boot the images under QEMU and check that they do their job (the smoke scenarios)',
    usage: `tor-ramdisk smoke [--arch A|all] [--image DIR] [--scenario NAME…] [options]

Runs the smoke scenarios on each arch's ISO: the one the build makes (cached stages are taken
from the cache), or the one in DIR (a release directory). Guests have no network, but for
the relay scenario's: a private Tor network in a network namespace of its own, with no route
out (directory authority, exit, middle relay and client: Debian's tor, never its service).
Scenarios: ${SCENARIOS.map((s) => `${s.name}${s.arches ? ` (${s.arches.join(', ')})` : ''}`).join(', ')}.

${configHelp}
  --image DIR     take the ISO from DIR (tor-ramdisk-*-<arch>*.iso)
  --scenario N    run only these scenarios, repeatable`,
    options: { ...common, image: { type: 'string' }, scenario: { type: 'string', multiple: true } },
    async run(values) {
      const names = (values.scenario as string[] | undefined) ?? [];
      const runs = [];
      for (const arch of archList(values.arch)) {
        const scenarios = scenariosFor(arch, names);
        runs.push({ arch, scenarios, iso: await isoFor(values, arch) });
      }
      await smokeSideBySide(runs, (line) => console.log(line));
    },
  },
  testnet: {
    summary: 'a private Tor network in a network namespace of its own, the image booted into it as a relay, its console here',
    usage: `tor-ramdisk testnet [--arch A] [--image DIR] [--memory MB] [options]

Starts a private Tor network (a directory authority that is also an FTP server, an exit, a
middle relay and a client: Debian's tor, never its service) in a network namespace with no
route out, checked before anything starts; seals a new relay identity for it on the FTP server;
and powers the ISO on into the network (as the smoke scenarios take it, or from --image DIR)
with its serial console on this terminal, the boot line typed for it (static address, import
from the FTP server, tor started; the passphrase comes by fw_cfg). It says when the relay is in
the consensus and when a circuit through it has carried a file. Ctrl-] ends the guest and the
network.

${configHelp}
  --image DIR     take the ISO from DIR (tor-ramdisk-*-<arch>*.iso)
  --memory MB     the guest's RAM (default: the machine definition's, qemu/<arch>.json)`,
    options: { ...common, image: { type: 'string' }, memory: { type: 'string' } },
    async run(values) {
      const [arch] = archList(values.arch);
      if (archList(values.arch).length !== 1) throw new InputError('testnet boots one arch: --arch x86_64 or --arch i686');
      const memory = values.memory === undefined ? undefined : Number(values.memory);
      if (memory !== undefined && !(Number.isInteger(memory) && memory >= 32 && memory <= 65536)) throw new InputError(`--memory ${String(values.memory)}: a whole number of MiB from 32 to 65536`);
      const iso = await isoFor(values, arch!);
      const stdin = process.stdin;
      let quit: () => void = () => undefined;
      const end = new Promise<void>((resolve) => (quit = resolve));
      await testnetSession(arch!, iso, memory, {
        input: (type) => {
          if (stdin.isTTY) stdin.setRawMode(true);
          stdin.on('data', (chunk: Buffer) => (chunk.includes(0x1d) ? quit() : type(chunk.toString('utf8'))));
        },
        output: (text) => process.stdout.write(text),
        end,
        note: (line) => process.stderr.write(`\r\ntestnet: ${line.replace(/\n/g, '\r\n')}\r\n`),
      });
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    },
  },
  release: {
    summary: 'build, smoke-test and sign a release directory: images, SBOMs, SHA256SUMS and its signature',
    usage: `tor-ramdisk release --sign-key KEYID [--arch A|all] [--out DIR] [--scenario NAME…] [options]

Builds every image of each arch (default: all), runs the smoke scenarios on each ISO, and writes
DIR (default ./tor-ramdisk-<tor version>): tor-ramdisk-<version>-<arch>.{iso,bzImage,
initramfs.cpio.xz}, -embedded.bzImage, a CycloneDX SBOM per arch (.cdx.json), SHA256SUMS and
SHA256SUMS.asc, a detached signature by KEYID (gpg, $GNUPGHOME). Images not built for release
say so in their names (-host, -unlocked). DIR must not exist; nothing is left of a failed run.
Check one with: sha256sum -c SHA256SUMS && gpgv --keyring KEY.gpg SHA256SUMS.asc SHA256SUMS

${configHelp}
  --sign-key ID   the maintainer's OpenPGP key
  --out DIR       the release directory
  --scenario N    run only these smoke scenarios, repeatable
  --verify-reproducible  build everything twice from nothing, in two fresh stage caches under
                  $TMPDIR (other paths, another umask, another time), and release only if
                  every image is bit-identical; else name the files and their first differing
                  member (cpio, ISO, FAT)`,
    options: {
      ...common,
      arch: { type: 'string', default: 'all' },
      'sign-key': { type: 'string' },
      out: { type: 'string' },
      scenario: { type: 'string', multiple: true },
      'verify-reproducible': { type: 'boolean' },
    },
    async run(values) {
      if (!values['sign-key']) throw new InputError('release needs --sign-key KEYID: a release is signed', { hint: 'Name the maintainer key gpg holds (gpg --list-secret-keys).' });
      const pins = await loadPins();
      const dirs = await openCache(cacheRootFrom(values.cache));
      // --verify-reproducible: two builds from nothing, each in a fresh stage cache of its own
      // (other build paths), the second under another umask, both sharing the verified downloads.
      const verify = Boolean(values['verify-reproducible']);
      const fresh = async (name: string) => {
        const root = await mkdtemp(join(tmpdir(), `tor-ramdisk-${name}-`));
        await symlink(dirs.downloads.dir, join(root, 'downloads'));
        return openCache(root);
      };
      const [first, second] = verify ? [await fresh('reproducible-a'), await fresh('reproducible-b')] : [dirs, undefined];
      const arches = await Promise.all(
        archList(values.arch).map(async (arch) => {
          const config = await configFor(selection(values, arch));
          const build = (cache: CacheDirs) => buildStages({ registry: stages, targets: defaultTargets(), config, pins, store: cache.store, downloads: cache.downloads, renderer: renderer() });
          const rebuild = async () => {
            const umask = process.umask(0o027);
            try {
              return await build(second!);
            } finally {
              process.umask(umask);
            }
          };
          return { config, build: () => build(first), ...(second ? { rebuild } : {}) };
        }),
      );
      const out = resolve(String(values.out ?? `tor-ramdisk-${pins.get('tor')!.version}`));
      const release = await makeRelease({
        arches,
        stages,
        pins,
        out,
        signKey: String(values['sign-key']),
        ...(values.scenario ? { scenarios: values.scenario as string[] } : {}),
        onEvent: (line) => console.error(line),
      });
      for (const file of release.files) console.log(join(release.dir, file));
      for (const cache of verify ? [first, second!] : []) await rm(cache.root, { recursive: true, force: true });
    },
  },
  graph: {
    summary: 'the stage graph, each stage with its key and whether it is cached (DOT or SVG)',
    usage: `tor-ramdisk graph [STAGE…] [--format dot|svg] [options]

Prints the graph of the stages (default: the images and what they need) with each stage's
key and state (cached or to build), as Graphviz DOT (default) or as SVG.

${configHelp}
  --format F      dot or svg`,
    options: { ...common, format: { type: 'string', default: 'dot' } },
    async run(values, targets) {
      const format = String(values.format);
      if (format !== 'dot' && format !== 'svg') throw new InputError(`--format ${format}: expected dot or svg`);
      const pins = await loadPins();
      const { store } = cacheDirs(cacheRootFrom(values.cache));
      for (const arch of archList(values.arch)) {
        const config = await configFor(selection(values, arch));
        const plan = await planStages(stages, targets.length > 0 ? targets : defaultTargets(), config, pins, store);
        const nodes = plan.map((p) => ({ name: p.stage.name, deps: p.stage.deps ?? [], key: p.key, cached: p.cached }));
        const title = `tor-ramdisk stages, ${arch} (${config.toolchainVariant} toolchain)`;
        process.stdout.write(format === 'dot' ? graphDot(nodes, title) : graphSvg(nodes, title));
      }
    },
  },
  kernel: {
    summary: 'kernel check: each kernel fragment symbol, wanted and actual, and the hardware list',
    usage: `tor-ramdisk kernel check [--arch A] [options]

Configures the kernel (a cached stage after the first run) and prints every symbol the
fragments in kernel/ set, with the wanted and the actual value, then each device of the
hardware list (kernel/hardware.md) with its symbol's value. A listed device the kernel
lacks fails the check (exit 3).

${configHelp}`,
    options: { ...common },
    async run(values, positionals) {
      if (positionals[0] !== 'check' || positionals.length !== 1) throw new InputError('usage: tor-ramdisk kernel check [--arch A]');
      const missing: string[] = [];
      for (const arch of archList(values.arch)) {
        const dir = await stageOutput(values, arch, 'kernel-config');
        const report = JSON.parse(await readFile(join(dir, 'fragments.json'), 'utf8')) as FragmentReport[];
        const width = Math.max(...report.map((r) => r.symbol.length));
        console.log(`kernel configuration for ${arch}: ${report.length} symbols set by fragments`);
        // A later fragment (the debug layer's) may set a symbol again: the last one is what is wanted.
        const last = new Map(report.map((r) => [r.symbol, r.fragment]));
        for (const r of report) {
          const over = last.get(r.symbol) !== r.fragment ? `  (set again by ${last.get(r.symbol)})` : '';
          const mark = over ? 'over' : r.wanted === r.actual ? 'ok  ' : 'DIFF';
          console.log(`${mark}  ${r.fragment.padEnd(26)} ${r.symbol.padEnd(width)}  wanted ${r.wanted.padEnd(6)} actual ${r.actual}${over}`);
        }
        const config = parseKconfig(await readFile(join(dir, 'config'), 'utf8'), `kernel-config ${arch}`);
        const hardware = hardwareReport(await readHardwareList(), arch, configValues(config));
        const deviceWidth = Math.max(...hardware.map((h) => h.device.device.length));
        console.log(`hardware for ${arch} (kernel/hardware.md): ${hardware.length} devices`);
        for (const { device, actual } of hardware) console.log(`${actual === 'y' ? 'ok  ' : 'MISS'}  ${device.device.padEnd(deviceWidth)}  ${device.symbol}=${actual}  ${device.where}`);
        missing.push(...hardware.filter((h) => h.actual !== 'y').map((h) => `${arch}: ${h.device.device} (${h.device.symbol}=${h.actual})`));
      }
      if (missing.length > 0) {
        throw new TorRamdiskError('ERR_KERNEL_HARDWARE', 'verification', `kernel check: the kernel lacks ${missing.length} device(s) of kernel/hardware.md: ${missing.join(', ')}`, {
          hint: 'Build the symbol in (a fragment in kernel/), or take the device off the list and say why there.',
        });
      }
    },
  },
  linkage: {
    summary: 'the image\'s linkage graph: each object and the sonames it needs (--consumers: the inverse)',
    usage: `tor-ramdisk linkage [--arch A] [--consumers SONAME] [options]

Builds the initramfs (a cached stage after the first run) and prints, per ABI, every ELF
object in it with the sonames it needs (DT_NEEDED). --consumers SONAME prints the inverse:
which object provides SONAME and every object that needs it.

${configHelp}`,
    options: { ...common, consumers: { type: 'string' } },
    async run(values) {
      for (const arch of archList(values.arch)) {
        const record = JSON.parse(await readFile(join(await stageOutput(values, arch, 'initramfs', 'silent'), 'linkage.json'), 'utf8')) as LinkageRecord;
        console.log(formatLinkage(record, values.consumers === undefined ? undefined : String(values.consumers)));
      }
    },
  },
  audit: {
    summary: 'the hardening of every ELF object in the image (PIE, RELRO, BIND_NOW, SSP, NX, W^X, TEXTREL, FORTIFY)',
    usage: `tor-ramdisk audit [--arch A] [--json] [options]

Builds the initramfs (a cached stage after the first run; the build itself fails when an
object misses a property configs/audit-policy.json requires) and prints the audit of
every ELF object in it: yes, no (NO where the policy requires it) or n/a.

${configHelp}
  --json          the rows as JSON, each property with its reason`,
    options: { ...common, json: { type: 'boolean' } },
    async run(values) {
      for (const arch of archList(values.arch)) {
        const dir = await stageOutput(values, arch, 'initramfs', 'silent');
        if (values.json) process.stdout.write(await readFile(join(dir, 'audit.json'), 'utf8'));
        else console.log(`${arch}\n${await readFile(join(dir, 'audit.txt'), 'utf8')}`);
      }
    },
  },
  bundle: {
    summary: 'bundle seal|open|inspect: the relay state (torrc, keys/) as the image exports it',
    usage: `tor-ramdisk bundle seal STATE_DIR BUNDLE [--iterations N] [--passphrase-file F]
tor-ramdisk bundle open BUNDLE NEW_DIR [--passphrase-file F]
tor-ramdisk bundle inspect BUNDLE [--passphrase-file F]

STATE_DIR holds torrc and keys/. The passphrase comes from --passphrase-file, from
standard input when it is not a terminal, or from a hidden prompt; never from argv.
open writes into a directory that does not exist yet, and only after the whole bundle
verified; inspect lists what a bundle holds.`,
    options: { 'passphrase-file': { type: 'string' }, iterations: { type: 'string' }, help: common.help },
    async run(values, positionals) {
      const [action, ...paths] = positionals;
      const passphraseFile = values['passphrase-file'] as string | undefined;
      if (action === 'seal' && paths.length === 2) {
        const iterations = values.iterations === undefined ? DEFAULT_ITERATIONS : Number(values.iterations);
        if (!Number.isInteger(iterations)) throw new InputError(`--iterations ${String(values.iterations)}: expected a whole number`, { hint: `For example --iterations ${DEFAULT_ITERATIONS} (the default).` });
        const output = paths[1]!;
        if (await stat(output).catch(() => undefined)) throw new InputError(`${output} already exists`, { hint: 'seal writes only a new file, so nothing is overwritten: name another one.' });
        const sealed = seal(packState(await readState(paths[0]!)), await readPassphrase(passphraseFile, true), iterations);
        await writeFile(output, sealed, { mode: 0o600, flag: 'wx' });
        console.log(`sealed ${paths[0]} into ${paths[1]} (${sealed.length} bytes, PBKDF2 ${iterations} iterations)`);
      } else if ((action === 'open' && paths.length === 2) || (action === 'inspect' && paths.length === 1)) {
        const files = await unpackState(open(await readBundle(paths[0]!), await readPassphrase(passphraseFile), paths[0]), paths[0]!);
        if (action === 'open') {
          await mkdir(paths[1]!, { mode: 0o700 }).catch((error: Error) => {
            throw new InputError(`cannot create ${paths[1]}: ${error.message}`, { hint: 'open writes only into a new directory, so nothing is overwritten.' });
          });
          await writeState(files, paths[1]!);
        }
        for (const f of files) console.log(`${f.name.padEnd(40)} ${String(f.data.length).padStart(6)}  ${sha256(f.data).slice(0, 16)}`);
      } else {
        throw new InputError('usage: tor-ramdisk bundle seal STATE_DIR BUNDLE | open BUNDLE NEW_DIR | inspect BUNDLE');
      }
    },
  },
  keys: {
    summary: 'keys renew: a new signing key and certificate for a relay whose master key is kept offline',
    usage: `tor-ramdisk keys renew BUNDLE NEW_BUNDLE --master FILE [--lifetime DAYS] [--passphrase-file F] [--master-passphrase-file F]

For a relay with OfflineMasterKey 1, on the workstation that keeps its master key: tor
--keygen signs a new medium-term signing key with FILE (tor's ed25519_master_id_secret_key,
or the _encrypted one), and NEW_BUNDLE holds it and its certificate (valid DAYS, default 30)
with everything else as in BUNDLE, sealed with the same passphrase. Import NEW_BUNDLE into
the relay before the old certificate expires (the status view says when): at expiry tor
exits. The master secret never enters a bundle. The bundle's passphrase comes as for bundle
open; an encrypted master key's from --master-passphrase-file or a hidden prompt.`,
    options: { master: { type: 'string' }, lifetime: { type: 'string', default: '30' }, 'passphrase-file': { type: 'string' }, 'master-passphrase-file': { type: 'string' }, help: common.help },
    async run(values, positionals) {
      const [action, ...paths] = positionals;
      const masterPath = values.master as string | undefined;
      if (action !== 'renew' || paths.length !== 2 || !masterPath) throw new InputError('usage: tor-ramdisk keys renew BUNDLE NEW_BUNDLE --master FILE');
      const [input, output] = paths as [string, string];
      const lifetime = Number(values.lifetime);
      if (await stat(output).catch(() => undefined)) throw new InputError(`${output} already exists`, { hint: 'renew writes only a new file, so nothing is overwritten: name another one.' });
      const file = await readFile(masterPath).catch((error: NodeJS.ErrnoException) => {
        throw new InputError(`cannot read the master key ${masterPath}: ${error.code ?? error.message}`, { hint: "Name tor's ed25519_master_id_secret_key for this relay." });
      });
      const passphrase = await readPassphrase(values['passphrase-file'] as string | undefined);
      const state = await unpackState(open(await readBundle(input), passphrase, input), input);
      const before = state.find((f) => f.name === SIGNING_CERT);
      const masterPassphraseFile = values['master-passphrase-file'] as string | undefined;
      const master = {
        file,
        source: masterPath,
        passphrase: async () => {
          if (!masterPassphraseFile && !process.stdin.isTTY) throw new InputError(`${masterPath} is encrypted and standard input is not a terminal`, { hint: 'Give its passphrase with --master-passphrase-file.' });
          return readPassphrase(masterPassphraseFile, false, 'master key passphrase: ');
        },
      };
      const renewed = await renewSigningKey(state, master, lifetime, input);
      const sealed = seal(packState(renewed.state), passphrase, DEFAULT_ITERATIONS);
      await writeFile(output, sealed, { mode: 0o600, flag: 'wx' });
      const was = before ? expiryText(parseSigningCert(before.data, `${input}: ${SIGNING_CERT}`).expires) : 'none';
      console.log(`ed25519 identity ${renewed.cert.signedBy}: signing certificate until ${expiryText(renewed.cert.expires)} (was ${was}); sealed into ${output}`);
    },
  },
  config: {
    summary: 'print the resolved configuration (--explain: with the layer that set each value)',
    usage: `tor-ramdisk config [--explain] [options]

${configHelp}`,
    options: { ...common, explain: { type: 'boolean' } },
    async run(values) {
      for (const arch of archList(values.arch)) {
        const config = await configFor(selection(values, arch));
        if (values.explain) console.log(explainConfig(config));
        else console.log(JSON.stringify(Object.fromEntries([...config.values].map(([k, v]) => [k, v.value])), null, 2));
      }
    },
  },
  doctor: {
    summary: 'list missing host tools and the one command that installs them (--install: run it)',
    usage: `tor-ramdisk doctor [--tests] [--install]

Checks that every host tool the stages declare (for both arches, with the uClibc-ng and
the host toolchain) is installed (--tests: also what \`npm test\` runs) and prints the one
apt-get command that installs what is missing. --install runs it (as root, on Debian).
A stage runs with a PATH of exactly its declared tools, so this list is the whole of it.`,
    options: { tests: { type: 'boolean' }, install: { type: 'boolean' }, help: common.help },
    async run(values) {
      const needed = [...(await buildTools()), ...(values.tests ? testTools : [])];
      const missing = missingTools(needed);
      if (missing.length === 0) {
        console.log('all host tools are installed');
        return;
      }
      const command = installCommand(missing);
      console.log(`missing: ${missing.map((t) => `${toolName(t)} (${t.package})`).join(', ')}`);
      if (!values.install) {
        console.log(`install them with: ${command}`);
        process.exitCode = ExitCode.missingTool;
        return;
      }
      const env = { DEBIAN_FRONTEND: 'noninteractive' };
      const show = { onLine: (line: string) => console.log(line) };
      await run('apt-get', ['update', '-qq'], { env, ...show });
      await withoutServiceStarts(() => run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packagesFor(missing)], { env, ...show }));
      const still = missingTools(needed);
      if (still.length > 0) throw new MissingToolError(still.map(toolName), installCommand(still));
      console.log('all host tools are installed');
    },
  },
  clean: {
    summary: 'remove stage outputs (--all: downloads too; --abandoned: only dead builds and their resumable steps)',
    usage: `tor-ramdisk clean [--abandoned | --all] [--cache DIR]

Default: remove every stage output and log, keep the verified downloads. Only a cache the
tool made (it holds a .tor-ramdisk-cache marker) is touched, and in it only stages/, logs/
and (--all) downloads/.`,
    options: { all: { type: 'boolean' }, abandoned: { type: 'boolean' }, cache: common.cache, help: common.help },
    async run(values) {
      const dirs = cacheDirs(cacheRootFrom(values.cache));
      if (!(await isCache(dirs.root))) {
        throw new InputError(`${dirs.root} is not a tor-ramdisk cache (it has no ${CACHE_MARKER}): nothing was removed`, {
          hint: 'clean removes only what the tool made, inside a cache it made. Check --cache and $TOR_RAMDISK_CACHE.',
        });
      }
      if (values.abandoned) {
        console.log(`removed ${await dirs.store.sweepAbandoned({ resumable: true })} abandoned build directories`);
        return;
      }
      const removed = [dirs.store.root, dirs.store.logRoot, ...(values.all ? [dirs.downloads.root] : [])];
      for (const dir of removed) await rm(dir, { recursive: true, force: true });
      console.log(`removed ${removed.join(', ')}`);
    },
  },
};

/** A bundle file named on the command line: one that is not there, or too large to be one, is the user's mistake. */
async function readBundle(path: string): Promise<Buffer> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read bundle ${path}: ${error.code === 'ENOENT' ? 'no such file' : (error.code ?? error.message)}`, { hint: 'Name the file the image exported (tor-ramdisk-state.bundle, or what you called it).' });
  });
  if (!info.isFile()) throw new InputError(`${path} is not a file`, { hint: 'Name the bundle file itself.' });
  if (info.size > MAX_BUNDLE_BYTES) throw new InputError(`${path} is ${info.size} bytes: a bundle is at most ${MAX_BUNDLE_BYTES}`, { hint: 'This is not a tor-ramdisk bundle.' });
  return readFile(path);
}

/** Builds one stage (and what it needs), or takes it from the cache: its output directory. */
async function stageOutput(values: Record<string, unknown>, arch: Arch, stage: string, show: Renderer = renderer()): Promise<string> {
  const dirs = await openCache(cacheRootFrom(values.cache));
  const config = await configFor(selection(values, arch));
  const results = await buildStages({ registry: stages, targets: [stage], config, pins: await loadPins(), store: dirs.store, downloads: dirs.downloads, renderer: show });
  return results.find((r) => r.stage === stage)!.dir;
}

function defaultTargets(): string[] {
  return [...IMAGE_TARGETS];
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'tor-ramdisk: build tor-ramdisk images, a tiny Linux that runs a Tor relay from RAM',
    '',
    'usage: tor-ramdisk <command> [options]   (tor-ramdisk <command> --help for more)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    `stages: ${stages.map((s) => s.name).join(', ')}`,
    'exit codes: 0 ok, 1 internal error, 2 bad input, 3 verification failed, 4 build failed, 5 missing host tool, 6 fetch failed, 7 local filesystem',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : ExitCode.badInput;
  }
  const command = commands[name];
  if (!command) {
    console.error(`tor-ramdisk: unknown command "${name}"\n\n${usage()}`);
    return ExitCode.badInput;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: command.options ?? {}, allowPositionals: true, strict: true });
    } catch (error) {
      throw new InputError(`${name}: ${(error as Error).message}`, { hint: `tor-ramdisk ${name} --help` });
    }
    if (parsed.values.help) {
      console.log(command.usage);
      return 0;
    }
    await command.run(parsed.values as Record<string, unknown>, parsed.positionals);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    return report(error);
  }
}

function report(raw: unknown): number {
  const error = localFsError(raw) ?? raw;
  if (error instanceof TorRamdiskError) {
    console.error(`tor-ramdisk: ${error.message}`);
    if (error.hint) console.error(`hint: ${error.hint}`);
    return error.exitCode;
  }
  console.error('tor-ramdisk: internal error:', error);
  return ExitCode.internal;
}

process.exitCode = await main(process.argv.slice(2));
