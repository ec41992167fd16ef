import test from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { boot } from '../pipeline/qemu/boot.js';
import { PBKDF2_MS } from '../pipeline/qemu/smoke.js';
import { freePort } from './helpers/ports.js';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { open as hostOpen, seal as hostSeal } from '../pipeline/bundle/format.js';
import { tarArchive } from '../pipeline/bundle/ustar.js';
import { decodeBundle, tarMembers } from './fixtures/runtime/bundle-codec.js';
import { startControlPort } from './fixtures/runtime/control-port.js';
import { startFtpServer } from './fixtures/runtime/ftp-server.js';
import { buildDropbearServer } from './fixtures/runtime/dropbear-server.js';
import { hostBuild } from './helpers/host-build.js';
import { box, exists, leftovers, sh, snapshot, type Box } from './fixtures/runtime/shell.js';
import { KEY, PASSPHRASE, relayKeys, seed } from './fixtures/runtime/relay-state.js';

// Tier: local integration. The image's runtime against servers started here on 127.0.0.1: tor's
// control port, FTP, SSH (the image's own scp client, the dropbear stage, host toolchain); and the
// x86_64 image itself booted under QEMU for an FTP import and export over the serial console.

// --- the control port -----------------------------------------------------------------------

/**
 * A stand-in for tor with RunAsDaemon 1: the parent returns at once, the daemon writes its PidFile
 * and its control cookie a moment later and then answers GETINFO version on a control port of the
 * test's, or (`dies`) exits a second later having answered nothing, as tor does when it cannot
 * load its sandbox.
 */
async function fakeTor(t: import('ava').ExecutionContext, b: Box, fate: 'answers' | 'dies' = 'answers'): Promise<Record<string, string>> {
  const cookie = randomBytes(32);
  await writeFile(join(b.root, 'cookie'), cookie);
  const control = await startControlPort(cookie, { version: '0.4.9.15' });
  t.teardown(() => control.close());
  const fake = join(b.root, 'tor');
  await writeFile(
    fake,
    `#!/bin/sh
case " $* " in *" --verify-config "*) exit 0 ;; esac
pidfile=; cookiefile=; prev=
for a in "$@"; do
	[ "$prev" = --PidFile ] && pidfile=$a
	[ "$prev" = --CookieAuthFile ] && cookiefile=$a
	prev=$a
done
busybox sh -c 'sleep 1.5; cp "$3" "$2"; echo $$ >"$1"; ${fate === 'dies' ? 'sleep 1; exit 1' : 'exec sleep 60'}' daemon "$pidfile" "$cookiefile" ${join(b.root, 'cookie')} </dev/null >/dev/null 2>&1 &
exit 0
`,
    { mode: 0o755 },
  );
  return { TRD_TOR: fake, TRD_CONTROL_PORT: String(fate === 'dies' ? await freePort() : control.port) };
}

test('tor_start reports the daemon\'s pid once it answers on its control port, though RunAsDaemon\'s parent exits before the daemon writes its pid', async (t) => {
  const b = await box();
  await seed(b);
  const result = await sh(b, 'tor_start && tor_status_line=$(tor_pid) && echo "pid now $tor_status_line" && tor_stop', { env: await fakeTor(t, b) });
  const out = String(result.stdout);
  t.is(result.exitCode, 0, String(result.stderr));
  const started = /tor started \(pid (\d+)\)/.exec(out);
  t.truthy(started, out);
  t.regex(out, new RegExp(`pid now ${started![1]}\n`));
  t.regex(out, /tor stopped/);
});

test('a tor that exits as it starts (its sandbox not loaded, say) is not reported started', async (t) => {
  const b = await box();
  await seed(b);
  const result = await sh(b, 'tor_start', { env: await fakeTor(t, b, 'dies') });
  t.is(result.exitCode, 1, String(result.stdout));
  t.notRegex(String(result.stdout), /tor started/);
  t.regex(String(result.stderr), /tor exited as it started/);
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
    MaxMemInQueues: '67108864',
    DirCache: '0',
  };
  const control = await startControlPort(cookie, answers);
  t.teardown(() => control.close());
  await writeFile(join(b.run, 'control.authcookie'), cookie);
  await writeFile(join(b.run, 'tor.pid'), `${process.pid}\n`);
  await seed(b);
  const ed25519 = randomBytes(32).toString('base64').replace(/=+$/, '');
  await writeFile(join(b.data, 'fingerprint-ed25519'), `smoke ${ed25519}\n`);
  // A 96 MiB machine: the image set MaxMemInQueues and DirCache from its RAM.
  const meminfo = join(b.root, 'meminfo');
  await writeFile(meminfo, 'MemTotal:          98304 kB\nMemFree:           50000 kB\n');
  const trace = join(b.root, 'execve.log');
  const result = await sh(b, 'status_show && tor_reload', { env: { TRD_CONTROL_PORT: String(control.port), TRD_TOR: 'true', TRD_MEMINFO: meminfo }, trace });
  t.is(result.exitCode, 0, String(result.stderr));
  const out = String(result.stdout);
  for (const line of ['tor: running', 'version: 0.4.9.15', 'bootstrap: 100% (Done)', `fingerprint: ${answers.fingerprint}`, `ed25519 identity: ${ed25519}`, 'ORPort reachable: yes', 'read: 3145728 bytes (3 MiB)', 'written: 1048576 bytes (1 MiB)', 'MaxMemInQueues: 64 MiB, set from 96 MiB of RAM', 'DirCache: 0, set from 96 MiB of RAM', 'tor reloaded its torrc']) {
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

test('import from the menu while tor runs: a bad bundle leaves tor and the state alone; a good one stops tor for the swap only, then starts it', async (t) => {
  const { b, server, url } = await ftpBox();
  t.teardown(() => server.close());
  const keys = relayKeys();
  const plaintext = tarArchive([{ path: 'torrc', body: 'Nickname imported\nORPort 443\n' }, { path: 'keys/', type: 'dir' }, ...Object.entries(keys).map(([name, body]) => ({ path: `keys/${name}`, body }))]);
  server.files.set('bundles/r1.trd', hostSeal(plaintext, Buffer.from('another passphrase'), 100_000));
  const env = await fakeTor(t, b);
  const before = await snapshot(b);
  // URL, FTP password, bundle passphrase; then (a good bundle only) the question whether to stop tor.
  const menu = (answers: string[]) => sh(b, 'tor_start >/dev/null && echo "before $(tor_pid)"; menu_import; echo "rc $? after $(tor_pid)."; tor_stop >/dev/null', { input: answers.join('\n') + '\n', args: [url], env });
  const bad = await menu([url, 'ftp secret pw', PASSPHRASE]);
  const pids = /before (\d+)\n[^]*rc 1 after (\d+)\./.exec(String(bad.stdout));
  t.truthy(pids, `${bad.stdout}\n${bad.stderr}`);
  t.is(pids![1], pids![2], 'tor was restarted for a bundle that failed');
  t.regex(String(bad.stderr), /refused: [^\n]* failed authentication: wrong passphrase/);
  t.notRegex(String(bad.stdout), /stop it to swap|tor stopped/);
  t.deepEqual(await snapshot(b), before);
  server.files.set('bundles/r1.trd', hostSeal(plaintext, Buffer.from(PASSPHRASE), 100_000));
  const good = await menu([url, 'ftp secret pw', PASSPHRASE, 'y']);
  const out = String(good.stdout);
  t.regex(out, /the bundle is good; tor is running: stop it to swap[^\n]*\? \[y\/N\] tor stopped\nimported: the torrc and \d+ key files\ntor started \(pid (\d+)\)\nrc 0 after \1\./, `${out}\n${good.stderr}`);
  t.is((await snapshot(b)).torrc, 'Nickname imported\nORPort 443\n');
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

test('boot import from anonymous FTP: no password is asked, the passphrase comes from fw_cfg', async (t) => {
  const b = await box();
  await seed(b);
  const server = await startFtpServer({ user: 'anonymous', password: '' });
  t.teardown(() => server.close());
  server.files.set('r1.trd', hostSeal(tarArchive([{ path: 'torrc', body: 'Nickname anonymous\n' }, { path: 'keys/', type: 'dir' }]), Buffer.from(PASSPHRASE), 100_000));
  await mkdir(join(b.env.TRD_FWCFG!, 'passphrase'), { recursive: true });
  await writeFile(join(b.env.TRD_FWCFG!, 'passphrase', 'raw'), `${PASSPHRASE}\n`);
  // Nothing on standard input: a question would fail the import.
  const result = await sh(b, 'cmdline_reset; CMD_IMPORT=$1; boot_import </dev/null', { args: [`ftp://127.0.0.1:${server.port}/r1.trd`] });
  t.is(result.exitCode, 0, String(result.stderr));
  t.notRegex(String(result.stdout), /password/);
  t.deepEqual(server.passwords, ['']);
  t.is((await snapshot(b)).torrc, 'Nickname anonymous\n');
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
    timeoutMs: 1_200_000,
  });
  t.teardown(() => guest.kill());

  await guest.waitFor(/password for relay@10\.0\.2\.100 \(empty: none\): /);
  guest.type('ftp secret pw\r');
  await guest.waitFor(/bundle passphrase for ftp:\/\/relay@10\.0\.2\.100\/r1\.trd: /);
  guest.type(`${PASSPHRASE}\r`);
  await guest.waitFor(/imported: the torrc and 7 key files/, PBKDF2_MS);
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
  await guest.waitFor(/exported to ftp:\/\/relay@10\.0\.2\.100\/out\.trd/, PBKDF2_MS);
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
