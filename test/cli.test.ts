import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const run = (...args: string[]) => execa('node', [cli, ...args], { reject: false, env: { CI: 'true' } });

test('--help lists the commands and the exit codes', async (t) => {
  const result = await run('--help');
  t.is(result.exitCode, 0);
  for (const command of ['fetch', 'plan', 'build', 'smoke', 'testnet', 'kernel', 'config', 'doctor', 'clean']) t.regex(result.stdout, new RegExp(`^  ${command} `, 'm'));
  t.regex(result.stdout, /exit codes: 0 ok, 1 internal error, 2 bad input, 3 verification failed, 4 build failed, 5 missing host tool, 6 fetch failed, 7 local filesystem/);
  const build = await run('build', '--help');
  t.is(build.exitCode, 0);
  t.regex(build.stdout, /--offline/);
});

test('bad input exits 2 with a message that says what to do', async (t) => {
  const unknown = await run('frobnicate');
  t.is(unknown.exitCode, 2);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);
  const flag = await run('config', '--frob');
  t.is(flag.exitCode, 2);
  t.regex(flag.stderr, /Unknown option '--frob'/);
  t.regex(flag.stderr, /hint: tor-ramdisk config --help/);
  const arch = await run('plan', '--arch', 'arm64');
  t.is(arch.exitCode, 2);
  t.regex(arch.stderr, /--arch arm64: expected x86_64, i686 or all/);
  const testnet = await run('testnet', '--arch', 'all');
  t.is(testnet.exitCode, 2);
  t.regex(testnet.stderr, /testnet boots one arch/);
  const memory = await run('testnet', '--memory', '16');
  t.is(memory.exitCode, 2);
  t.regex(memory.stderr, /--memory 16: a whole number of MiB from 32 to 65536/);
});

test('config --explain names the layer of every value; a locked key reversed in a user file exits 2', async (t) => {
  const explained = await run('config', '--explain', '--arch', 'i686', '--profile', 'bridge');
  t.is(explained.exitCode, 0);
  t.regex(explained.stdout, /^arch\s+"i686"\s+arch\/i686/m);
  t.regex(explained.stdout, /^profile\s+"bridge"\s+profile\/bridge/m);
  const file = join(await mkdtemp(join(tmpdir(), 'tor-ramdisk-cli-')), 'relay.json');
  await writeFile(file, JSON.stringify({ set: { 'hardening.bindNow': false } }));
  const locked = await run('config', '--config', file);
  t.is(locked.exitCode, 2);
  t.regex(locked.stderr, /"hardening\.bindNow" is locked to true by layer base .*layer user \(.*relay\.json\) sets it to false/);
});

test('plan on an empty cache says every stage is to be built, and why', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'tor-ramdisk-plan-'));
  const result = await run('plan', 'kernel', '--cache', cache, '--set', 'toolchain.variant=host');
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /^plan for x86_64:$/m);
  t.regex(result.stdout, /^\s+toolchain\s+to build\s+[0-9a-f]{12}\n\s+never built for this arch$/m);
  t.regex(result.stdout, /^\s+kernel\s+to build/m);
});

test('fetch --offline on an empty cache exits 6 and names every missing file', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'tor-ramdisk-offline-'));
  const result = await run('fetch', '--offline', '--cache', cache, 'tor', 'openssl');
  t.is(result.exitCode, 6);
  t.regex(result.stderr, /lacks 2 file\(s\):\n  - tor tor-[\d.]+\.tar\.gz \(sha256 [0-9a-f]{64}\)\n  - openssl openssl-[\d.]+\.tar\.gz/);
});
