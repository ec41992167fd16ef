import { TorRamdiskError } from '../errors.js';
import { run } from '../exec.js';

/**
 * A network namespace of our own with one bridge and one tap for a QEMU guest, and nothing
 * else: no route out, no other interface. Everything of the private Tor network lives in it,
 * so nothing in it can reach the real Tor network (or any network).
 */
export interface Namespace {
  name: string;
  /** The bridge every address of the network is on. */
  bridge: string;
  /** The guest's tap, a port of the bridge. */
  tap: string;
  /** `ip netns exec NAME COMMAND ARGS…`, as one command line. */
  exec(command: string, args: readonly string[]): [string, string[]];
}

const BRIDGE = 'trd0';
const TAP = 'tap0';

let made = 0;

/** A new namespace (named after this process, never one that exists) with the bridge, the tap and `addresses` (CIDR) on the bridge. */
export async function createNamespace(addresses: readonly string[]): Promise<Namespace> {
  const name = `tor-ramdisk-${process.pid}-${made++}`;
  await ip(['netns', 'add', name]).catch((error: Error) => {
    throw new TorRamdiskError('ERR_TESTNET_NAMESPACE', 'build', `cannot make the private Tor network's namespace: ${error.message}`, {
      hint: 'A network namespace needs root (CAP_SYS_ADMIN): run the smoke scenarios and tor-ramdisk testnet as root.',
    });
  });
  const ns: Namespace = {
    name,
    bridge: BRIDGE,
    tap: TAP,
    exec: (command, args) => ['ip', ['netns', 'exec', name, command, ...args]],
  };
  try {
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
    await ip(['-n', name, 'link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['-n', name, 'tuntap', 'add', TAP, 'mode', 'tap']);
    await ip(['-n', name, 'link', 'set', TAP, 'master', BRIDGE]);
    for (const address of addresses) await ip(['-n', name, 'addr', 'add', address, 'dev', BRIDGE]);
    await ip(['-n', name, 'link', 'set', BRIDGE, 'up']);
    await ip(['-n', name, 'link', 'set', TAP, 'up']);
    await assertIsolated(ns);
    return ns;
  } catch (error) {
    await removeNamespace(ns);
    throw error;
  }
}

/**
 * Refuses a namespace with a way out: a default route (IPv4 or IPv6), or any interface but
 * loopback, the bridge and the tap on it.
 */
export async function assertIsolated(ns: Namespace): Promise<void> {
  const refuse = (why: string) => {
    throw new TorRamdiskError('ERR_TESTNET_ESCAPE', 'verification', `network namespace ${ns.name} is not isolated: ${why}`, {
      hint: 'The private Tor network runs only where nothing can leave; nothing was started.',
    });
  };
  for (const family of ['-4', '-6']) {
    const { stdout } = await ip(['-n', ns.name, family, 'route', 'show', 'default']);
    if (stdout.trim()) refuse(`a default route (${stdout.trim()})`);
  }
  const { stdout } = await ip(['-n', ns.name, '-o', 'link', 'show']);
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [, iface] = /^\d+: ([^:@]+)/.exec(line) ?? [];
    const allowed = iface === 'lo' || iface === ns.bridge || (iface === ns.tap && line.includes(` master ${ns.bridge} `));
    if (!allowed) refuse(`interface ${iface ?? line}`);
  }
}

/** Deletes the namespace (and with it the bridge and the tap); only ever one this process made. */
export async function removeNamespace(ns: Namespace): Promise<void> {
  await ip(['netns', 'delete', ns.name]).catch(() => undefined);
}

function ip(args: string[]) {
  return run('ip', args);
}
