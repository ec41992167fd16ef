import test from 'ava';
import { execa } from 'execa';
import { createHmac, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { boot } from '../pipeline/qemu/boot.js';
import { freePort } from './helpers/ports.js';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { open as hostOpen, seal as hostSeal } from '../pipeline/bundle/format.js';
import { tarArchive, type TarEntry } from '../pipeline/bundle/ustar.js';
import { decodeBundle, encodeBundle, signingCert, tarMembers } from './fixtures/runtime/bundle-codec.js';
import { startControlPort } from './fixtures/runtime/control-port.js';
import { startFtpServer } from './fixtures/runtime/ftp-server.js';
import { buildDropbearServer } from './fixtures/runtime/dropbear-server.js';
import { hostBuild } from './helpers/host-build.js';
import { box, exists, leftovers, sh, snapshot, type Box } from './fixtures/runtime/shell.js';

// Tier: unit and local integration. The image's runtime (initramfs/usr/lib/tor-ramdisk) under
// the host's busybox ash and openssl; FTP, SSH and the control port are servers started here
// on 127.0.0.1. The SCP client is the image's own (the dropbear stage, host toolchain), and the
// x86_64 image itself boots under QEMU for an FTP import and export over the serial console.

const PASSPHRASE = 'correct horse battery staple, ünïcode too';
const RELAY_TORRC = 'Nickname ramdisk\nORPort 9001\nContactInfo email:ops[]example.org\n';

async function seed(b: Box, torrc = RELAY_TORRC, keys: Record<string, Buffer> = relayKeys()): Promise<void> {
  await writeFile(b.torrc, torrc);
  await mkdir(join(b.data, 'keys'), { recursive: true, mode: 0o700 });
  for (const [name, body] of Object.entries(keys)) await writeFile(join(b.data, 'keys', name), body, { mode: 0o600 });
}

function relayKeys(): Record<string, Buffer> {
  return {
    ed25519_master_id_secret_key: Buffer.concat([Buffer.from('== ed25519v1-secret: type0 ==\0\0\0'), randomBytes(64)]),
    ed25519_master_id_public_key: randomBytes(64),
    ed25519_signing_secret_key: randomBytes(96),
    ed25519_signing_cert: signingCert(500_000),
    secret_id_key: Buffer.from('-----BEGIN RSA PRIVATE KEY-----\nMIIC\n-----END RSA PRIVATE KEY-----\n'),
    secret_onion_key_ntor: Buffer.concat([randomBytes(40), Buffer.from([0, 10, 13, 0])]),
    'secret_onion_key_ntor.old': randomBytes(96),
  };
}

/** Seal the box's state in shell; the passphrase arrives on stdin, as if typed. */
async function shellSeal(b: Box, out: string, passphrase = PASSPHRASE) {
  return sh(b, 'IFS= read -r TRD_PASSPHRASE; bundle_seal "$1"', { input: `${passphrase}\n`, args: [out] });
}

async function shellOpen(b: Box, bundle: string, passphrase = PASSPHRASE) {
  return sh(b, 'IFS= read -r TRD_PASSPHRASE; bundle_open "$1"', { input: `${passphrase}\n`, args: [bundle] });
}

// --- kernel command line ---------------------------------------------------------------

const KEY = 'SHA256:P9szN0L2ls6KxkVv7Bppv3asnZCn03rY7Msm/c8+ZgA';
const cmdlines: [string, Record<string, string> | RegExp][] = [
  ['console=ttyS0 quiet', { CMD_NET: '', CMD_START: '0', CMD_IMPORT: '' }],
  ['trd.net=dhcp trd.start=1 trd.profile=bridge', { CMD_NET: 'dhcp', CMD_START: '1', CMD_PROFILE: 'bridge' }],
  ['trd.net=static,192.0.2.10/24,192.0.2.1', { CMD_NET: 'static', CMD_NET_ADDR: '192.0.2.10/24', CMD_NET_GW: '192.0.2.1', CMD_NET_DNS: '' }],
  ['trd.net=static,10.0.2.15/24,10.0.2.2,10.0.2.3,2001:db8::53', { CMD_NET_DNS: '10.0.2.3 2001:db8::53' }],
  ['trd.net6=slaac trd.iface=eth1', { CMD_NET6: 'slaac', CMD_IFACE: 'eth1' }],
  ['trd.net6=static,2001:db8::10/64,fe80::1', { CMD_NET6: 'static', CMD_NET6_ADDR: '2001:db8::10/64', CMD_NET6_GW: 'fe80::1' }],
  ['trd.net=dhcp trd.import=ftp://relay@192.0.2.5:2121/bundles/r1.trd trd.start=1', { CMD_IMPORT: 'ftp://relay@192.0.2.5:2121/bundles/r1.trd', CMD_START: '1' }],
  [`trd.net=dhcp trd.import=scp://backup@[2001:db8::5]:2222/srv/r1.trd trd.hostkey=${KEY}`, { CMD_HOSTKEY: KEY }],
  ['trd.net=dhcp trd.import=ftp://relay:hunter2@192.0.2.5/r1.trd', /a password in the URL would be readable by anyone/],
  ['trd.net=dhcp trd.import=scp://backup@192.0.2.5/r1.trd', /needs trd\.hostkey=SHA256/],
  [`trd.net=dhcp trd.import=ftp://relay@192.0.2.5/r1.trd trd.hostkey=${KEY}`, /trd\.hostkey is only for trd\.import=scp/],
  ['trd.import=ftp://relay@192.0.2.5/r1.trd', /trd\.import needs a network/],
  ['trd.net=dhcp trd.import=http://192.0.2.5/r1.trd', /is not an ftp:\/\/ or scp:\/\/ URL/],
  ['trd.net=dhcp trd.import=ftp://relay@192.0.2.5/a;reboot', /the path may use only/],
  ['trd.net=static,192.0.2.10/33,192.0.2.1', /is not an IPv4 ADDR\/PREFIX/],
  ['trd.net=static,192.0.2.10/24', /needs ADDR\/PREFIX and GATEWAY/],
  ['trd.net=static,192.0.2.300/24,192.0.2.1', /is not an IPv4 ADDR\/PREFIX/],
  ['trd.net6=static,2001:db8:::1/64,fe80::1', /is not an IPv6 ADDR\/PREFIX/],
  ['trd.start=yes', /trd\.start=yes: 0 or 1: invalid/],
  ['trd.profile=guard', /relay, bridge or exit/],
  ['trd.hostkey=SHA256:short', /trd\.hostkey=SHA256:short: invalid/],
  ['trd.nett=dhcp', /trd\.nett: unknown parameter/],
  ['trd.net', /needs a value/],
];

for (const [line, expected] of cmdlines) {
  test(`kernel command line: ${line}`, async (t) => {
    const b = await box();
    await writeFile(b.env.TRD_CMDLINE!, `${line}\n`);
    const result = await sh(b, 'cmdline_read && cmdline_show');
    if (expected instanceof RegExp) {
      t.not(result.exitCode, 0, String(result.stdout));
      t.regex(String(result.stderr), expected);
    } else {
      t.is(result.exitCode, 0, String(result.stderr));
      const values = Object.fromEntries(String(result.stdout).split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      for (const [name, value] of Object.entries(expected)) t.is(values[name], value, name);
    }
  });
}

test('a cmdline word that looks like a glob is not expanded', async (t) => {
  const b = await box();
  await writeFile(b.env.TRD_CMDLINE!, 'trd.iface=* init=/init\n');
  const result = await sh(b, 'cmdline_read; cmdline_show');
  t.regex(String(result.stderr), /trd\.iface=\*: invalid/);
});

const urls: [string, string | RegExp][] = [
  ['ftp://192.0.2.5/r.trd', 'ftp anonymous 192.0.2.5 21 r.trd'],
  ['ftp://relay@host.example:2121/dir/r.trd', 'ftp relay host.example 2121 dir/r.trd'],
  ['scp://backup@[2001:db8::5]:2222//srv/r.trd', 'scp backup 2001:db8::5 2222 /srv/r.trd'],
  ['scp://backup@[2001:db8::5]/r.trd', 'scp backup 2001:db8::5 22 r.trd'],
  ['scp://host/r.trd', /bad or missing user name/],
  ['scp://u@2001:db8::5/r.trd', /goes in brackets/],
  ['ftp://u@host/', /names no file/],
  ['ftp://u@host:99999/r', /bad port/],
  ['ftp://u@ho st/r', /bad host/],
  ['ftp://u@host/r\r\nDELE x', /the path may use only/],
];
for (const [url, expected] of urls) {
  test(`url_parse ${JSON.stringify(url)}`, async (t) => {
    const b = await box();
    const result = await sh(b, 'url_parse "$1" && echo "$URL_PROTO $URL_USER $URL_HOST $URL_PORT $URL_PATH"', { args: [url] });
    if (typeof expected === 'string') t.is(String(result.stdout).trim(), expected, String(result.stderr));
    else t.regex(String(result.stderr), expected);
  });
}

// --- torrc generation ----------------------------------------------------------------------

async function generate(profile: string, answers: Record<string, string>) {
  const b = await box();
  const assignments = Object.entries(answers).map(([name, value]) => `${name}=$(printf '%s' '${value.replace(/'/g, "'\\''")}')`);
  const result = await sh(b, `torrc_defaults ${profile}\n${assignments.join('\n')}\ntorrc_generate ${profile} >"$TRD_TORRC" && torrc_check "$TRD_TORRC" && cat "$TRD_TORRC"`);
  return { result, lines: String(result.stdout).split('\n') };
}

const COMMON = ['RunAsDaemon 1', 'User tor', 'DataDirectory /var/lib/tor', 'ControlPort 127.0.0.1:9051', 'CookieAuthentication 1', 'SocksPort 0'];

test('torrc: relay from the answers, nothing logs', async (t) => {
  const { result, lines } = await generate('relay', { TORRC_NICKNAME: 'ramdisk1', TORRC_CONTACT: 'email:ops[]example.org', TORRC_RATE: '10 MBytes' });
  t.is(result.exitCode, 0, String(result.stderr));
  for (const line of [...COMMON, 'Nickname ramdisk1', 'ContactInfo email:ops[]example.org', 'ORPort 9001', 'RelayBandwidthRate 10 MBytes', 'RelayBandwidthBurst 10 MBytes', 'ExitRelay 0', 'ExitPolicy reject *:*']) {
    t.true(lines.includes(line), line);
  }
  t.false(lines.some((l) => /^(log|BridgeRelay|MetricsPort|OfflineMasterKey)\b/i.test(l)), lines.join('\n'));
});

test('torrc: bridge is a plain BridgeRelay on 443 by default', async (t) => {
  const { result, lines } = await generate('bridge', { TORRC_NICKNAME: 'bridge1' });
  t.is(result.exitCode, 0, String(result.stderr));
  for (const line of [...COMMON, 'BridgeRelay 1', 'ORPort 443', 'ExitPolicy reject *:*']) t.true(lines.includes(line), line);
  t.false(lines.some((l) => /^ServerTransportPlugin/.test(l)));
});

test('torrc: exit with the reduced policy, or with listed ports and IPv6', async (t) => {
  const reduced = await generate('exit', {});
  t.is(reduced.result.exitCode, 0, String(reduced.result.stderr));
  t.true(reduced.lines.includes('ExitRelay 1'));
  t.true(reduced.lines.includes('ReducedExitPolicy 1'));
  const ports = await generate('exit', { TORRC_EXIT_POLICY: 'ports', TORRC_EXIT_PORTS: '80 443 8000-8100', TORRC_IPV6EXIT: '1' });
  const policy = ports.lines.filter((l) => l.startsWith('ExitPolicy') || l.startsWith('IPv6Exit'));
  t.deepEqual(policy, ['IPv6Exit 1', 'ExitPolicy accept *:80', 'ExitPolicy accept *:443', 'ExitPolicy accept *:8000-8100', 'ExitPolicy reject *:*']);
});

test('torrc: MetricsPort is loopback-only, and with offline master key and family', async (t) => {
  const family = 'wweKJrJxUDs1EdtFFHCDtvVgTKftOC/crUl1mYJv830';
  const { result, lines } = await generate('relay', { TORRC_METRICS: '1', TORRC_OFFLINE: '1', TORRC_FAMILYID: family, TORRC_MYFAMILY: '$ABCDEF0123456789ABCDEF0123456789ABCDEF01' });
  t.is(result.exitCode, 0, String(result.stderr));
  for (const line of ['MetricsPort 127.0.0.1:9035', 'MetricsPortPolicy accept 127.0.0.1', 'OfflineMasterKey 1', `FamilyId ${family}`]) t.true(lines.includes(line), line);
  t.is(lines.filter((l) => l.startsWith('MetricsPort')).length, 2);
});

const badAnswers: [string, Record<string, string>, RegExp][] = [
  ['a nickname too long', { TORRC_NICKNAME: 'abcdefghijklmnopqrst' }, /Nickname: 1 to 19/],
  ['a nickname with a dash', { TORRC_NICKNAME: 'my-relay' }, /Nickname/],
  ['a ContactInfo with #', { TORRC_CONTACT: 'me #1' }, /ContactInfo/],
  ['an ORPort of 0', { TORRC_ORPORT: '0' }, /ORPort/],
  ['a bandwidth without unit', { TORRC_RATE: '10' }, /RelayBandwidthRate/],
];
for (const [what, answers, why] of badAnswers) {
  test(`torrc: ${what} is refused`, async (t) => {
    const { result } = await generate('relay', answers);
    t.not(result.exitCode, 0);
    t.regex(String(result.stderr), why);
  });
}

const torrcRules: [string, boolean][] = [
  ['Log notice stdout', false],
  ['  log notice file /var/lib/tor/notices', false],
  ['lo notice stdout', false],
  ['%include /etc/tor/extra', false],
  ['RunAsDaemon 0', false],
  ['LogTimeGranularity 1000', true],
  ['# Log notice stdout', true],
];
for (const [line, ok] of torrcRules) {
  test(`torrc_check: "${line}" is ${ok ? 'accepted' : 'refused'}`, async (t) => {
    const b = await box();
    await writeFile(b.torrc, `Nickname a\n${line}\nORPort 9001\n`);
    const result = await sh(b, 'torrc_check "$TRD_TORRC"');
    t.is(result.exitCode === 0, ok, String(result.stderr));
  });
}

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
  t.regex(log, /execve\(".*openssl", \["openssl", "enc"/, 'strace saw openssl run');
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

// --- the control port -----------------------------------------------------------------------

test('tor_start reports the daemon\'s pid, though RunAsDaemon\'s parent exits before the daemon writes it', async (t) => {
  const b = await box();
  await seed(b);
  // A stand-in for tor with RunAsDaemon 1: the parent returns at once, the daemon writes its PidFile a moment later.
  const fake = join(b.root, 'tor');
  await writeFile(
    fake,
    `#!/bin/sh
case " $* " in *" --verify-config "*) exit 0 ;; esac
pidfile=; prev=
for a in "$@"; do [ "$prev" = --PidFile ] && pidfile=$a; prev=$a; done
busybox sh -c 'sleep 1.5; echo $$ >"$1"; exec sleep 60' daemon "$pidfile" </dev/null >/dev/null 2>&1 &
exit 0
`,
    { mode: 0o755 },
  );
  const result = await sh(b, 'tor_start && tor_status_line=$(tor_pid) && echo "pid now $tor_status_line" && tor_stop', { env: { TRD_TOR: fake } });
  const out = String(result.stdout);
  t.is(result.exitCode, 0, String(result.stderr));
  const started = /tor started \(pid (\d+)\)/.exec(out);
  t.truthy(started, out);
  t.regex(out, new RegExp(`pid now ${started![1]}\n`));
  t.regex(out, /tor stopped/);
});

test('status asks the control port with the cookie, which never appears in argv', async (t) => {
  const b = await box();
  const cookie = randomBytes(32);
  const answers = {
    version: '0.4.9.15',
    'status/bootstrap-phase': 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"',
    fingerprint: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
    'status/reachability-succeeded/or': '1',
    'traffic/read': '3145728',
    'traffic/written': '1048576',
  };
  const control = await startControlPort(cookie, answers);
  t.teardown(() => control.close());
  await writeFile(join(b.run, 'control.authcookie'), cookie);
  await writeFile(join(b.run, 'tor.pid'), `${process.pid}\n`);
  await seed(b);
  const trace = join(b.root, 'execve.log');
  const result = await sh(b, 'status_show && tor_reload', { env: { TRD_CONTROL_PORT: String(control.port), TRD_TOR: 'true' }, trace });
  t.is(result.exitCode, 0, String(result.stderr));
  const out = String(result.stdout);
  for (const line of ['tor: running', 'version: 0.4.9.15', 'bootstrap: 100% (Done)', `fingerprint: ${answers.fingerprint}`, 'ORPort reachable: yes', 'read: 3145728 bytes (3 MiB)', 'written: 1048576 bytes (1 MiB)', 'tor reloaded its torrc']) {
    t.true(out.includes(line), line);
  }
  t.regex(out, /signing key certificate: .* UTC/);
  t.true(control.commands.includes('GETINFO status/bootstrap-phase'));
  t.true(control.commands.includes('SIGNAL RELOAD'));
  t.false((await readFile(trace, 'utf8')).includes(cookie.toString('hex').slice(0, 16)));
});

// --- FTP ----------------------------------------------------------------------------------

async function ftpBox() {
  const b = await box();
  await seed(b);
  const server = await startFtpServer({ user: 'relay', password: 'ftp secret pw' });
  return { b, server, url: `ftp://relay@127.0.0.1:${server.port}/bundles/r1.trd` };
}

test('export over FTP: the password reaches the server, never an argv; the upload is renamed into place', async (t) => {
  const { b, server, url } = await ftpBox();
  t.teardown(() => server.close());
  const trace = join(b.root, 'execve.log');
  const result = await sh(b, 'IFS= read -r TRD_PASSPHRASE; IFS= read -r TRD_PASSWORD; transfer_export "$1"', { input: `${PASSPHRASE}\nftp secret pw\n`, args: [url], trace });
  t.is(result.exitCode, 0, String(result.stderr));
  t.deepEqual(server.passwords, ['ftp secret pw']);
  t.deepEqual([...server.files.keys()], ['bundles/r1.trd']);
  t.true(server.commands.includes('STOR bundles/r1.trd.part'));
  const plaintext = hostOpen(server.files.get('bundles/r1.trd')!, Buffer.from(PASSPHRASE));
  t.true(tarMembers(plaintext).some((m) => m.name === 'torrc'));
  const log = await readFile(trace, 'utf8');
  t.regex(log, /"nc", "127\.0\.0\.1"/);
  t.false(log.includes('ftp secret'), 'FTP password in an argv');
  t.false(log.includes(PASSPHRASE.slice(0, 12)), 'passphrase in an argv');
  t.deepEqual(await leftovers(b), []);
});

test('import over FTP replaces the state; a wrong FTP password changes nothing', async (t) => {
  const { b, server, url } = await ftpBox();
  t.teardown(() => server.close());
  const keys = relayKeys();
  const plaintext = tarArchive([{ path: 'torrc', body: 'Nickname imported\nORPort 443\n' }, { path: 'keys/', type: 'dir' }, ...Object.entries(keys).map(([name, body]) => ({ path: `keys/${name}`, body }))]);
  server.files.set('bundles/r1.trd', hostSeal(plaintext, Buffer.from(PASSPHRASE), 100_000));
  const before = await snapshot(b);
  const wrong = await sh(b, 'IFS= read -r TRD_PASSPHRASE; IFS= read -r TRD_PASSWORD; transfer_import "$1"', { input: `${PASSPHRASE}\nnot it\n`, args: [url] });
  t.not(wrong.exitCode, 0);
  t.regex(String(wrong.stderr), /ftp: login as relay \(wrong password\?\) failed: 530/);
  t.deepEqual(await snapshot(b), before);
  const right = await sh(b, 'IFS= read -r TRD_PASSPHRASE; IFS= read -r TRD_PASSWORD; transfer_import "$1"', { input: `${PASSPHRASE}\nftp secret pw\n`, args: [url] });
  t.is(right.exitCode, 0, String(right.stderr));
  const state = await snapshot(b);
  t.is(state.torrc, 'Nickname imported\nORPort 443\n');
  t.is(state['keys/ed25519_master_id_secret_key'], keys.ed25519_master_id_secret_key.toString('latin1'));
  t.deepEqual(await leftovers(b), []);
});

test('boot import: passphrase and password from fw_cfg, nothing asked on the console', async (t) => {
  const { b, server, url } = await ftpBox();
  t.teardown(() => server.close());
  const plaintext = tarArchive([{ path: 'torrc', body: 'Nickname fromboot\n' }, { path: 'keys/', type: 'dir' }, { path: 'keys/ed25519_master_id_secret_key', body: 'm' }, { path: 'keys/secret_id_key', body: 'r' }]);
  server.files.set('bundles/r1.trd', hostSeal(plaintext, Buffer.from(PASSPHRASE), 100_000));
  for (const [name, value] of [['passphrase', `${PASSPHRASE}\n`], ['password', 'ftp secret pw']]) {
    await mkdir(join(b.env.TRD_FWCFG!, name), { recursive: true });
    await writeFile(join(b.env.TRD_FWCFG!, name, 'raw'), value);
  }
  const result = await sh(b, 'cmdline_reset; CMD_IMPORT=$1; boot_import', { args: [url] });
  t.is(result.exitCode, 0, String(result.stderr));
  t.notRegex(String(result.stdout), /password for|passphrase for/);
  t.is((await snapshot(b)).torrc, 'Nickname fromboot\n');
});

test('FTP without EPSV: PASV, a multi-line greeting, and the data port on the control host only', async (t) => {
  const b = await box();
  await seed(b);
  const server = await startFtpServer({ user: 'anonymous', password: '', epsv: false, pasvAddress: '203.0.113.9', greeting: ['220-welcome', '220-to the test', '220 ready'] });
  t.teardown(() => server.close());
  const result = await sh(b, 'IFS= read -r TRD_PASSPHRASE; TRD_PASSWORD=; transfer_export "$1"', { input: `${PASSPHRASE}\n`, args: [`ftp://127.0.0.1:${server.port}/r.trd`] });
  t.is(result.exitCode, 0, String(result.stderr));
  t.true(server.commands.includes('PASV'));
  t.true(server.files.has('r.trd'));
});

test('an FTP server that is not there: a clear message, nothing left behind', async (t) => {
  const b = await box();
  await seed(b);
  const result = await sh(b, 'IFS= read -r TRD_PASSPHRASE; TRD_PASSWORD=x; transfer_export "$1"', { input: `${PASSPHRASE}\n`, args: ['ftp://relay@127.0.0.1:1/r.trd'] });
  t.not(result.exitCode, 0);
  t.regex(String(result.stderr), /ftp: no answer from 127\.0\.0\.1 port 1/);
  t.deepEqual(await leftovers(b), []);
});

// --- SCP: the image's client (the dropbear stage's dbclient and scp, host toolchain) against a
// real SSH server on 127.0.0.1 (dropbear's server, built by the test from the same source) ---

async function scpBox() {
  const dropbear = (await hostBuild('x86_64', ['dropbear'])).dir('dropbear');
  return box({ TRD_DBCLIENT: join(dropbear, 'usr/bin/dbclient'), TRD_SCP: join(dropbear, 'usr/bin/scp') });
}

async function dropbearServer(t: import('ava').ExecutionContext, b: Box) {
  const { dropbear, dropbearkey } = await buildDropbearServer();
  const hostKey = join(b.root, 'hostkey');
  const made = await execa(dropbearkey, ['-t', 'ed25519', '-f', hostKey]);
  const fingerprint = /SHA256:[A-Za-z0-9+/]{43}/.exec(made.stdout)![0];
  // The client's key: root's ~/.ssh/id_dropbear in the box, its public half authorized.
  await mkdir(join(b.home, '.ssh'), { recursive: true, mode: 0o700 });
  const client = await execa(dropbearkey, ['-t', 'ed25519', '-f', join(b.home, '.ssh', 'id_dropbear')]);
  // dropbear wants every directory above authorized_keys closed to others: not under /tmp.
  await mkdir(join(homedir(), '.cache'), { recursive: true, mode: 0o700 });
  const authDir = await mkdtemp(join(homedir(), '.cache', 'tor-ramdisk-test-ssh-'));
  t.teardown(() => rm(authDir, { recursive: true, force: true }));
  await writeFile(join(authDir, 'authorized_keys'), `${client.stdout.split('\n').find((l) => l.startsWith('ssh-ed25519'))}\n`);
  await chmod(join(authDir, 'authorized_keys'), 0o600);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = execa(dropbear, ['-F', '-E', '-s', '-p', `127.0.0.1:${port}`, '-r', hostKey, '-D', authDir, '-P', join(b.root, 'dropbear.pid')], { reject: false });
  t.teardown(() => void server.kill());
  await new Promise((resolve) => setTimeout(resolve, 500));
  const remote = join(b.root, 'remote');
  await mkdir(remote);
  // One slash ends the host; the path starts with the second: an absolute remote path.
  return { fingerprint, url: `scp://${userInfo().username}@127.0.0.1:${port}/${remote}/r1.trd`, remote };
}

test('scp: a host key that does not match the fingerprint is refused; nothing sent, nothing trusted', async (t) => {
  const b = await scpBox();
  await seed(b);
  const { url, remote } = await dropbearServer(t, b);
  const result = await sh(b, 'IFS= read -r TRD_PASSPHRASE; TRD_PASSWORD=; TRD_HOSTKEY=$2; transfer_export "$1"', { input: `${PASSPHRASE}\n`, args: [url, KEY] });
  t.not(result.exitCode, 0);
  t.regex(String(result.stderr), new RegExp(`REFUSED: 127\\.0\\.0\\.1 presented host key SHA256:\\S+, not ${KEY.replace(/[+/]/g, '\\$&')}`));
  t.false(await exists(join(b.home, '.ssh', 'known_hosts')));
  t.false(await exists(join(remote, 'r1.trd')));
  t.false(await exists(join(remote, 'r1.trd.part')));
});

test('scp: with the right fingerprint, export and import round-trip and known_hosts is written', async (t) => {
  const b = await scpBox();
  await seed(b);
  const before = await snapshot(b);
  const { url, fingerprint, remote } = await dropbearServer(t, b);
  const trace = join(b.root, 'execve.log');
  const sent = await sh(b, 'IFS= read -r TRD_PASSPHRASE; TRD_PASSWORD=; TRD_HOSTKEY=$2; transfer_export "$1"', { input: `${PASSPHRASE}\n`, args: [url, fingerprint], trace });
  t.is(sent.exitCode, 0, String(sent.stderr));
  t.true(decodeBundle(await readFile(join(remote, 'r1.trd')), Buffer.from(PASSPHRASE)).macOk);
  t.false(await exists(join(remote, 'r1.trd.part')));
  t.regex(await readFile(join(b.home, '.ssh', 'known_hosts'), 'utf8'), /^127\.0\.0\.1 ssh-ed25519 AAAA/);
  const log = await readFile(trace, 'utf8');
  t.false(log.includes(' -y') || log.includes('"-y"'), 'dbclient -y');
  t.false(log.includes(PASSPHRASE.slice(0, 12)));
  await writeFile(b.torrc, 'changed\n');
  const back = await sh(b, 'IFS= read -r TRD_PASSPHRASE; TRD_PASSWORD=; TRD_HOSTKEY=$2; transfer_import "$1"', { input: `${PASSPHRASE}\n`, args: [url, fingerprint] });
  t.is(back.exitCode, 0, String(back.stderr));
  t.deepEqual(await snapshot(b), before);
});

// --- booting it: the x86_64 image (host toolchain), with an FTP server on 127.0.0.1 ---------

test('boot: DHCP, an FTP import asked on the console, the menu over serial, an export, power off', async (t) => {
  const image = (await hostBuild('x86_64', ['kernel', 'initramfs'])).dir;
  const dataPort = await freePort();
  const server = await startFtpServer({ user: 'relay', password: 'ftp secret pw', passivePort: dataPort });
  t.teardown(() => server.close());
  const keys = relayKeys();
  const plaintext = tarArchive([{ path: 'torrc', body: 'Nickname booted\nORPort 9001\n' }, { path: 'keys/', type: 'dir' }, ...Object.entries(keys).map(([name, body]) => ({ path: `keys/${name}`, body }))]);
  server.files.set('r1.trd', hostSeal(plaintext, Buffer.from(PASSPHRASE), 100_000));
  const forward = (port: number, to: number) => `tcp:10.0.2.100:${port}-cmd:busybox nc 127.0.0.1 ${to}`;
  const guest = await boot({
    arch: 'x86_64',
    kernel: join(image('kernel'), 'bzImage'),
    initrd: join(image('initramfs'), 'initramfs.cpio.xz'),
    append: 'console=ttyS0 trd.net=dhcp trd.import=ftp://relay@10.0.2.100/r1.trd',
    network: { guestfwd: [forward(21, server.port), forward(dataPort, dataPort)] },
    timeoutMs: 600_000,
  });
  t.teardown(() => guest.kill());

  await guest.waitFor(/password for relay@10\.0\.2\.100 \(empty: none\): /);
  guest.type('ftp secret pw\r');
  await guest.waitFor(/bundle passphrase for ftp:\/\/relay@10\.0\.2\.100\/r1\.trd: /);
  guest.type(`${PASSPHRASE}\r`);
  await guest.waitFor(/imported: the torrc and 7 key files/);
  t.regex(await guest.waitFor(/\n> /), /10 +Halt \(power off\)/);
  guest.type('8\r');
  await guest.waitFor(/tor-ramdisk# /);
  guest.type('mount; ls -ln /var/lib/tor/keys; cat /etc/tor/torrc; ps -o pid,user,args; echo END-OF-CHECKS\r');
  const shell = await guest.waitFor(/\nEND-OF-CHECKS/);
  t.regex(shell, /proc on \/proc type proc \([^)]*hidepid=(2|invisible)/);
  t.regex(shell, /tmpfs on \/var\/lib\/tor type tmpfs \([^)]*mode=700,uid=100,gid=100/);
  t.regex(shell, /-rw------- +1 100 +100 .* ed25519_master_id_secret_key/);
  t.regex(shell, /Nickname booted/);
  t.notRegex(shell, /syslogd|klogd/);
  guest.type('exit\r');
  await guest.waitFor(/\n> /);
  guest.type('3\r');
  await guest.waitFor(/\n> /);
  guest.type('8\r');
  await guest.waitFor(/URL: /);
  guest.type('ftp://relay@10.0.2.100/out.trd\r');
  await guest.waitFor(/FTP password for relay@10\.0\.2\.100/);
  guest.type('ftp secret pw\r');
  await guest.waitFor(/bundle passphrase: /);
  guest.type('another passphrase\r');
  await guest.waitFor(/the same passphrase again: /);
  guest.type('another passphrase\r');
  await guest.waitFor(/exported to ftp:\/\/relay@10\.0\.2\.100\/out\.trd/);
  const exported = tarMembers(hostOpen(server.files.get('out.trd')!, Buffer.from('another passphrase')));
  t.deepEqual(exported.map((m) => m.name).sort(), ['keys/', ...Object.keys(keys).map((k) => `keys/${k}`), 'torrc'].sort());
  t.deepEqual(server.passwords, ['ftp secret pw', 'ftp secret pw']);
  guest.type('\r');
  await guest.waitFor(/\n> /);
  guest.type('10\r');
  await guest.waitFor(/export first\? \[y\/N\] /);
  guest.type('n\r');
  await guest.waitFor(/poweroff now\? \[y\/N\] /);
  guest.type('y\r');
  t.is((await guest.exited).exitCode, 0, 'the guest powered off');
});
