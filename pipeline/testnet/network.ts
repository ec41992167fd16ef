import { createHash, randomBytes } from 'node:crypto';
import { chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_ITERATIONS, seal } from '../bundle/format.js';
import { packState, readState, type StateFile } from '../bundle/state.js';
import type { HostTool } from '../engine/tools.js';
import { TorRamdiskError } from '../errors.js';
import { run, startInteractive } from '../exec.js';
import { TorControl } from './control.js';
import { createNamespace, removeNamespace, type Namespace } from './netns.js';

/** What the private Tor network runs on the host: tor from Debian (never its service), vsftpd, OpenSSH's sshd and busybox's httpd, all inside the namespace. */
export const TESTNET_TOOLS: readonly HostTool[] = [
  { command: 'ip', package: 'iproute2' },
  { command: 'tor', package: 'tor' },
  { command: 'tor-gencert', package: 'tor' },
  { command: 'vsftpd', package: 'vsftpd' },
  { command: 'sshd', package: 'openssh-server' },
  { command: 'ssh-keygen', package: 'openssh-client' },
  // The guest's SSH key, in the dropbear format its scp reads.
  { command: 'dropbearkey', package: 'dropbear-bin' },
  { file: '/bin/busybox', package: 'busybox-static' },
];

/**
 * The network's one /24, on the namespace's bridge: a directory authority (which is also the
 * guest's gateway and its FTP and SSH server), an exit, a middle relay, a web server, and the guest.
 * The client has no address: its SOCKS and control ports are unix sockets.
 */
const NET = '10.200.0';
export const TESTNET = {
  authority: `${NET}.1`,
  exit: `${NET}.2`,
  web: `${NET}.3`,
  middle: `${NET}.4`,
  guest: `${NET}.10`,
  prefix: 24,
  orPort: 5000,
  dirPort: 7000,
  webPort: 8080,
} as const;

/** The guest's kernel command line on this network: its address, and the gateway (the authority: nothing lies beyond it). */
export const GUEST_NET = `trd.net=static,${TESTNET.guest}/${TESTNET.prefix},${TESTNET.authority}`;

/** A running private Tor network. */
export interface Testnet {
  namespace: Namespace;
  dir: string;
  /**
   * A new relay identity (RSA, ed25519 and a family key) with its torrc for this network,
   * sealed with `passphrase` into the FTP root as NAME.trd; `state` is what the bundle holds.
   */
  addRelay(nickname: string, passphrase: string): Promise<{ fingerprint: string; url: string; state: StateFile[] }>;
  /** A file in the FTP root, for guests to fetch by anonymous FTP; its URL. */
  serve(name: string, data: Buffer): Promise<string>;
  /** Where a guest exports to: anonymous FTP upload and SCP as root, each a URL to append a file name to. */
  uploads: {
    ftp: string;
    scp: string;
    /** The SSH server's host key, SHA256:…, as the guest is told it. */
    hostKey: string;
    /** The guest's SSH key (dropbear format, for fw_cfg opt/tor-ramdisk/sshkey); root may log in with it. */
    clientKey: string;
  };
  /** The bundle a guest exported as `file`, as it arrived by each way (absent if it did not). */
  exported(file: string): Promise<{ ftp?: Buffer; scp?: Buffer }>;
  /** Resolves with the relay's flags once the client's consensus lists it as Running. */
  waitForRelay(fingerprint: string, timeoutMs: number): Promise<string[]>;
  /** A circuit authority → relay → exit, and a file fetched through it from the web server: the bytes must match. */
  fetchThrough(fingerprint: string, timeoutMs: number): Promise<{ path: string[]; bytes: number }>;
  /** The end of each node's notice log (for a failure). */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

interface Node {
  name: string;
  dir: string;
  fingerprint: string;
}

/** Starts the network in a namespace of its own (asserted isolated before anything runs). */
export async function startTestnet(): Promise<Testnet> {
  const dir = await mkdtemp(join(tmpdir(), 'trd-testnet-'));
  const addresses = [TESTNET.authority, TESTNET.exit, TESTNET.web, TESTNET.middle].map((a) => `${a}/${TESTNET.prefix}`);
  const namespace = await createNamespace(addresses).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  const daemons: ReturnType<typeof startInteractive>[] = [];
  let control: TorControl | undefined;
  const stop = async () => {
    control?.close();
    for (const daemon of daemons) daemon.kill('SIGTERM');
    await Promise.allSettled(daemons);
    await removeNamespace(namespace);
    await rm(dir, { recursive: true, force: true });
  };
  const start = (command: string, args: string[]) => {
    const [c, a] = namespace.exec(command, args);
    // As long as a guest may run (tor-ramdisk testnet's is a day); stop() ends them sooner.
    const daemon = startInteractive(c, a, { timeoutMs: 24 * 3600_000 });
    daemon.stdout?.resume();
    daemon.stderr?.resume();
    daemons.push(daemon);
  };
  try {
    const authority = await node(dir, 'auth');
    const keys = join(authority.dir, 'keys');
    await run('tor-gencert', ['--create-identity-key', '--passphrase-fd', '0', '-m', '12', '-a', `${TESTNET.authority}:${TESTNET.dirPort}`,
      '-i', join(keys, 'authority_identity_key'), '-s', join(keys, 'authority_signing_key'), '-c', join(keys, 'authority_certificate')], { input: '' });
    const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(await readFile(join(keys, 'authority_certificate'), 'utf8'))![1];
    const dirAuthority = `DirAuthority auth orport=${TESTNET.orPort} no-v2 v3ident=${v3ident} ${TESTNET.authority}:${TESTNET.dirPort} ${authority.fingerprint}`;
    const exit = await node(dir, 'exit');
    const middle = await node(dir, 'middle');
    const client = { name: 'client', dir: join(dir, 'client') };
    await mkdir(client.dir, { mode: 0o700 });
    const common = (n: { name: string; dir: string }) => [
      'TestingTorNetwork 1',
      dirAuthority,
      `DataDirectory ${n.dir}`,
      `Log notice file ${join(n.dir, 'notice.log')}`,
      'RunAsDaemon 0',
      'ShutdownWaitLength 0',
      'SafeLogging 0',
    ];
    const relay = (n: Node, address: string) => [...common(n), `Nickname ${n.name}`, `ContactInfo ${n.name}@testnet.invalid`, `Address ${address}`, `ORPort ${address}:${TESTNET.orPort}`, 'SocksPort 0'];
    const torrcs: [{ name: string; dir: string }, string[]][] = [
      [authority, [
        ...relay(authority, TESTNET.authority),
        `DirPort ${TESTNET.authority}:${TESTNET.dirPort}`,
        'AuthoritativeDirectory 1',
        'V3AuthoritativeDirectory 1',
        'ExitRelay 0',
        // The fastest consensus cycle tor allows: a vote every 20 s.
        'TestingV3AuthInitialVotingInterval 20',
        'TestingV3AuthInitialVoteDelay 4',
        'TestingV3AuthInitialDistDelay 4',
        'V3AuthVotingInterval 20',
        'V3AuthVoteDelay 4',
        'V3AuthDistDelay 4',
        // Flags a network this small never earns for sure: every relay Fast (the bandwidth its
        // idle peers measure is near nothing), the exit exits, the authority and the middle guard.
        'AuthDirFastGuarantee 1',
        `TestingDirAuthVoteExit ${exit.fingerprint}`,
        `TestingDirAuthVoteGuard ${authority.fingerprint},${middle.fingerprint}`,
      ]],
      // Published without the self-test (it needs three other relays): the guest, which has them, makes its own.
      // Ports 80 and 443 anywhere as well as the network itself: a policy summary of only private
      // addresses reads "exits nowhere", and then no node builds general circuits reliably. There
      // is no anywhere: the namespace has no route.
      [exit, [...relay(exit, TESTNET.exit), 'AssumeReachable 1', 'ExitRelay 1', `ExitPolicy accept ${NET}.0/${TESTNET.prefix}:*`, 'ExitPolicy accept *:80', 'ExitPolicy accept *:443', 'ExitPolicy reject *:*']],
      [middle, [...relay(middle, TESTNET.middle), 'AssumeReachable 1', 'ExitRelay 0']],
      // A stream waits a minute for its exit's answer: the guest in the middle runs under software emulation.
      [client, [...common(client), `SocksPort unix:${join(client.dir, 'socks')}`, `ControlPort unix:${join(client.dir, 'control')}`, 'CircuitStreamTimeout 60']],
    ];
    for (const [n, lines] of torrcs) {
      await writeFile(join(n.dir, 'torrc'), `${lines.join('\n')}\n`);
      start('tor', ['-f', join(n.dir, 'torrc')]);
    }

    const web = join(dir, 'web');
    await mkdir(web);
    const payload = randomBytes(256 * 1024);
    await writeFile(join(web, 'payload'), payload);
    start('/bin/busybox', ['httpd', '-f', '-p', `${TESTNET.web}:${TESTNET.webPort}`, '-h', web]);

    const ftp = join(dir, 'ftp');
    const empty = join(dir, 'empty');
    await mkdir(ftp, { mode: 0o755 });
    await mkdir(empty, { mode: 0o755 });
    // Uploads go to incoming/, the anonymous FTP user's; the root stays read-only to it.
    const incoming = join(ftp, 'incoming');
    await mkdir(incoming, { mode: 0o755 });
    const ftpUser = await run('id', ['-u', 'ftp']).then(({ stdout }) => Number(stdout.trim()), () => undefined);
    if (ftpUser === undefined) throw new TorRamdiskError('ERR_TESTNET', 'missingTool', 'vsftpd has no "ftp" user to run anonymous sessions as', { hint: 'Reinstall it: apt-get install --reinstall vsftpd' });
    await chown(incoming, ftpUser, -1);
    await writeFile(join(dir, 'vsftpd.conf'), vsftpdConfig(TESTNET.authority, ftp, empty));
    start('vsftpd', [join(dir, 'vsftpd.conf')]);
    const ssh = await sshServer(dir);
    // By its absolute path: sshd re-executes itself for each connection.
    start('/usr/sbin/sshd', ['-D', '-e', '-f', ssh.config]);

    control = await connectWhenReady(join(client.dir, 'control'), 30_000);
    const ctl = control;
    // Ready when the client's consensus holds the authority, the middle and the exit, Running,
    // with their microdescriptors: what a circuit through the guest needs besides the guest.
    const ready = Date.now() + 240_000;
    for (const n of [authority, middle, exit]) {
      await waitForRelay(ctl, n.fingerprint, ready - Date.now()).catch(async (error: Error) => {
        throw new TorRamdiskError('ERR_TESTNET', 'build', `the private Tor network did not form: ${error.message}; the nodes:\n${await tail([authority, exit, middle, client])}`);
      });
    }
    const serve = async (name: string, data: Buffer) => {
      await writeFile(join(ftp, name), data, { mode: 0o644 });
      return `ftp://${TESTNET.authority}/${name}`;
    };
    return {
      namespace,
      dir,
      addRelay: async (nickname, passphrase) => {
        const n = await node(dir, nickname);
        const state = join(n.dir, 'state');
        await mkdir(join(state, 'keys'), { recursive: true, mode: 0o700 });
        for (const key of await readdir(join(n.dir, 'keys'))) await copyFile(join(n.dir, 'keys', key), join(state, 'keys', key));
        const { stdout } = await run('tor', ['--quiet', '--keygen-family', join(state, 'keys', nickname)]);
        const familyId = /^FamilyId (\S+)$/m.exec(stdout)?.[1];
        if (!familyId) throw new TorRamdiskError('ERR_TESTNET', 'build', `tor --keygen-family printed no FamilyId: ${stdout}`);
        await rm(join(state, 'keys', `${nickname}.public_family_id`));
        await writeFile(join(state, 'torrc'), [`Nickname ${nickname}`, `ContactInfo ${nickname}@testnet.invalid`, 'ORPort 9001', `Address ${TESTNET.guest}`, 'ExitRelay 0', `FamilyId ${familyId}`, 'TestingTorNetwork 1', dirAuthority, ''].join('\n'));
        const files = await readState(state);
        const bundle = seal(packState(files), Buffer.from(passphrase), MIN_ITERATIONS);
        return { fingerprint: n.fingerprint, url: await serve(`${nickname}.trd`, bundle), state: files };
      },
      serve,
      uploads: { ftp: `ftp://${TESTNET.authority}/incoming`, scp: `scp://root@${TESTNET.authority}/${ssh.uploads}`, hostKey: ssh.hostKey, clientKey: ssh.clientKey },
      exported: async (file) => ({
        ftp: await readFile(join(incoming, file)).catch(() => undefined),
        scp: await readFile(join(ssh.uploads, file)).catch(() => undefined),
      }),
      waitForRelay: (fingerprint, timeoutMs) => waitForRelay(ctl, fingerprint, timeoutMs),
      fetchThrough: (fingerprint, timeoutMs) => fetchThrough(ctl, join(client.dir, 'socks'), [authority.fingerprint, fingerprint, exit.fingerprint], payload, timeoutMs),
      logs: () => tail([authority, exit, middle, client]),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A node's DataDirectory with its identity made offline by `tor --list-fingerprint`. */
async function node(dir: string, name: string): Promise<Node> {
  const nodeDir = join(dir, name);
  await mkdir(nodeDir, { mode: 0o700 });
  await mkdir(join(nodeDir, 'keys'), { mode: 0o700 });
  const { stdout } = await run('tor', ['--quiet', '--ignore-missing-torrc', '--list-fingerprint', '--orport', '1', '--datadirectory', nodeDir]);
  const fingerprint = /([0-9A-F]{4}(?: [0-9A-F]{4}){9})\s*$/.exec(stdout)?.[1]?.replace(/ /g, '');
  if (!fingerprint) throw new TorRamdiskError('ERR_TESTNET', 'build', `tor --list-fingerprint printed no fingerprint for ${name}: ${stdout}`);
  return { name, dir: nodeDir, fingerprint };
}

/**
 * OpenSSH's sshd for the guest's scp, on the authority's address: its own host key, root by
 * the guest's key only (kept in the network's directory), uploads into DIR/ssh/uploads.
 */
async function sshServer(dir: string): Promise<{ config: string; hostKey: string; clientKey: string; uploads: string }> {
  const ssh = join(dir, 'ssh');
  const uploads = join(ssh, 'uploads');
  await mkdir(uploads, { recursive: true, mode: 0o700 });
  // Where sshd keeps its privilege-separated children; the package makes it at service start only.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(ssh, 'host_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tor-ramdisk testnet', '-f', hostKey]);
  const listed = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`])).stdout;
  const fingerprint = /\b(SHA256:[A-Za-z0-9+/]{43})\b/.exec(listed)?.[1];
  if (!fingerprint) throw new TorRamdiskError('ERR_TESTNET', 'build', `ssh-keygen -l printed no SHA256 fingerprint: ${listed}`);
  const clientKey = join(ssh, 'guest_dropbear');
  const made = (await run('dropbearkey', ['-t', 'ed25519', '-f', clientKey])).stdout;
  const authorized = /^ssh-ed25519 \S+/m.exec(made)?.[0];
  if (!authorized) throw new TorRamdiskError('ERR_TESTNET', 'build', `dropbearkey printed no public key: ${made}`);
  await writeFile(join(ssh, 'authorized_keys'), `${authorized} guest\n`, { mode: 0o600 });
  const config = join(ssh, 'sshd_config');
  await writeFile(config, `${[
    `ListenAddress ${TESTNET.authority}:22`,
    `HostKey ${hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`,
    'AuthenticationMethods publickey',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'AllowUsers root',
    // The key file lives under /tmp, which is world-writable: the path check would refuse it.
    'StrictModes no',
    'LogLevel ERROR',
  ].join('\n')}\n`);
  return { config, hostKey: fingerprint, clientKey, uploads };
}

/** Anonymous FTP from `root` on one address, uploads into incoming/ only (and readable from there), logging nothing. */
function vsftpdConfig(address: string, root: string, empty: string): string {
  return `${[
    'listen=YES',
    `listen_address=${address}`,
    'listen_port=21',
    'background=NO',
    'anonymous_enable=YES',
    'no_anon_password=YES',
    'local_enable=NO',
    'write_enable=YES',
    'anon_upload_enable=YES',
    // RNFR/RNTO: an upload lands as NAME.part and is renamed when whole.
    'anon_other_write_enable=YES',
    'anon_mkdir_write_enable=NO',
    // An upload is world-readable, so a later guest can import what an earlier one exported.
    'anon_umask=022',
    `anon_root=${root}`,
    `secure_chroot_dir=${empty}`,
    'xferlog_enable=NO',
    'syslog_enable=NO',
    'vsftpd_log_file=/dev/null',
    'pasv_enable=YES',
    'pasv_min_port=30000',
    'pasv_max_port=30100',
  ].join('\n')}\n`;
}

/** The end of each node's notice log, for a failure. */
async function tail(nodes: { name: string; dir: string }[]): Promise<string> {
  const parts: string[] = [];
  for (const n of nodes) {
    const log = await readFile(join(n.dir, 'notice.log'), 'utf8').catch(() => '(no log)');
    parts.push(`--- ${n.name}\n${log.trimEnd().split('\n').slice(-15).join('\n')}`);
  }
  return parts.join('\n');
}

async function connectWhenReady(path: string, timeoutMs: number): Promise<TorControl> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await TorControl.connect(path);
    } catch (error) {
      if (Date.now() > until) throw new TorRamdiskError('ERR_TESTNET', 'build', `the testnet client's control port ${path} did not open: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForRelay(control: TorControl, fingerprint: string, timeoutMs: number): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let seen = '';
  do {
    const entry = await control.getinfo(`ns/id/${fingerprint}`).catch(() => '');
    const flags = /^s (.*)$/m.exec(entry)?.[1]?.split(' ') ?? [];
    seen = entry ? `listed with flags ${flags.join(' ') || 'none'}` : `not in the consensus, which lists ${consensusNames(await control.getinfo('ns/all').catch(() => ''))}`;
    // The client needs the relay's microdescriptor too before it can build a circuit through it.
    if (flags.includes('Running') && (await control.getinfo(`md/id/${fingerprint}`).catch(() => ''))) return flags;
    if (control.isClosed) throw new TorRamdiskError('ERR_TESTNET', 'build', `the testnet's client went away while waiting for relay ${fingerprint}`);
    await sleep(2000);
  } while (Date.now() < until);
  throw new TorRamdiskError('ERR_TESTNET', 'build', `relay ${fingerprint} is not Running in the testnet's consensus after ${Math.round(timeoutMs / 1000)} s (${seen})`);
}

function consensusNames(all: string): string {
  return all.split('\n').filter((line) => line.startsWith('r ')).map((line) => line.split(' ')[1]).join(', ') || 'nothing';
}

/** Attempts until the deadline (the guest relays under software emulation, beside other guests): a failed one is tried again on a new circuit. */
async function fetchThrough(control: TorControl, socksPath: string, path: string[], payload: Buffer, timeoutMs: number): Promise<{ path: string[]; bytes: number }> {
  const until = Date.now() + timeoutMs;
  await control.command('SETEVENTS CIRC STREAM');
  await control.command('SETCONF __LeaveStreamsUnattached=1');
  const failures: string[] = [];
  do {
    try {
      return await fetchOnce(control, socksPath, path, payload);
    } catch (error) {
      if (error instanceof TorRamdiskError) throw error;
      failures.push((error as Error).message);
      await sleep(3000);
    }
  } while (Date.now() < until);
  throw new TorRamdiskError('ERR_TESTNET', 'build', `nothing came through ${path[1]} within ${Math.round(timeoutMs / 1000)} s: ${failures.join('; ')}`);
}

/** One circuit authority → relay → exit, one stream on it to the web server, the bytes compared. */
async function fetchOnce(control: TorControl, socksPath: string, path: string[], payload: Buffer): Promise<{ path: string[]; bytes: number }> {
  const { lines } = await control.command(`EXTENDCIRCUIT 0 ${path.join(',')}`);
  const circuit = /^EXTENDED (\d+)/.exec(lines[0] ?? '')?.[1];
  if (!circuit) throw new TorRamdiskError('ERR_TESTNET', 'build', `EXTENDCIRCUIT answered ${lines.join(' ')}`);
  const event = await control.waitForEvent((e) => (new RegExp(`^CIRC ${circuit} (BUILT|FAILED|CLOSED)\\b`).test(e) ? e : undefined), 60_000, `the end of circuit ${circuit}`);
  if (!event.startsWith(`CIRC ${circuit} BUILT`)) throw new Error(event);
  const built = (event.split(' ')[3] ?? '').split(',').map((hop) => hop.replace(/^\$/, '').replace(/[~=].*$/, ''));
  if (built.join(',') !== path.join(',')) throw new TorRamdiskError('ERR_TESTNET', 'build', `circuit ${circuit} was built through ${built.join(',')}, not ${path.join(',')}`);
  // The stream is ours to attach: when it is new, and again if tor detaches it (a slow hop).
  const target = `${TESTNET.web}:${TESTNET.webPort}`;
  let stream: string | undefined;
  const stop = control.onEvent((e) => {
    const m = /^STREAM (\d+) (NEW|DETACHED) \d+ (\S+)/.exec(e);
    if (m && m[3] === target && ((m[2] === 'NEW' && !stream) || m[1] === stream)) {
      stream = m[1];
      void control.command(`ATTACHSTREAM ${m[1]} ${circuit}`).catch(() => undefined);
    }
  });
  let response: Buffer;
  try {
    const socket = await socks5(socksPath, TESTNET.web, TESTNET.webPort);
    response = await httpGet(socket, TESTNET.web, '/payload', 60_000);
  } finally {
    stop();
  }
  if (!response.equals(payload)) {
    throw new TorRamdiskError('ERR_TESTNET', 'build', `stream ${stream} through circuit ${circuit} brought back ${response.length} bytes that are not the ${payload.length} the web server holds (sha256 ${createHash('sha256').update(response).digest('hex').slice(0, 16)}…)`);
  }
  return { path: built, bytes: response.length };
}

/** A SOCKS5 CONNECT to an IPv4 address through tor's unix-socket SocksPort; resolves once tor says the stream is open. */
function socks5(path: string, address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let stage = 0;
    let buffer = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.from([5, 1, 0])));
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (stage === 0 && buffer.length >= 2) {
        if (buffer[0] !== 5 || buffer[1] !== 0) {
          socket.destroy();
          return reject(new Error(`SOCKS: tor refused the method (${buffer.toString('hex')})`));
        }
        buffer = buffer.subarray(2);
        stage = 1;
        const request = Buffer.from([5, 1, 0, 1, ...address.split('.').map(Number), port >> 8, port & 255]);
        socket.write(request);
      }
      if (stage === 1 && buffer.length >= 10) {
        socket.off('data', onData);
        if (buffer[1] !== 0) {
          socket.destroy();
          return reject(new Error(`SOCKS: tor could not open the stream (reply ${buffer[1]})`));
        }
        resolve(socket);
      }
    };
    socket.on('data', onData);
  });
}

/** HTTP/1.0 GET on an open stream: the body. */
function httpGet(socket: Socket, host: string, path: string, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`GET ${path} took longer than ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const status = all.subarray(0, all.indexOf('\r\n')).toString('latin1');
      if (split < 0 || !/^HTTP\/1\.[01] 200 /.test(status)) return reject(new Error(`GET ${path}: ${status || 'no answer'}`));
      resolve(all.subarray(split + 4));
    });
    socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  });
}
