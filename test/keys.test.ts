import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIN_ITERATIONS, open, seal } from '../pipeline/bundle/format.js';
import { packState, unpackState, type StateFile } from '../pipeline/bundle/state.js';
import { ed25519Identity, MASTER_PUBLIC, MASTER_SECRET, parseSigningCert, SIGNING_CERT, SIGNING_KEY } from '../pipeline/keys/renew.js';

// Tier: integration. `tor-ramdisk keys renew` with Debian's tor, as on an operator's workstation:
// relays made by tor itself, their master keys plain and encrypted.

const cli = fileURLToPath(new URL('../pipeline/cli.js', import.meta.url));
const PASS = 'bundle words';

interface Relay {
  dir: string;
  /** The state a relay with OfflineMasterKey 1 holds: no master secret. */
  state: StateFile[];
  /** Where the master secret is kept, away from the state. */
  master: string;
  bundle: string;
}

/** A relay made by tor (a 2-day signing certificate), its master secret taken out of its state. */
async function offlineRelay(masterPassphrase?: string): Promise<Relay> {
  const dir = await mkdtemp(join(tmpdir(), 'trd-keys-'));
  const data = join(dir, 'data');
  await mkdir(join(data, 'keys'), { recursive: true, mode: 0o700 });
  const torrc = join(dir, 'empty-torrc');
  await writeFile(torrc, '');
  const tor = ['-f', torrc, '--defaults-torrc', torrc, '--DataDirectory', data, '--SigningKeyLifetime', '2 days'];
  if (masterPassphrase) await execa('tor', [...tor, '--keygen', '--passphrase-fd', '0'], { input: `${masterPassphrase}\n` });
  else await execa('tor', [...tor, '--list-fingerprint', '--ORPort', '1']);
  const secret = masterPassphrase ? 'ed25519_master_id_secret_key_encrypted' : 'ed25519_master_id_secret_key';
  const master = join(dir, secret);
  await writeFile(master, await readFile(join(data, 'keys', secret)), { mode: 0o600 });
  const state = [
    { name: 'torrc', data: Buffer.from('Nickname offline\nORPort 9001\nOfflineMasterKey 1\n') },
    ...(await Promise.all((await readdir(join(data, 'keys'))).map(async (key) => ({ name: `keys/${key}`, data: await readFile(join(data, 'keys', key)) })))),
  ].filter((f) => !f.name.startsWith(MASTER_SECRET));
  const bundle = join(dir, 'relay.trd');
  await writeFile(bundle, seal(packState(state), Buffer.from(PASS), MIN_ITERATIONS));
  await writeFile(join(dir, 'pass'), `${PASS}\n`);
  return { dir, state, master, bundle };
}

async function renew(relay: Relay, master: string, extra: string[] = [], out = join(relay.dir, 'renewed.trd')) {
  // Its own TMPDIR: the copy of the master key tor signs with must not outlive the command.
  const tmp = join(relay.dir, 'tmp');
  await mkdir(tmp, { recursive: true });
  const result = await execa('node', [cli, 'keys', 'renew', relay.bundle, out, '--master', master, '--passphrase-file', join(relay.dir, 'pass'), ...extra], { reject: false, env: { TMPDIR: tmp } });
  return { ...result, out, leftInTmp: await readdir(tmp) };
}

const file = (state: StateFile[], name: string) => state.find((f) => f.name === name)!.data;

test('renew: a new signing key and certificate signed by the offline master key, every other file as it was', async (t) => {
  const relay = await offlineRelay();
  const result = await renew(relay, relay.master, ['--lifetime', '60']);
  t.is(result.exitCode, 0, String(result.stderr));
  t.deepEqual(result.leftInTmp, [], 'no copy of the master key is left behind');
  const renewed = await unpackState(open(await readFile(result.out), Buffer.from(PASS)), result.out);
  t.deepEqual(renewed.map((f) => f.name).sort(), relay.state.map((f) => f.name).sort());
  t.false(renewed.some((f) => f.name.startsWith(MASTER_SECRET)), 'the master secret never enters the bundle');
  for (const f of relay.state) {
    if (f.name === SIGNING_CERT || f.name === SIGNING_KEY) t.notDeepEqual(file(renewed, f.name), f.data, `${f.name} is new`);
    else t.deepEqual(file(renewed, f.name), f.data, `${f.name} is unchanged`);
  }
  const identity = ed25519Identity(file(relay.state, MASTER_PUBLIC));
  const before = parseSigningCert(file(relay.state, SIGNING_CERT));
  const after = parseSigningCert(file(renewed, SIGNING_CERT));
  t.is(after.signedBy, identity);
  t.is(before.signedBy, identity);
  const days = (after.expires.getTime() - Date.now()) / 86_400_000;
  t.true(days > 59 && days <= 60.1, `the new certificate is valid 60 days (${days.toFixed(2)})`);
  t.true(after.expires > before.expires);
  t.regex(String(result.stdout), new RegExp(`ed25519 identity ${identity.replace(/[+/]/g, '\\$&')}: signing certificate until \\d{4}-\\d\\d-\\d\\d \\d\\d:00 UTC \\(was \\d{4}-\\d\\d-\\d\\d \\d\\d:00 UTC\\)`));
});

test('renew with an encrypted master key: its passphrase from a file; a wrong one is refused, nothing written', async (t) => {
  const relay = await offlineRelay('master words');
  await writeFile(join(relay.dir, 'wrong'), 'not the master words\n');
  const wrong = await renew(relay, relay.master, ['--master-passphrase-file', join(relay.dir, 'wrong')]);
  t.is(wrong.exitCode, 2, String(wrong.stderr));
  t.regex(String(wrong.stderr), /does not open with that passphrase/);
  t.deepEqual(wrong.leftInTmp, []);
  await t.throwsAsync(readFile(wrong.out), { code: 'ENOENT' });
  await writeFile(join(relay.dir, 'right'), 'master words\n');
  const right = await renew(relay, relay.master, ['--master-passphrase-file', join(relay.dir, 'right')]);
  t.is(right.exitCode, 0, String(right.stderr));
  const renewed = await unpackState(open(await readFile(right.out), Buffer.from(PASS)), right.out);
  t.is(parseSigningCert(file(renewed, SIGNING_CERT)).signedBy, ed25519Identity(file(relay.state, MASTER_PUBLIC)));
});

test('renew refuses another relay\'s master key, a file that is not one, a bundle that holds its master secret, and an existing NEW_BUNDLE', async (t) => {
  const [relay, other] = await Promise.all([offlineRelay(), offlineRelay()]);
  const foreign = await renew(relay, other.master);
  t.is(foreign.exitCode, 2);
  t.regex(String(foreign.stderr), /is not the master key of the relay in \S+relay\.trd/);

  const notKey = await renew(relay, join(relay.dir, 'pass'));
  t.is(notKey.exitCode, 2);
  t.regex(String(notKey.stderr), /is not an ed25519 master secret key file of tor's/);

  const online = { ...relay, bundle: join(relay.dir, 'online.trd') };
  await writeFile(online.bundle, seal(packState([...relay.state, { name: MASTER_SECRET, data: await readFile(relay.master) }]), Buffer.from(PASS), MIN_ITERATIONS));
  const holds = await renew(online, relay.master);
  t.is(holds.exitCode, 2);
  t.regex(String(holds.stderr), /holds keys\/ed25519_master_id_secret_key: this relay's master key is not offline/);

  const existing = join(relay.dir, 'existing.trd');
  await writeFile(existing, 'mine');
  const exists = await renew(relay, relay.master, [], existing);
  t.is(exists.exitCode, 2);
  t.regex(String(exists.stderr), /already exists/);
  t.is(await readFile(existing, 'utf8'), 'mine');
});
