import test from 'ava';
import { execa } from 'execa';
import { assertIsolated, createNamespace, removeNamespace } from '../pipeline/testnet/netns.js';
import { TorRamdiskError } from '../pipeline/errors.js';

// Tier: local integration. The namespace the private Tor network lives in: made here, refused
// the moment it has a way out, gone afterwards. (The network itself runs in the relay smoke
// scenario, test/smoke.test.ts.)

test('the namespace has loopback, the bridge and its tap, and no route anywhere', async (t) => {
  const ns = await createNamespace(['10.200.0.1/24']);
  t.teardown(() => removeNamespace(ns));
  const { stdout: links } = await execa('ip', ['-n', ns.name, '-o', 'link', 'show']);
  t.deepEqual(links.split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)![1]).sort(), ['lo', 'tap0', 'trd0']);
  // No packet is sent: the kernel only says which way a packet would go.
  const away = await execa('ip', ['-n', ns.name, 'route', 'get', '192.0.2.1'], { reject: false });
  t.not(away.exitCode, 0);
  t.regex(away.stderr, /unreachable/i);
  await t.notThrowsAsync(assertIsolated(ns));
});

for (const [what, way] of [
  ['a default route', ['route', 'add', 'default', 'dev', 'trd0']],
  ['an IPv6 default route', ['-6', 'route', 'add', 'default', 'dev', 'trd0']],
  ['another interface', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']],
  ['a tap that is not on the bridge', ['link', 'set', 'tap0', 'nomaster']],
] as const) {
  test(`a namespace with ${what} is refused`, async (t) => {
    const ns = await createNamespace(['10.200.0.1/24']);
    t.teardown(() => removeNamespace(ns));
    if (what.includes('IPv6')) await execa('ip', ['-n', ns.name, '-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'trd0', 'nodad']);
    await execa('ip', ['-n', ns.name, ...way]);
    const error = await t.throwsAsync(assertIsolated(ns), { instanceOf: TorRamdiskError });
    t.is(error!.code, 'ERR_TESTNET_ESCAPE');
    t.regex(error!.message, /is not isolated/);
  });
}

test('removing the namespace takes the bridge and the tap with it', async (t) => {
  const ns = await createNamespace([]);
  await removeNamespace(ns);
  const { stdout } = await execa('ip', ['netns', 'list']);
  t.false(stdout.split('\n').some((line) => line.split(' ')[0] === ns.name));
});
