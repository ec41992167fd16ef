import test from 'ava';
import { execa } from 'execa';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as hostOpen, seal as hostSeal } from '../pipeline/bundle/format.js';
import { tarArchive, type TarEntry } from '../pipeline/bundle/ustar.js';
import { decodeBundle, encodeBundle, signingCert, tarMembers } from './fixtures/runtime/bundle-codec.js';
import { box, bundleCrypt, exists, leftovers, sh, snapshot } from './fixtures/runtime/shell.js';
import { PASSPHRASE, RELAY_TORRC, relayKeys, seed, shellOpen, shellSeal } from './fixtures/runtime/relay-state.js';

// Tier: unit. The image's export bundle, sealed and opened by its runtime under the host's busybox
// ash and the image's bundle-crypt: the format, the secrets kept out of argv, every refusal leaving the state as it was.

// --- HMAC in shell ---------------------------------------------------------------------------

test('HMAC-SHA256 in shell equals Node crypto, for random keys and messages', async (t) => {
  const b = await box();
  for (const [keyLength, messageLength] of [[32, 0], [32, 1], [0, 100], [1, 55], [63, 64], [64, 65], [65, 1000], [100, 4097], [32, 20_000]] as const) {
    const key = randomBytes(keyLength);
    const message = Buffer.concat([Buffer.from([0, 10, 13, 0x25, 0x5c]), randomBytes(messageLength)]);
    const file = join(b.root, 'message');
    await writeFile(file, message);
    const result = await sh(b, 'hmac_sha256 "$1" <"$2"', { args: [key.toString('hex'), file] });
    t.is(String(result.stdout).trim(), createHmac('sha256', key).update(message).digest('hex'), `key ${keyLength}, message ${message.length}`);
  }
});

// --- bundle-crypt -----------------------------------------------------------------------------

test('bundle-crypt and `openssl enc -aes-256-ctr -pbkdf2 -md sha256` read each other, and derive the same key and iv', async (t) => {
  const crypt = await bundleCrypt();
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-bundle-crypt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = (name: string) => join(dir, name);
  const data = randomBytes(40_000);
  await writeFile(file('plain'), data);
  await writeFile(file('pass'), `${PASSPHRASE}\n`);
  // The passphrase on fd 3, as bundle.sh gives it.
  const run = (args: readonly string[]) => execa('sh', ['-c', '"$0" "$@" 3<"$PASS"', crypt, ...args], { env: { PASS: file('pass') }, reject: false });
  const openssl = ['enc', '-aes-256-ctr', '-pbkdf2', '-md', 'sha256', '-iter', '100000', '-pass', `file:${file('pass')}`];
  t.is((await run(['seal', '100000', file('plain'), file('sealed')])).exitCode, 0);
  await execa('openssl', [...openssl, '-d', '-in', file('sealed'), '-out', file('by-openssl')]);
  t.deepEqual(await readFile(file('by-openssl')), data);
  await execa('openssl', [...openssl, '-in', file('plain'), '-out', file('from-openssl')]);
  t.is((await run(['open', '100000', file('from-openssl'), file('by-crypt')])).exitCode, 0);
  t.deepEqual(await readFile(file('by-crypt')), data);
  t.is((await stat(file('by-crypt'))).mode & 0o777, 0o600);
  const salt = (await readFile(file('from-openssl'))).subarray(8, 16).toString('hex');
  const derived = await run(['derive', '100000', salt]);
  const printed = await execa('openssl', [...openssl, '-S', salt, '-P']);
  const pick = (text: string) => text.split('\n').filter((l) => /^(key|iv) *=/.test(l)).map((l) => l.replace(/ /g, ''));
  t.deepEqual(pick(String(derived.stdout)), pick(printed.stdout));
  // Refusals: exit 1 with a message, and no output file left behind.
  for (const [args, why] of [
    [['open', '100000', file('plain'), file('none')], /no Salted__ header/],
    [['derive', '100000', 'abc'], /the salt is not 8 bytes of hex/],
    [['seal', '0', file('plain'), file('none')], /not an iteration count: 0/],
    [['seal', '100000'], /usage: bundle-crypt/],
  ] as const) {
    const refused = await run(args);
    t.is(refused.exitCode, 1, args.join(' '));
    t.regex(String(refused.stderr), why);
  }
  const empty = await execa(crypt, ['seal', '100000', file('plain'), file('none')], { stdio: ['ignore', 'pipe', 'pipe', 'ignore'], reject: false });
  t.is(empty.exitCode, 1);
  t.regex(String(empty.stderr), /passphrase/);
  t.false(await exists(file('none')));
});

// --- bundles: seal and open --------------------------------------------------------------------

test('a bundle sealed in shell opens in shell, restoring the state byte for byte', async (t) => {
  const b = await box();
  await seed(b);
  const before = await snapshot(b);
  const bundle = join(b.root, 'state.trd');
  const sealed = await shellSeal(b, bundle);
  t.is(sealed.exitCode, 0, String(sealed.stderr));
  await writeFile(b.torrc, 'Nickname somethingelse\n');
  await writeFile(join(b.data, 'keys', 'ed25519_signing_cert'), 'changed');
  await writeFile(join(b.data, 'keys', 'stray'), 'not in the bundle');
  const opened = await shellOpen(b, bundle);
  t.is(opened.exitCode, 0, String(opened.stderr));
  t.deepEqual(await snapshot(b), before);
  t.deepEqual(await leftovers(b), []);
});

test('a shell-sealed bundle follows the format: decoded with Node crypto alone', async (t) => {
  const b = await box({ TRD_ITER: '600000' });
  await seed(b);
  const bundle = join(b.root, 'state.trd');
  t.is((await shellSeal(b, bundle)).exitCode, 0);
  const bytes = await readFile(bundle);
  const decoded = decodeBundle(bytes, Buffer.from(PASSPHRASE));
  t.is(decoded.iterations, 600_000);
  t.true(decoded.macOk, 'HMAC-SHA256(SHA-256(key||iv||label), everything before it)');
  const members = tarMembers(decoded.plaintext);
  const names = members.map((m) => m.name).sort();
  t.deepEqual(names, ['keys/', ...Object.keys(relayKeys()).map((k) => `keys/${k}`), 'torrc'].sort());
  t.true(members.every((m) => (m.name === 'keys/' ? m.type === '5' : m.type === '0')));
  // The host's reader (pipeline/bundle/format.ts) opens it too, and a second seal uses another salt.
  t.deepEqual(hostOpen(bytes, Buffer.from(PASSPHRASE)), decoded.plaintext);
  const again = join(b.root, 'again.trd');
  t.is((await shellSeal(b, again)).exitCode, 0);
  t.notDeepEqual(decodeBundle(await readFile(again), Buffer.from(PASSPHRASE)).salt, decoded.salt);
});

test('a bundle sealed on the host opens in shell', async (t) => {
  const b = await box();
  const keys = relayKeys();
  const plaintext = tarArchive([{ path: 'keys/', type: 'dir', mode: 0o700 }, { path: 'torrc', body: RELAY_TORRC }, ...Object.entries(keys).map(([name, body]) => ({ path: `keys/${name}`, body }))]);
  const bundle = join(b.root, 'host.trd');
  await writeFile(bundle, hostSeal(plaintext, Buffer.from(PASSPHRASE), 100_000));
  const opened = await shellOpen(b, bundle);
  t.is(opened.exitCode, 0, String(opened.stderr));
  const state = await snapshot(b);
  t.is(state.torrc, RELAY_TORRC);
  for (const [name, body] of Object.entries(keys)) t.is(state[`keys/${name}`], body.toString('latin1'), name);
});

test('the passphrase and the derived keys never appear in any argv', async (t) => {
  const b = await box();
  await seed(b);
  const trace = join(b.root, 'execve.log');
  const bundle = join(b.root, 'state.trd');
  const sealed = await sh(b, 'IFS= read -r TRD_PASSPHRASE; bundle_seal "$1" && bundle_open "$1" && bundle_keys "$(bytes_hex "$1" 20 8)" 100000 && echo "$BUNDLE_KEY $BUNDLE_MACKEY"', { input: `${PASSPHRASE}\n`, args: [bundle], trace });
  t.is(sealed.exitCode, 0, String(sealed.stderr));
  const [key, macKey] = String(sealed.stdout).trim().split('\n').pop()!.split(' ');
  const log = await readFile(trace, 'utf8');
  t.regex(log, /execve\("[^"]*\/bundle-crypt", \["[^"]*\/bundle-crypt", "seal"/, 'strace saw bundle-crypt run');
  for (const secret of [PASSPHRASE.slice(0, 12), key!.slice(0, 16), key!.slice(0, 16).toUpperCase(), macKey!.slice(0, 16)]) t.false(log.includes(secret), secret);
});

// --- bundles: refusals, each leaving the current state as it was -------------------------------

async function refused(t: import('ava').ExecutionContext, bundleBytes: Buffer, why: RegExp, passphrase = PASSPHRASE) {
  const b = await box();
  await seed(b);
  const before = await snapshot(b);
  const bundle = join(b.root, 'in.trd');
  await writeFile(bundle, bundleBytes);
  const result = await shellOpen(b, bundle, passphrase);
  t.not(result.exitCode, 0, 'refused');
  t.regex(String(result.stderr), why);
  t.deepEqual(await snapshot(b), before, 'the current state is unchanged');
  t.deepEqual(await leftovers(b), [], 'no staging left behind');
}

function hostile(entries: TarEntry[], iterations = 100_000): Buffer {
  return encodeBundle(tarArchive(entries), Buffer.from(PASSPHRASE), iterations);
}

const goodEntries: TarEntry[] = [
  { path: 'torrc', body: RELAY_TORRC },
  { path: 'keys/', type: 'dir' },
  { path: 'keys/ed25519_master_id_secret_key', body: 'master' },
];
const AUTH = /failed authentication: wrong passphrase, or the file was altered or truncated/;

test('refused: a wrong passphrase', (t) => refused(t, hostile(goodEntries), AUTH, 'Correct horse battery staple'));

for (const [what, offset] of [['in the ciphertext', 200], ['in the iteration count', 11], ['in the salt', 22], ['in the HMAC', -1]] as const) {
  test(`refused: a byte flipped ${what}`, async (t) => {
    const bytes = hostile(goodEntries);
    bytes[offset < 0 ? bytes.length + offset : offset]! ^= 0x01;
    await refused(t, bytes, AUTH);
  });
}

test('refused: a truncated bundle', async (t) => {
  const bytes = hostile(goodEntries);
  await refused(t, bytes.subarray(0, bytes.length - 7), AUTH);
  await refused(t, bytes.subarray(0, 45), /too short to be a bundle/);
});

test('refused: not a bundle, or too few PBKDF2 iterations', async (t) => {
  await refused(t, Buffer.concat([Buffer.from('TRDBUN02'), randomBytes(100)]), /not a tor-ramdisk bundle/);
  await refused(t, hostile(goodEntries, 1000), /only 1000 PBKDF2 iterations \(minimum 100000\)/);
});

const hostileMembers: [string, TarEntry[], RegExp][] = [
  ['a ../ path', [{ path: '../x', body: 'pwned' }], /member "\.\.\/x" has a "\.\." component/],
  ['a ../ inside keys/', [{ path: 'keys/../../x', body: 'pwned' }], /has a "\.\." component/],
  ['an absolute path', [{ path: '/etc/passwd', body: 'pwned' }], /member "\/etc\/passwd" is an absolute path/],
  ['a symlink', [{ path: 'keys/secret_id_key', type: 'symlink', linkpath: '/etc/shadow' }], /is a link/],
  ['a hard link', [{ path: 'keys/secret_id_key', type: 'hardlink', linkpath: 'torrc' }], /is a link/],
  ['a device', [{ path: 'keys/null', type: 'chardev' }], /has tar type '3'/],
  ['a FIFO', [{ path: 'keys/pipe', type: 'fifo' }], /has tar type '6'/],
  ['another file', [{ path: 'authorized_keys', body: 'ssh-ed25519 AAAA' }], /neither torrc nor keys\/<file>/],
  ['a subdirectory of keys/', [{ path: 'keys/sub/', type: 'dir' }], /a directory other than keys\//],
  ['a second torrc', [{ path: 'torrc', body: 'Log notice stdout\n' }], /appears twice/],
  ['a hidden key file', [{ path: 'keys/.hidden', body: 'x' }], /neither torrc nor keys\/<file>/],
];
for (const [what, extra, why] of hostileMembers) {
  test(`refused: a bundle with ${what}`, (t) => refused(t, hostile([...goodEntries, ...extra]), why));
}

test('refused: no torrc, or a torrc that would log', async (t) => {
  await refused(t, hostile([{ path: 'keys/', type: 'dir' }, { path: 'keys/secret_id_key', body: 'k' }]), /the bundle has no torrc/);
  await refused(t, hostile([{ path: 'torrc', body: 'ORPort 9001\nLog notice file /var/lib/tor/log\n' }, ...goodEntries.slice(1)]), /nothing logs in tor-ramdisk/);
});

test('refused: a master secret key with OfflineMasterKey 1; accepted: signing key and cert only', async (t) => {
  const offline = 'ORPort 9001\nOfflineMasterKey 1\n';
  await refused(t, hostile([{ path: 'torrc', body: offline }, ...goodEntries.slice(1), { path: 'keys/ed25519_signing_secret_key', body: 's' }, { path: 'keys/ed25519_signing_cert', body: 'c' }]), /OfflineMasterKey 1, so the master secret key never enters the image/);
  await refused(t, hostile([{ path: 'torrc', body: offline }, { path: 'keys/ed25519_signing_secret_key', body: 's' }]), /OfflineMasterKey 1 needs keys\/ed25519_signing_cert/);
  await refused(t, hostile([{ path: 'torrc', body: RELAY_TORRC }, { path: 'keys/ed25519_signing_cert', body: 'c' }]), /if the master key is kept offline, say OfflineMasterKey 1/);
  const b = await box();
  const bundle = join(b.root, 'offline.trd');
  await writeFile(bundle, hostile([{ path: 'torrc', body: offline }, { path: 'keys/ed25519_signing_secret_key', body: 's' }, { path: 'keys/ed25519_signing_cert', body: 'c' }, { path: 'keys/secret_id_key', body: 'r' }]));
  const opened = await shellOpen(b, bundle);
  t.is(opened.exitCode, 0, String(opened.stderr));
  t.false(await exists(join(b.data, 'keys', 'ed25519_master_id_secret_key')));
});

test('refused: a FamilyId without its family key', async (t) => {
  const torrc = 'ORPort 9001\nFamilyId wweKJrJxUDs1EdtFFHCDtvVgTKftOC/crUl1mYJv830\n';
  await refused(t, hostile([{ path: 'torrc', body: torrc }, ...goodEntries.slice(1)]), /FamilyId, but the bundle has no keys\/\*\.secret_family_key/);
  const b = await box();
  const bundle = join(b.root, 'family.trd');
  await writeFile(bundle, hostile([{ path: 'torrc', body: torrc }, ...goodEntries.slice(1), { path: 'keys/myfamily.secret_family_key', body: 'f' }]));
  t.is((await shellOpen(b, bundle)).exitCode, 0);
});

test('refused: keys without secret_id_key when this relay has one (its RSA identity would change)', (t) =>
  refused(t, hostile([{ path: 'torrc', body: 'ORPort 9001\nOfflineMasterKey 1\n' }, { path: 'keys/ed25519_signing_secret_key', body: 's' }, { path: 'keys/ed25519_signing_cert', body: 'c' }]), /would change the relay's RSA identity/));

test('a bundle without key files replaces the torrc and keeps the keys', async (t) => {
  const b = await box();
  await seed(b);
  const before = await snapshot(b);
  const bundle = join(b.root, 'fresh.trd');
  await writeFile(bundle, hostile([{ path: 'torrc', body: 'Nickname fresh\nORPort 443\n' }, { path: 'keys/', type: 'dir' }]));
  const opened = await shellOpen(b, bundle);
  t.is(opened.exitCode, 0, String(opened.stderr));
  t.regex(String(opened.stdout), /the bundle has no keys: keys\/ is as it was/);
  t.deepEqual(await snapshot(b), { ...before, torrc: 'Nickname fresh\nORPort 443\n' });
});

// --- the signing certificate's expiry ---------------------------------------------------------

test('the signing certificate expiry is read from its expiration-hours field', async (t) => {
  const b = await box();
  const cert = join(b.root, 'ed25519_signing_cert');
  const hours = 492_000; // 2026-02-16 00:00 UTC
  await writeFile(cert, signingCert(hours));
  const result = await sh(b, 'cert_expiry_hours "$1" && cert_expiry_text "$1" $(( $2 * 3600 - 86400 * 29 - 7200 ))', { args: [cert, String(hours)] });
  t.is(result.exitCode, 0, String(result.stderr));
  t.deepEqual(String(result.stdout).split('\n'), [String(hours), '2026-02-16 00:00 UTC, in 29 days 2 hours']);
  const expired = await sh(b, 'cert_expiry_text "$1" $(( $2 * 3600 + 86400 * 3 ))', { args: [cert, String(hours)] });
  t.is(String(expired.stdout).trim(), 'EXPIRED 2026-02-16 00:00 UTC, 3 days ago');
  await writeFile(cert, signingCert(hours, '== ed25519v1-secret: type0 =='));
  t.regex(String((await sh(b, 'cert_expiry_hours "$1"', { args: [cert] })).stderr), /not a tor ed25519 certificate/);
  await writeFile(cert, signingCert(hours, undefined, 5));
  t.regex(String((await sh(b, 'cert_expiry_hours "$1"', { args: [cert] })).stderr), /not a version 1 signing-key certificate/);
});
