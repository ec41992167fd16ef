import test from 'ava';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { box, sh } from './fixtures/runtime/shell.js';
import { KEY } from './fixtures/runtime/relay-state.js';

// Tier: unit. The image's runtime (initramfs/usr/lib/tor-ramdisk) under the host's busybox ash:
// the kernel command line it reads, and the torrc it generates and accepts.

// --- kernel command line ---------------------------------------------------------------

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

test('fw_cfg\'s opt/tor-ramdisk/cmdline adds its words after the kernel\'s (UEFI starts the kernel with none); a mistake there stops the boot as one on the kernel\'s', async (t) => {
  const b = await box();
  await writeFile(b.env.TRD_CMDLINE!, 'BOOT_IMAGE=/boot/bzImage trd.profile=bridge trd.start=0\n');
  await mkdir(join(b.env.TRD_FWCFG!, 'cmdline'), { recursive: true });
  await writeFile(join(b.env.TRD_FWCFG!, 'cmdline', 'raw'), 'trd.net=dhcp trd.import=ftp://192.0.2.5/r.trd trd.start=1\n');
  const both = await sh(b, 'cmdline_read && cmdline_show');
  t.is(both.exitCode, 0, String(both.stderr));
  t.regex(String(both.stdout), /^CMD_NET=dhcp$/m);
  t.regex(String(both.stdout), /^CMD_IMPORT=ftp:\/\/192\.0\.2\.5\/r\.trd$/m);
  t.regex(String(both.stdout), /^CMD_START=1$/m, 'the later word wins');
  t.regex(String(both.stdout), /^CMD_PROFILE=bridge$/m);
  await rm(b.env.TRD_CMDLINE!);
  await writeFile(join(b.env.TRD_FWCFG!, 'cmdline', 'raw'), 'trd.import=ftp://192.0.2.5/r.trd *\n');
  const wrong = await sh(b, 'cmdline_read');
  t.not(wrong.exitCode, 0);
  t.regex(String(wrong.stderr), /trd\.import needs a network/);
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

const COMMON = ['RunAsDaemon 1', 'User tor', 'DataDirectory /var/lib/tor', 'ControlPort 127.0.0.1:9051', 'CookieAuthentication 1', 'SocksPort 0', 'Sandbox 1'];

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

// --- what the RAM sets (mem.sh) -------------------------------------------------------------

async function memBox(totalKb: number, torrc = 'Nickname small\nORPort 9001\n') {
  const b = await box();
  await writeFile(b.torrc, torrc);
  const meminfo = `${b.root}/meminfo`;
  await writeFile(meminfo, `MemTotal:       ${totalKb} kB\nMemFree:        1000 kB\n`);
  return { b, env: { TRD_MEMINFO: meminfo } };
}

const memories: [number, string, string][] = [
  // 96 MiB: tor's server minimum for the queues, and no directory cache.
  [98_304, '--MaxMemInQueues 64MB\n--DirCache 0', '36864 6144 3072'],
  // 256 MiB: half the RAM; still under tor's 300 MB for a directory cache.
  [262_144, '--MaxMemInQueues 128MB\n--DirCache 0', '98304 16384 8192'],
  // 1 GiB: half the RAM, a directory cache as tor's default.
  [1_048_576, '--MaxMemInQueues 512MB', '393216 65536 32768'],
  // 64 GiB on x86_64: tor's largest default.
  [67_108_864, '--MaxMemInQueues 8192MB', '25165824 4194304 2097152'],
];

for (const [kb, options, tmpfs] of memories) {
  test(`memory: ${kb / 1024} MiB of RAM sets ${options.replace(/\n/g, ' ')}; tmpfs ${tmpfs} KiB`, async (t) => {
    const { b, env } = await memBox(kb);
    const result = await sh(b, 'mem_tor_options; echo "$(mem_tmpfs_kb /var/lib/tor) $(mem_tmpfs_kb /tmp) $(mem_tmpfs_kb /run)"', { env });
    t.is(result.exitCode, 0, String(result.stderr));
    t.is(String(result.stdout), `${options}\n${tmpfs}`);
  });
}

test('memory: a small machine keeps at least 4 MiB of /tmp and 2 MiB of /run', async (t) => {
  const { b, env } = await memBox(32_768);
  const result = await sh(b, 'echo "$(mem_tmpfs_kb /tmp) $(mem_tmpfs_kb /run)"', { env });
  t.is(String(result.stdout), '4096 2048');
});

test('memory: the operator\'s torrc wins, and the status says where each value comes from', async (t) => {
  const { b, env } = await memBox(98_304, 'Nickname small\nMaxMemInQueues 80 MB\ndircache 1\n');
  const result = await sh(b, 'echo "[$(mem_tor_options)]"; mem_source MaxMemInQueues; mem_source DirCache', { env });
  t.is(String(result.stdout), '[]\nthe torrc\nthe torrc');
  const big = await memBox(1_048_576);
  t.is(String((await sh(big.b, 'mem_source DirCache', { env: big.env })).stdout), "tor's default");
});

test('memory: without a readable MemTotal the image sets nothing and tor keeps its defaults', async (t) => {
  const { b } = await memBox(0);
  const result = await sh(b, 'echo "[$(mem_tor_options)]" "[$(mem_tmpfs_kb /tmp)]"', { env: { TRD_MEMINFO: `${b.root}/absent` } });
  t.is(String(result.stdout), '[] []');
});
