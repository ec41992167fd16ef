import test from 'ava';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLayers } from '../pipeline/config/layers.js';
import { resolveConfig } from '../pipeline/config/resolve.js';
import { cacheDirs } from '../pipeline/context.js';
import { buildStages } from '../pipeline/engine/build.js';
import type { Stage } from '../pipeline/engine/stage.js';
import { InputError } from '../pipeline/errors.js';
import { sha256 } from '../pipeline/hash.js';
import { RemoteCache, statement, tagFor } from '../pipeline/remote/cache.js';
import { parseRemote, Registry } from '../pipeline/remote/registry.js';
import { parsePins } from '../pipeline/sources/pins.js';
import { throwawayGnupg, type Gnupg } from './helpers/gnupg.js';
import { LOGIN, startCuttingProxy, startRegistry, type TestRegistry } from './helpers/registry.js';

// Two cache directories on one machine stand for two machines; the registry is Debian's
// docker-registry on 127.0.0.1, anonymous or behind the token flow. Keys are made by gpg here.
let open: TestRegistry;
let guarded: TestRegistry;
let gnupg: string;
let pinned: string;

let keys: Gnupg;
const gpg = (...args: string[]) => keys.gpg(...args);

test.before(async () => {
  keys = await throwawayGnupg();
  gnupg = keys.home;
  process.env.GNUPGHOME = gnupg;
  await keys.newKey('CI cache signer <ci@example.invalid>');
  await keys.newKey('Someone else <other@example.invalid>');
  pinned = join(gnupg, 'pinned.asc');
  await writeFile(pinned, await keys.armored('ci@example.invalid'));
  [open, guarded] = await Promise.all([startRegistry(), startRegistry({ token: true })]);
  const docker = await mkdtemp(join(tmpdir(), 'tor-ramdisk-docker-'));
  await writeFile(join(docker, 'config.json'), JSON.stringify({ auths: { [guarded.host]: { auth: Buffer.from(`${LOGIN.username}:${LOGIN.password}`).toString('base64') } } }));
  process.env.DOCKER_CONFIG = docker;
});
test.after.always(async () => {
  await Promise.all([open?.close(), guarded?.close()]);
  await keys?.close();
});

/** Two stages whose output has what a real one has: executables, a private file, a symlink, a hard link, a tree, incompressible bytes. */
function stagesFor(builds: string[]): Stage[] {
  return [
    {
      name: 'base',
      title: 'base',
      definition: import.meta.url,
      config: ['build.sourceDateEpoch'],
      async run(ctx) {
        builds.push('base');
        await mkdir(join(ctx.out, 'bin'));
        await mkdir(join(ctx.out, 'share', 'empty'), { recursive: true });
        const noise = Buffer.concat(Array.from({ length: 2048 }, (_, i) => createHash('sha256').update(`${ctx.key}${i}`).digest()));
        await writeFile(join(ctx.out, 'share', 'noise'), noise);
        await writeFile(join(ctx.out, 'bin', 'tool'), `#!/bin/sh\necho ${String(ctx.config.get('build.sourceDateEpoch'))}\n`);
        await chmod(join(ctx.out, 'bin', 'tool'), 0o755);
        await link(join(ctx.out, 'bin', 'tool'), join(ctx.out, 'bin', 'tool-alias'));
        await symlink('tool', join(ctx.out, 'bin', 'tool-link'));
        await writeFile(join(ctx.out, 'secret'), 'private\n', { mode: 0o600 });
      },
    },
    {
      name: 'top',
      title: 'top',
      definition: import.meta.url,
      deps: ['base'],
      async run(ctx) {
        builds.push('top');
        await writeFile(join(ctx.out, 'top.txt'), `on ${sha256(await readFile(join(ctx.deps.base!.dir, 'share', 'noise')))}\n`);
      },
    },
  ];
}

interface Machine {
  root: string;
  build(flags: string[]): Promise<{ builds: string[]; lines: string[]; results: Awaited<ReturnType<typeof buildStages>> }>;
}

async function machine(): Promise<Machine> {
  const root = await mkdtemp(join(tmpdir(), 'tor-ramdisk-remote-'));
  const dirs = cacheDirs(root);
  return {
    root,
    async build(flags) {
      const builds: string[] = [];
      const lines: string[] = [];
      const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags }));
      const remote = await RemoteCache.open(config);
      const results = await buildStages({
        registry: stagesFor(builds),
        targets: ['top'],
        config,
        pins: parsePins({ sources: {} }, 'no pins'),
        store: dirs.store,
        downloads: dirs.downloads,
        // One job slot: a pulled stage that kept its slot or its lock would leave the next one waiting forever.
        jobs: 1,
        renderer: 'silent',
        ...(remote ? { remote, onRemote: (line: string) => lines.push(line) } : {}),
      });
      return { builds, lines, results };
    },
  };
}

/** Every path with its type, mode, content and link target, and which paths share an inode: equal trees give equal lists. */
async function tree(dir: string): Promise<string[]> {
  const entries: string[] = [];
  const inodes = new Map<number, string>();
  const walk = async (path: string, rel: string) => {
    for (const name of (await readdir(path)).sort()) {
      const full = join(path, name);
      const info = await lstat(full);
      const mode = (info.mode & 0o7777).toString(8);
      const what = info.isSymbolicLink()
        ? `-> ${await readlink(full)}`
        : info.isDirectory()
          ? 'dir'
          : `${sha256(await readFile(full))}${info.nlink > 1 ? ` same as ${inodes.get(info.ino) ?? (inodes.set(info.ino, `${rel}${name}`), 'first')}` : ''}`;
      entries.push(`${rel}${name} ${info.isSymbolicLink() ? '' : mode} ${what}`);
      if (info.isDirectory()) await walk(full, `${rel}${name}/`);
    }
  };
  await walk(dir, '');
  return entries;
}

const remoteFlags = (host: string, epoch: number, extra: string[] = []) => [`remote.url=oci://${host}/tor-ramdisk/stages`, `remote.keyring=${pinned}`, `build.sourceDateEpoch=${epoch}`, ...extra];
const signing = ['remote.signKey=ci@example.invalid'];

for (const flavour of ['anonymous', 'token'] as const) {
  test(`a second machine takes what the first pushed (${flavour} registry): nothing built, the outputs bit-identical`, async (t) => {
    const registry = flavour === 'token' ? guarded : open;
    const epoch = flavour === 'token' ? 1001 : 1000;
    const a = await machine();
    const first = await a.build(remoteFlags(registry.host, epoch, signing));
    t.deepEqual(first.builds.sort(), ['base', 'top']);
    t.deepEqual(first.lines.filter((l) => l.includes('pushed')).length, 2, first.lines.join('\n'));

    const b = await machine();
    const second = await b.build(remoteFlags(registry.host, epoch));
    t.deepEqual(second.builds, [], second.lines.join('\n'));
    t.true(second.results.every((r) => r.pulled && !r.cached));
    t.true(second.lines.every((l) => /pulled from .* signed by [0-9A-F]{40}/.test(l)), second.lines.join('\n'));
    for (const r of second.results) {
      const original = first.results.find((f) => f.stage === r.stage)!;
      t.is(r.key, original.key);
      t.deepEqual(await tree(r.dir), await tree(original.dir), `${r.stage} differs`);
    }
    t.log((await tree(second.results.find((r) => r.stage === 'base')!.dir)).join('\n'));
    // The timeline shows what came from the registry.
    t.regex(await readFile(join(b.root, 'logs', 'timeline-x86_64.svg'), 'utf8'), /<title>base: pulled from the remote cache in \d+ s<\/title>/);
    // Now in B's own cache.
    const third = await b.build(remoteFlags(registry.host, epoch));
    t.true(third.results.every((r) => r.cached));
    if (flavour === 'token') {
      t.true(registry.tokenScopes.includes('repository:tor-ramdisk/stages:pull'), registry.tokenScopes.join(' '));
      t.true(registry.tokenScopes.includes('repository:tor-ramdisk/stages:pull,push'), registry.tokenScopes.join(' '));
    }
  });
}

// Serial: it swaps the process's DOCKER_CONFIG, which the other tests read.
test.serial('a login the token service refuses: a clear answer, and the build goes on here', async (t) => {
  const docker = await mkdtemp(join(tmpdir(), 'tor-ramdisk-docker-'));
  await writeFile(join(docker, 'config.json'), JSON.stringify({ auths: { [`http://${guarded.host}`]: { username: 'ci', password: 'wrong' } } }));
  const saved = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = docker;
  try {
    const b = await machine();
    const config = resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags: remoteFlags(guarded.host, 1002) }));
    const remote = (await RemoteCache.open(config))!;
    const dirs = { out: await mkdtemp(join(b.root, 'o')), work: await mkdtemp(join(b.root, 'w')) };
    const result = await remote.pull('base', 'f'.repeat(64), dirs);
    t.false(result.pulled);
    t.regex((result as { reason: string }).reason, /the token service http:\/\/127\.0\.0\.1:\d+\/token refused the login of ci \(401\)/);
  } finally {
    process.env.DOCKER_CONFIG = saved;
  }
});

/** Pushes a good entry for `base` from a first machine and hands back its tag's manifest for a test to spoil. */
async function pushed(epoch: number) {
  const a = await machine();
  const first = await a.build(remoteFlags(open.host, epoch, signing));
  const key = first.results.find((r) => r.stage === 'base')!.key;
  const registry = new Registry(parseRemote(`oci://${open.host}/tor-ramdisk/stages`), undefined);
  const manifest = JSON.parse((await registry.manifest(tagFor('base', key)))!.bytes.toString('utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
    annotations: Record<string, string>;
  };
  const replace = (next: typeof manifest) => registry.putManifest(tagFor('base', key), Buffer.from(JSON.stringify(next)));
  return { key, manifest, replace, first };
}

const refusals: { name: string; epoch: number; spoil: (entry: Awaited<ReturnType<typeof pushed>>) => Promise<void>; reason: RegExp }[] = [
  {
    name: 'no signature',
    epoch: 2000,
    spoil: async ({ manifest, replace }) => {
      delete manifest.annotations['org.tor-ramdisk.signature'];
      await replace(manifest);
    },
    reason: /refused: the entry carries no signature/,
  },
  {
    name: 'a signature over something else',
    epoch: 2001,
    spoil: async ({ manifest, replace, key }) => {
      const file = join(gnupg, 'other-statement');
      await writeFile(file, statement('base', key, manifest.config.digest, `sha256:${'0'.repeat(64)}`));
      manifest.annotations['org.tor-ramdisk.signature'] = (await gpg('--local-user', 'ci@example.invalid', '--armor', '--detach-sign', '--output', '-', file)).stdout;
      await replace(manifest);
    },
    reason: /refused: its signature does not match the entry/,
  },
  {
    name: 'a key that is not pinned',
    epoch: 2002,
    spoil: async ({ manifest, replace, key }) => {
      const file = join(gnupg, 'unpinned-statement');
      await writeFile(file, statement('base', key, manifest.config.digest, manifest.layers[0]!.digest));
      manifest.annotations['org.tor-ramdisk.signature'] = (await gpg('--local-user', 'other@example.invalid', '--armor', '--detach-sign', '--output', '-', file)).stdout;
      await replace(manifest);
    },
    reason: /refused: signed by a key that is not in remote\.keyring/,
  },
  {
    name: 'a tampered blob',
    epoch: 2003,
    spoil: async ({ manifest }) => {
      const path = open.blobPath(manifest.layers[0]!.digest);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] ^= 0xff;
      await writeFile(path, bytes);
    },
    reason: /refused: blob sha256:[0-9a-f]{64} arrived as sha256:[0-9a-f]{64} .*tampered with or cut short/,
  },
];

for (const refusal of refusals) {
  test(`an entry with ${refusal.name} is refused with a clear line and built here; the result is the machine's own`, async (t) => {
    const entry = await pushed(refusal.epoch);
    await refusal.spoil(entry);
    const b = await machine();
    const second = await b.build(remoteFlags(open.host, refusal.epoch));
    // top's entry is sound, and its key names base's inputs, not base's bytes: it is still taken.
    t.deepEqual(second.builds, ['base'], second.lines.join('\n'));
    t.true(second.results.find((r) => r.stage === 'top')!.pulled);
    const line = second.lines.find((l) => l.startsWith('WARNING: base '));
    t.truthy(line, second.lines.join('\n'));
    t.regex(line!, refusal.reason);
    t.regex(line!, /built here instead$/);
    t.log(line!);
    const base = second.results.find((r) => r.stage === 'base')!;
    t.false(base.pulled);
    t.deepEqual(await tree(base.dir), await tree(entry.first.results.find((r) => r.stage === 'base')!.dir));
    t.deepEqual((await readdir(join(b.root, 'stages', 'base'))).filter((e) => e.startsWith('.tmp-')), []);
  });
}

test('the registry going away mid-pull leaves nothing trusted: the stage is built here', async (t) => {
  const proxy = await startCuttingProxy(open.host);
  try {
    const a = await machine();
    const first = await a.build(remoteFlags(proxy.host, 3000, signing));
    proxy.cut = true;
    const b = await machine();
    const second = await b.build(remoteFlags(proxy.host, 3000));
    t.deepEqual(second.builds.sort(), ['base', 'top']);
    t.true(second.results.every((r) => !r.pulled));
    const line = second.lines.find((l) => l.startsWith('WARNING: base '));
    t.regex(line ?? second.lines.join('\n'), /the registry failed: blob sha256:[0-9a-f]{64} from http:\/\/127\.0\.0\.1:\d+\/v2\/tor-ramdisk\/stages\/blobs\/sha256:[0-9a-f]{64}: .*; built here instead$/);
    t.log(line!);
    const base = second.results.find((r) => r.stage === 'base')!;
    t.deepEqual(await tree(base.dir), await tree(first.results.find((r) => r.stage === 'base')!.dir));
    const log = await readFile(join(b.root, 'logs', 'base', `${base.key}.log`), 'utf8').catch(() => '');
    t.notRegex(log, /pulled from/);
    t.deepEqual((await readdir(join(b.root, 'stages', 'base'))).filter((e) => e.startsWith('.tmp-')), []);
  } finally {
    await proxy.close();
  }
  // And a registry that is not there at all.
  const c = await machine();
  const third = await c.build(remoteFlags(proxy.host, 3001));
  t.deepEqual(third.builds.sort(), ['base', 'top']);
  t.regex(third.lines.find((l) => l.startsWith('WARNING: base ')) ?? third.lines.join('\n'), /the registry failed: .*ECONNREFUSED/);
});

test('remote.trust none takes an unsigned entry, and says so loudly', async (t) => {
  const entry = await pushed(4000);
  delete entry.manifest.annotations['org.tor-ramdisk.signature'];
  await entry.replace(entry.manifest);
  const b = await machine();
  const second = await b.build([`remote.url=oci://${open.host}/tor-ramdisk/stages`, 'remote.trust=none', 'build.sourceDateEpoch=4000']);
  t.deepEqual(second.builds, []);
  t.regex(second.lines[0]!, /^WARNING: remote\.trust is none: .* WITHOUT a signature check/);
  t.true(second.lines.some((l) => /base: pulled from .* signed by nobody \(remote\.trust is none\)/.test(l)));
});

test('a remote cache set up wrong is refused before anything is built', async (t) => {
  const configWith = async (flags: string[]) => resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'relay', flags }));
  const cases: [string[], RegExp][] = [
    [['remote.url=https://example.invalid/cache'], /expected oci:\/\/HOST\[:PORT\]\/REPOSITORY/],
    [['remote.url=oci://127.0.0.1:1/Upper'], /repository in lower case/],
    [['remote.url=oci://127.0.0.1:1/cache'], /remote\.keyring is not set, so no entry could be trusted/],
    [['remote.url=oci://127.0.0.1:1/cache', 'remote.keyring=/nonexistent/keys.asc'], /remote\.keyring \/nonexistent\/keys\.asc: cannot be read \(ENOENT\)/],
    [['remote.url=oci://127.0.0.1:1/cache', `remote.keyring=${pinned}`, 'remote.signKey=nobody@example.invalid'], /remote\.signKey nobody@example\.invalid: gpg has no secret key by that name/],
  ];
  for (const [flags, message] of cases) {
    const error = await t.throwsAsync(RemoteCache.open(await configWith(flags)), { instanceOf: InputError });
    t.regex(error!.message, message);
  }
});
