import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLayers, parseLayer } from '../pipeline/config/layers.js';
import { explainConfig, resolveConfig } from '../pipeline/config/resolve.js';

async function userFile(content: unknown): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-config-')), 'mine.json');
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('layers apply in order base → arch → profile → user file → flags, and the last one wins', async (t) => {
  const file = await userFile({ set: { 'kernel.compression': 'gzip', 'build.sourceDateEpoch': 1 } });
  const layers = await loadLayers({ arch: 'i686', profile: 'bridge', userFile: file, flags: ['build.sourceDateEpoch=42'] });
  t.deepEqual(
    layers.map((l) => l.name),
    ['base', 'arch/i686', 'profile/bridge', 'user', 'flags'],
  );
  const config = resolveConfig(layers);
  t.is(config.arch, 'i686');
  t.is(config.profile, 'bridge');
  t.is(config.get('kernel.compression'), 'gzip');
  t.is(config.get('build.sourceDateEpoch'), 42);
  t.is(config.values.get('build.sourceDateEpoch')!.layer.name, 'flags');
  t.deepEqual(
    config.values.get('build.sourceDateEpoch')!.overridden.map((o) => o.layer.name),
    ['base', 'user'],
  );
});

test('explain prints every value with the layer that set it', async (t) => {
  const file = await userFile({ set: { 'toolchain.variant': 'host' } });
  const text = explainConfig(resolveConfig(await loadLayers({ arch: 'x86_64', profile: 'exit', userFile: file })));
  t.regex(text, /^layers, in order: base \(configs\/layers\/base\.json\) → arch\/x86_64 .* → profile\/exit .* → user \(/m);
  t.regex(text, /^toolchain\.variant\s+"host"\s+user \(.*mine\.json\)\s+\[overrides base="uclibc"\]$/m);
  t.regex(text, /^logging\.kernel\s+false\s+base \(configs\/layers\/base\.json\)\s+\[locked by base\]$/m);
  t.regex(text, /^profile\s+"exit"\s+profile\/exit/m);
});

test('a user file that reverses a locked invariant is an error naming both layers and the key', async (t) => {
  const file = await userFile({ set: { 'logging.kernel': true } });
  const layers = await loadLayers({ arch: 'x86_64', profile: 'relay', userFile: file });
  const error = t.throws(() => resolveConfig(layers));
  t.regex(error!.message, /config key "logging\.kernel" is locked to false by layer base \(configs\/layers\/base\.json\); layer user \(.*mine\.json\) sets it to true/);
  t.is((error as unknown as { exitCode: number }).exitCode, 2);
});

test('a flag that reverses a locked invariant is refused too; an explicit unlock is allowed and shown', async (t) => {
  t.throws(() => resolveConfig([...baseish(), parseLayer('flags', 'command line', { set: { 'kernel.modules': true } })]), {
    message: /"kernel\.modules" is locked to false by layer base/,
  });
  const unlocked = resolveConfig([...baseish(), parseLayer('debug', 'configs/layers/debug.json', { set: { 'logging.kernel': true }, unlock: ['logging.kernel'] })]);
  t.is(unlocked.get('logging.kernel'), true);
  t.deepEqual(unlocked.unlocked, ['logging.kernel']);
  t.regex(explainConfig(unlocked), /logging\.kernel\s+true\s+debug .*UNLOCKED by debug/);
});

test('setting a locked key to the value it already has is not a reversal', (t) => {
  const config = resolveConfig([...baseish(), parseLayer('user', 'mine.json', { set: { 'hardening.pie': true } })]);
  t.is(config.get('hardening.pie'), true);
});

test('an unknown key is an error naming the file and the key', async (t) => {
  const file = await userFile({ set: { 'hardening.pei': true } });
  const error = await t.throwsAsync(loadLayers({ arch: 'x86_64', profile: 'relay', userFile: file }));
  t.regex(error!.message, /mine\.json: unknown key "hardening\.pei"/);
  t.regex(error!.message, /mine\.json/);
  t.regex((error as unknown as { hint: string }).hint, /hardening\.pie/);
});

test('a wrong type is an error naming the file, the key and the expected type', async (t) => {
  const file = await userFile({ set: { 'build.sourceDateEpoch': 'yesterday' } });
  const error = await t.throwsAsync(loadLayers({ arch: 'x86_64', profile: 'relay', userFile: file }));
  t.regex(error!.message, /mine\.json: key "build\.sourceDateEpoch" must be an integer from 0 to \d+, got "yesterday"/);
  const flag = await t.throwsAsync(loadLayers({ arch: 'x86_64', profile: 'relay', flags: ['toolchain.variant=gcc'] }));
  t.regex(flag!.message, /command line \(--set\): key "toolchain\.variant" must be one of uclibc, host, external, got "gcc"/);
});

test('a user file that is not JSON is an error naming the file', async (t) => {
  const file = await userFile('{ "set": ');
  const error = await t.throwsAsync(loadLayers({ arch: 'x86_64', profile: 'relay', userFile: file }));
  t.regex(error!.message, /config file .*mine\.json is not valid JSON/);
});

function baseish() {
  return [
    parseLayer('base', 'configs/layers/base.json', {
      set: {
        arch: 'x86_64',
        profile: 'relay',
        'toolchain.variant': 'host',
        'toolchain.external.path': '',
        'toolchain.external.prefix': '',
        'hardening.pie': true,
        'hardening.stackProtector': 'strong',
        'hardening.relro': true,
        'hardening.bindNow': true,
        'hardening.nxStack': true,
        'logging.kernel': false,
        'logging.userland': false,
        'kernel.modules': false,
        'kernel.compression': 'xz',
        'build.sourceDateEpoch': 0,
        'remote.url': '',
        'remote.trust': 'signed',
        'remote.keyring': '',
        'remote.signKey': '',
      },
      lock: ['hardening.pie', 'logging.kernel', 'kernel.modules'],
    }),
  ];
}
