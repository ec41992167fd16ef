import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import * as tar from 'tar';
import type { ResolvedConfig } from '../config/resolve.js';
import { stageKey } from '../engine/inputs.js';
import type { StageManifest, StageStore } from '../engine/store.js';
import { installCommand, which, type HostTool } from '../engine/tools.js';
import { InputError, localFsError, MissingToolError } from '../errors.js';
import { run } from '../exec.js';
import { sha256, sha256File } from '../hash.js';
import { dearmor, gpgEnv, gpgv } from '../sources/signature.js';
import { BlobMismatchError, dockerCredentials, OCI_MANIFEST, parseRemote, Registry, RegistryError, type Blob } from './registry.js';

/** gpg signs what a build pushes; gpgv (fetching's own) checks what it pulls. */
export const REMOTE_TOOLS: readonly HostTool[] = [{ command: 'gpg', package: 'gnupg' }];

const ARTIFACT = 'application/vnd.tor-ramdisk.stage.v1';
const MANIFEST_BLOB = 'application/vnd.tor-ramdisk.stage.manifest.v1+json';
const OUTPUT_BLOB = 'application/vnd.tor-ramdisk.stage.output.v1.tar+gzip';
const SIGNATURE = 'org.tor-ramdisk.signature';

/**
 * What an entry's signature covers: the stage, its key (a hash of its inputs) and the digests
 * of the two blobs that make the output. A key says nothing about the bytes under it, so a
 * registry anyone can write may serve anything; a signature by a pinned key over both is
 * what makes an entry usable.
 */
export function statement(stage: string, key: string, manifest: string, output: string): string {
  return `tor-ramdisk stage cache entry\nstage ${stage}\nkey ${key}\nmanifest ${manifest}\noutput ${output}\n`;
}

/** The tag of a stage output in the repository. */
export function tagFor(stage: string, key: string): string {
  return `${stage}-${key}`;
}

interface OciManifest {
  schemaVersion: number;
  mediaType: string;
  artifactType?: string;
  config: Blob & { mediaType: string };
  layers: (Blob & { mediaType: string })[];
  annotations?: Record<string, string>;
}

export type RemoteTrust = 'signed' | 'none';

/** Outcome of looking a key up: a pulled output, or why it was not used. */
export type PullResult = { pulled: true; manifest: StageManifest; signedBy: string } | { pulled: false; reason: string; missing: boolean };

/**
 * A stage cache shared through an OCI registry (`remote.url`). Before a stage is built its key
 * is looked up there; an entry is used only if it is signed by a key in `remote.keyring` and
 * every blob matches its digest, and it lands through the store's temp → rename path like a
 * local build. After a build the output is pushed, signed with `remote.signKey`, if one is set.
 */
export class RemoteCache {
  private constructor(
    readonly url: string,
    private readonly registry: Registry,
    readonly trust: RemoteTrust,
    private readonly keyring: string | undefined,
    readonly signKey: string | undefined,
  ) {}

  /** The remote cache the configuration names, checked before anything is built; undefined without `remote.url`. */
  static async open(config: ResolvedConfig, signal?: AbortSignal): Promise<RemoteCache | undefined> {
    const url = String(config.get('remote.url'));
    if (url === '') return undefined;
    const ref = parseRemote(url);
    const trust = config.get('remote.trust') as RemoteTrust;
    const keyringSetting = String(config.get('remote.keyring'));
    const signKey = String(config.get('remote.signKey')) || undefined;
    let keyring: string | undefined;
    if (trust === 'signed') {
      if (keyringSetting === '') {
        throw new InputError(`remote cache ${url}: remote.keyring is not set, so no entry could be trusted`, {
          hint: 'Pin the public keys whose entries you accept: --set remote.keyring=FILE (armored OpenPGP keys). --remote-trust none uses entries unchecked; never for images you ship.',
        });
      }
      keyring = resolve(keyringSetting);
      const text = await readFile(keyring, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new InputError(`remote.keyring ${keyring}: cannot be read (${error.code ?? error.message})`, { hint: 'Name a file of armored OpenPGP public keys.' });
      });
      try {
        dearmor(text, keyring);
      } catch (error) {
        throw new InputError((error as Error).message, { hint: 'remote.keyring must hold armored public keys (gpg --export --armor KEYID).' });
      }
      if (!which('gpgv')) throw new MissingToolError(['gpgv'], installCommand([{ command: 'gpgv', package: 'gpgv' }]));
    }
    if (signKey) {
      if (!which('gpg')) throw new MissingToolError(['gpg'], installCommand(REMOTE_TOOLS));
      await run('gpg', ['--batch', '--list-secret-keys', signKey], { env: gpgEnv() }).catch(() => {
        throw new InputError(`remote.signKey ${signKey}: gpg has no secret key by that name${process.env.GNUPGHOME ? ` in ${process.env.GNUPGHOME}` : ''}`, {
          hint: 'Import the signing key (gpg --import), or leave remote.signKey empty to pull without pushing.',
        });
      });
    }
    return new RemoteCache(url, new Registry(ref, await dockerCredentials(ref.host), signal), trust, keyring, signKey);
  }

  /** What a person must be told before the build starts. */
  get warnings(): string[] {
    return this.trust === 'none'
      ? [`WARNING: remote.trust is none: stage outputs from ${this.url} are used WITHOUT a signature check; whoever can write to that registry decides what this build makes. Never ship such an image.`]
      : [];
  }

  /**
   * Looks the key up and, if the entry verifies, writes its output into `out` (blobs go to
   * `work`). Any fault — no entry, a refused one, a registry gone mid-pull — is an answer, not
   * an error: the caller discards the directory and builds the stage itself.
   */
  async pull(stage: string, key: string, dirs: { out: string; work: string }): Promise<PullResult> {
    try {
      const found = await this.registry.manifest(tagFor(stage, key));
      if (!found) return { pulled: false, reason: 'not in the remote cache', missing: true };
      const manifest = parseManifest(found.bytes);
      const layer = manifest.layers[0]!;
      if (manifest.annotations?.['org.tor-ramdisk.stage'] !== stage || manifest.annotations?.['org.tor-ramdisk.key'] !== key) {
        return { pulled: false, reason: 'refused: the entry under this tag is for another stage or key', missing: false };
      }
      let signedBy = 'nobody (remote.trust is none)';
      if (this.trust === 'signed') {
        const signature = manifest.annotations?.[SIGNATURE];
        if (!signature) return { pulled: false, reason: 'refused: the entry carries no signature', missing: false };
        const statementFile = join(dirs.work, 'statement');
        await writeFile(statementFile, statement(stage, key, manifest.config.digest, layer.digest));
        await writeFile(join(dirs.work, 'statement.asc'), signature);
        const verdict = await gpgv(this.keyring!, [join(dirs.work, 'statement.asc'), statementFile]);
        if ('refused' in verdict) {
          const why = { 'not pinned': 'signed by a key that is not in remote.keyring', bad: 'its signature does not match the entry', unsigned: 'the entry carries no signature', refused: 'gpgv refused its signature' }[verdict.refused];
          return { pulled: false, reason: `refused: ${why}`, missing: false };
        }
        signedBy = verdict.valid[0]!;
      }
      const manifestFile = join(dirs.work, 'manifest.json');
      await this.registry.blobTo(manifest.config, manifestFile);
      const stageManifest = JSON.parse(await readFile(manifestFile, 'utf8')) as StageManifest;
      if (stageManifest.key !== key || stageKey(stageManifest.inputs) !== key) {
        return { pulled: false, reason: 'refused: the manifest it carries does not hash to the key', missing: false };
      }
      const outputFile = join(dirs.work, 'output.tar.gz');
      await this.registry.blobTo(layer, outputFile);
      await unpackOutput(outputFile, dirs.out);
      return { pulled: true, manifest: stageManifest, signedBy };
    } catch (error) {
      if (error instanceof BlobMismatchError) return { pulled: false, reason: `refused: ${error.message}`, missing: false };
      if (error instanceof RegistryError) return { pulled: false, reason: `the registry failed: ${error.message}`, missing: false };
      if (error instanceof SyntaxError || error instanceof EntryError) return { pulled: false, reason: `refused: ${error.message}`, missing: false };
      throw error;
    }
  }

  /** Pushes a committed output, signed; the registry's failures are the caller's warning, never a failed build. */
  async push(stage: string, key: string, store: StageStore): Promise<void> {
    if (!this.signKey) return;
    // Under the key's lock, in a directory named as the store's own temp directories: a push killed midway is swept like a killed build.
    const unlock = await store.lock(stage, key);
    const scratch = await mkdtemp(join(store.root, stage, `.tmp-${key}-push-`));
    try {
      const entry = store.entryDir(stage, key);
      const manifestBytes = await readFile(join(entry, 'manifest.json'));
      const outputFile = join(scratch, 'output.tar.gz');
      await tar.c({ gzip: true, cwd: store.outDir(stage, key), file: outputFile }, ['.']);
      const config: Blob = { digest: `sha256:${sha256(manifestBytes)}`, size: manifestBytes.length };
      const layer: Blob = { digest: `sha256:${await sha256File(outputFile)}`, size: (await stat(outputFile)).size };
      const manifestFile = join(scratch, 'manifest.json');
      await writeFile(manifestFile, manifestBytes);
      const statementFile = join(scratch, 'statement');
      await writeFile(statementFile, statement(stage, key, config.digest, layer.digest));
      const { stdout: signature } = await run('gpg', ['--batch', '--yes', '--local-user', this.signKey, '--armor', '--detach-sign', '--output', '-', statementFile], { env: gpgEnv() });
      await this.registry.pushBlob(manifestFile, config);
      await this.registry.pushBlob(outputFile, layer);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: ARTIFACT,
        config: { mediaType: MANIFEST_BLOB, ...config },
        layers: [{ mediaType: OUTPUT_BLOB, ...layer }],
        annotations: { 'org.tor-ramdisk.stage': stage, 'org.tor-ramdisk.key': key, [SIGNATURE]: signature.endsWith('\n') ? signature : `${signature}\n` },
      };
      await this.registry.putManifest(tagFor(stage, key), Buffer.from(JSON.stringify(manifest)));
    } finally {
      await rm(scratch, { recursive: true, force: true });
      await unlock();
    }
  }
}

class EntryError extends Error {}

/**
 * Unpacks a verified output archive as the stage wrote it: modes exact, owner this user,
 * symlinks as they were (a host toolchain links to /usr/bin); no member outside `out`.
 */
async function unpackOutput(file: string, out: string): Promise<void> {
  const outside: string[] = [];
  try {
    await tar.x({
      file,
      cwd: out,
      preserveOwner: false,
      chmod: true,
      processUmask: 0,
      strict: true,
      preservePaths: true,
      filter: (path) => {
        const bad = isAbsolute(path) || path.split('/').includes('..');
        if (bad) outside.push(path);
        return !bad;
      },
    });
  } catch (error) {
    throw localFsError(error, `cannot unpack into ${out}`) ?? new EntryError(`the output archive does not unpack: ${(error as Error).message}`);
  }
  if (outside.length > 0) throw new EntryError(`the output archive names paths outside the output: ${outside.slice(0, 3).join(', ')}`);
}

/** The shape a stage entry must have; anything else is refused. */
function parseManifest(bytes: Buffer): OciManifest {
  const manifest = JSON.parse(bytes.toString('utf8')) as OciManifest;
  const digestOk = (b: Blob | undefined) => !!b && /^sha256:[0-9a-f]{64}$/.test(b.digest) && Number.isSafeInteger(b.size) && b.size >= 0;
  if (manifest?.schemaVersion !== 2 || manifest.artifactType !== ARTIFACT || manifest.config?.mediaType !== MANIFEST_BLOB || !digestOk(manifest.config)) {
    throw new EntryError('the manifest under this tag is not a tor-ramdisk stage entry');
  }
  if (manifest.layers?.length !== 1 || manifest.layers[0]!.mediaType !== OUTPUT_BLOB || !digestOk(manifest.layers[0])) {
    throw new EntryError('the entry does not hold exactly one stage output');
  }
  return manifest;
}
