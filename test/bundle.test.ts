import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIN_ITERATIONS, open, seal } from '../pipeline/bundle/format.js';
import { packState, unpackState, type StateFile } from '../pipeline/bundle/state.js';
import { tarArchive } from '../pipeline/bundle/ustar.js';

const pass = Buffer.from('correct horse battery staple');
const state: StateFile[] = [
  { name: 'torrc', data: Buffer.from('Nickname trdtest\nORPort 9001\nFamilyId abc\n') },
  { name: 'keys/ed25519_master_id_public_key', data: Buffer.alloc(64, 1) },
  { name: 'keys/ed25519_signing_cert', data: Buffer.alloc(172, 2) },
  { name: 'keys/ed25519_signing_secret_key', data: Buffer.alloc(96, 3) },
  { name: 'keys/secret_onion_key_ntor', data: Buffer.alloc(96, 4) },
  { name: 'keys/myfamily.secret_family_key', data: Buffer.alloc(96, 5) },
];

test('seal then open gives back every file', async (t) => {
  const bundle = seal(packState(state), pass, MIN_ITERATIONS);
  t.deepEqual(bundle.subarray(0, 8).toString('latin1'), 'TRDBUN01');
  t.deepEqual(await unpackState(open(bundle, pass), 'b'), state);
});

test('a wrong passphrase, a flipped byte anywhere, or a truncated file is refused before decrypting', (t) => {
  const bundle = seal(packState(state), pass, MIN_ITERATIONS);
  t.throws(() => open(bundle, Buffer.from('wrong')), { message: /failed authentication: wrong passphrase, or the file was altered or truncated/ });
  for (const offset of [0, 9, 15, 25, 100, bundle.length - 1]) {
    const flipped = Buffer.from(bundle);
    flipped[offset]! ^= 0x01;
    t.throws(() => open(flipped, pass), { message: /not a tor-ramdisk bundle|malformed header|failed authentication|PBKDF2 iterations/ }, `byte ${offset}`);
  }
  t.throws(() => open(bundle.subarray(0, bundle.length - 1), pass), { message: /failed authentication/ });
  t.throws(() => open(bundle.subarray(0, 30), pass), { message: /not a tor-ramdisk bundle \(or is truncated\)/ });
});

test('a weak iteration count is refused both ways', (t) => {
  t.throws(() => seal(packState(state), pass, 1000), { message: /refusing to seal with 1000 PBKDF2 iterations/ });
  const weak = Buffer.from(seal(packState(state), pass, MIN_ITERATIONS));
  weak.writeUInt32BE(1000, 8);
  t.throws(() => open(weak, pass), { message: /asks for only 1000 PBKDF2 iterations/ });
});

test('an authentic bundle whose archive leaves torrc and keys/ is refused whole', async (t) => {
  for (const [entry, why] of [
    [{ path: '../etc/passwd', body: 'x' }, /member "\.\.\/etc\/passwd" is not torrc or keys\/<file>/],
    [{ path: 'keys/link', type: 'symlink' as const, linkpath: '/etc/shadow' }, /member "keys\/link" is a SymbolicLink/],
    [{ path: '/torrc', body: 'x' }, /member "\/torrc" is not torrc/],
  ] as const) {
    const plaintext = tarArchive([{ path: 'torrc', body: 'Nickname x\n' }, entry]);
    await t.throwsAsync(unpackState(open(seal(plaintext, pass, MIN_ITERATIONS), pass), 'evil.trd'), { message: why });
  }
});

test('the format is what openssl enc reads: the image can open what the host sealed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bundle-'));
  const bundle = seal(packState(state), pass, MIN_ITERATIONS);
  await writeFile(join(dir, 'enc'), bundle.subarray(12, bundle.length - 32));
  await writeFile(join(dir, 'pass'), `${pass.toString()}\n`);
  const { stdout } = await execa('sh', ['-c', `openssl enc -d -aes-256-ctr -pbkdf2 -md sha256 -iter ${MIN_ITERATIONS} -pass file:pass -in enc | tar -tf -`], { cwd: dir });
  t.deepEqual(stdout.split('\n'), ['keys/', ...state.map((s) => s.name)]);
});

test('the CLI seals, inspects and opens into a new directory, reading the passphrase from stdin', async (t) => {
  const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bundle-cli-'));
  const { writeState } = await import('../pipeline/bundle/state.js');
  await writeState(state, join(dir, 'state'));
  await writeFile(join(dir, 'pass'), 'secret words\n');
  await execa('node', [cli, 'bundle', 'seal', join(dir, 'state'), join(dir, 'b.trd'), '--iterations', String(MIN_ITERATIONS), '--passphrase-file', join(dir, 'pass')]);
  const inspect = await execa('node', [cli, 'bundle', 'inspect', join(dir, 'b.trd')], { input: 'secret words\n' });
  t.regex(inspect.stdout, /^keys\/myfamily\.secret_family_key\s+96\s+[0-9a-f]{16}$/m);
  await execa('node', [cli, 'bundle', 'open', join(dir, 'b.trd'), join(dir, 'restored')], { input: 'secret words\n' });
  t.deepEqual(await readFile(join(dir, 'restored', 'keys', 'ed25519_signing_cert')), state[2]!.data);
  const again = await execa('node', [cli, 'bundle', 'open', join(dir, 'b.trd'), join(dir, 'restored')], { input: 'secret words\n', reject: false });
  t.is(again.exitCode, 2);
  t.regex(again.stderr, /open writes only into a new directory/);
  const wrong = await execa('node', [cli, 'bundle', 'inspect', join(dir, 'b.trd')], { input: 'not it\n', reject: false });
  t.is(wrong.exitCode, 3);
});
