import { resolveConfig } from './config/resolve.js';
import { loadLayers } from './config/layers.js';
import { ARCHES } from './config/schema.js';
import { LOCK_TOOLS } from './engine/lock.js';
import { stageTools } from './engine/stage.js';
import { uniqueTools, type HostTool } from './engine/tools.js';
import { RENEW_TOOLS } from './keys/renew.js';
import { SMOKE_TOOLS } from './qemu/smoke.js';
import { REMOTE_TOOLS } from './remote/cache.js';
import { FETCH_TOOLS } from './sources/fetch.js';
import { stages } from './stages/index.js';

/** What the test suite runs besides the build's own tools: the smoke scenarios', servers to talk to. */
export const testTools: readonly HostTool[] = [
  // QEMU and the private Tor network, as `tor-ramdisk smoke` runs them.
  ...SMOKE_TOOLS,
  // `keys renew` signs with Debian's tor, as an operator's workstation would.
  ...RENEW_TOOLS,
  // The runtime's shell runs under the host's busybox ash; strace proves secrets stay out of argv.
  { file: '/bin/busybox', package: 'busybox-static' },
  { command: 'strace', package: 'strace' },
  // The bundle tests build the image's bundle-crypt for this machine, and check its format against `openssl enc`.
  { file: '/usr/include/openssl/evp.h', package: 'libssl-dev' },
  { command: 'openssl', package: 'openssl' },
  // doctor's own test: a fresh Debian 12 chroot that it installs the build's tools into.
  { file: '/usr/sbin/debootstrap', package: 'debootstrap' },
  // The fault tests: a small tmpfs, a read-only bind mount, a PID namespace, each made in a namespace of its own.
  { command: 'unshare', package: 'util-linux' },
  { command: 'mount', package: 'mount' },
  // The remote stage cache's tests: the CNCF distribution registry, started on 127.0.0.1 by the test.
  { command: 'docker-registry', package: 'docker-registry' },
];

/** The toolchain variants a machine builds with: the uClibc-ng one (the main build) and the host one (tests, fast iteration). */
const VARIANTS = ['uclibc', 'host'] as const;

/**
 * What a build may run: fetching's and locking's tools and what every stage declares, for each arch and
 * toolchain variant. The stages' declarations are the only list; this is their union.
 */
export async function buildTools(): Promise<HostTool[]> {
  const tools: HostTool[] = [...FETCH_TOOLS, ...LOCK_TOOLS, ...REMOTE_TOOLS];
  for (const arch of ARCHES) {
    for (const variant of VARIANTS) {
      const config = resolveConfig(await loadLayers({ arch, profile: 'relay', flags: [`toolchain.variant=${variant}`] }));
      for (const stage of stages) tools.push(...stageTools(stage, config));
    }
  }
  return uniqueTools(tools);
}
