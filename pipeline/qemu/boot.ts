import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Arch } from '../config/schema.js';
import { InputError } from '../errors.js';
import { startInteractive } from '../exec.js';
import { projectRoot } from '../paths.js';
import { assertIsolated, type Namespace } from '../testnet/netns.js';

/** A machine definition, `qemu/<arch>.json`: the CPU model is pinned (TCG quirks differ by model). */
export interface Machine {
  binary: string;
  machine: string;
  cpu: string;
  memoryMb: number;
  /** The UEFI firmware image (Debian's OVMF), where the arch boots UEFI. */
  uefi?: string;
}

export async function readMachine(arch: Arch): Promise<Machine> {
  const path = join(projectRoot, 'qemu', `${arch}.json`);
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Machine;
  } catch (error) {
    throw new InputError(`cannot read machine definition ${path}: ${(error as Error).message}`);
  }
}

/**
 * Guest networking, of two kinds only. User networking with restrict=on, so the guest reaches
 * only what a forward names, and forwards name only 127.0.0.1; or the tap of a namespace of
 * our own (pipeline/testnet), checked again before QEMU starts that it has no way out.
 */
export type GuestNetwork = UserNetwork | { tap: Namespace };

export interface UserNetwork {
  /** `tcp:127.0.0.1:HOSTPORT-:GUESTPORT`: host 127.0.0.1:HOSTPORT reaches the guest (never `tcp::`, which binds every address). */
  hostfwd?: string[];
  /**
   * `tcp:GUESTADDR:GUESTPORT-tcp:127.0.0.1:PORT`: the guest reaches one local server; or
   * `…-cmd:busybox nc 127.0.0.1 PORT`, a connection per guest connection (FTP opens several).
   */
  guestfwd?: string[];
}

/** Boot a kernel directly, or an image (the ISO) from a CD drive or a hard disk (a USB stick's view). */
export type BootMedium =
  | { kernel: string; initrd?: string; append: string }
  | { image: string; as: 'cdrom' | 'disk'; firmware: 'bios' | 'uefi' };

export type BootOptions = BootMedium & {
  arch: Arch;
  /** The guest's RAM, if not the machine definition's. */
  memoryMb?: number;
  /** Extra devices, e.g. `virtio-rng-pci`. */
  devices?: string[];
  network?: GuestNetwork;
  /** Data for the guest through fw_cfg (`name=opt/...,file=...`): never on the command line. */
  fwCfg?: string[];
  /** The guest's clock at power on (QEMU's RTC base, `2038-06-01T00:00:00`), if not the host's. */
  clock?: string;
  /** Called with each piece of serial output as it comes (a console shown live). */
  onOutput?: (text: string) => void;
  timeoutMs: number;
};

function mediumArgs(machine: Machine, medium: BootMedium): string[] {
  if ('kernel' in medium) return ['-kernel', medium.kernel, ...(medium.initrd ? ['-initrd', medium.initrd] : []), '-append', medium.append];
  const firmware: string[] = [];
  if (medium.firmware === 'uefi') {
    if (!machine.uefi) throw new InputError(`${machine.binary}: no UEFI firmware in the machine definition`);
    firmware.push('-bios', machine.uefi);
  }
  // A disk is opened as a snapshot: the guest never writes to the image.
  const drive = medium.as === 'cdrom' ? 'media=cdrom,readonly=on' : 'media=disk,snapshot=on';
  return [...firmware, '-drive', `file=${medium.image},format=raw,if=ide,${drive}`];
}

export function qemuArgs(machine: Machine, options: BootOptions): string[] {
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-M',
    machine.machine,
    '-cpu',
    machine.cpu,
    '-m',
    String(options.memoryMb ?? machine.memoryMb),
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
    ...mediumArgs(machine, options),
  ];
  for (const device of options.devices ?? []) args.push('-device', device);
  for (const item of options.fwCfg ?? []) args.push('-fw_cfg', item);
  if (options.clock) args.push('-rtc', `base=${options.clock}`);
  if (!options.network) {
    args.push('-nic', 'none');
  } else if ('tap' in options.network) {
    args.push('-netdev', `tap,id=net0,ifname=${options.network.tap.tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=net0');
  } else {
    for (const forward of [...(options.network.hostfwd ?? []), ...(options.network.guestfwd ?? [])]) {
      const local = forward.startsWith('tcp:127.0.0.1:') || /-(tcp:127\.0\.0\.1:|cmd:busybox nc 127\.0\.0\.1 )\d+$/.test(forward);
      if (!local) throw new InputError(`QEMU forward "${forward}" does not stay on 127.0.0.1`);
    }
    const forwards = [...(options.network.hostfwd ?? []).map((f) => `hostfwd=${f}`), ...(options.network.guestfwd ?? []).map((f) => `guestfwd=${f}`)];
    args.push('-netdev', ['user', 'id=net0', 'restrict=on', ...forwards].join(','), '-device', 'virtio-net-pci,netdev=net0');
  }
  return args;
}

/** A running guest: its serial output so far, a way to wait for a line, and to type. */
export interface Guest {
  /** Everything the guest printed, from power on. */
  output(): string;
  /**
   * Expect-style: waits until `pattern` appears in what the guest printed after the previous
   * match, and resolves with that text up to and including this match (default limit: 90 s).
   */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  type(text: string): void;
  /** Resolves when QEMU exits (the guest powered off, or the timeout killed it). */
  exited: Promise<{ exitCode: number | undefined; timedOut: boolean; stderr: string }>;
  kill(): void;
}

/**
 * How many guests run at once on this machine, across processes: `$TOR_RAMDISK_GUESTS`, else
 * twice the cores. Under emulation a working guest takes a core, and a step's time limit means
 * something only if each guest gets its share; a guest past the limit waits to power on.
 */
export function guestSlots(): number {
  const value = process.env.TOR_RAMDISK_GUESTS;
  if (value === undefined || value === '') return 2 * availableParallelism();
  if (!/^[1-9]\d*$/.test(value)) throw new InputError(`TOR_RAMDISK_GUESTS="${value}" is not a number of guests`, { hint: 'Set it to a whole number ≥ 1, or unset it for twice the cores.' });
  return Number(value);
}

/** Binds `name`, or resolves undefined if another process holds it. */
function hold(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(name, () => resolve(server.unref()));
  });
}

/**
 * Waits for a free guest slot and resolves with its release. A slot is an abstract Unix socket
 * (Linux frees it when its process dies): a killed run holds nothing, and no file is left.
 */
export async function takeGuestSlot(): Promise<() => void> {
  const slots = guestSlots();
  for (;;) {
    for (let slot = 0; slot < slots; slot++) {
      const server = await hold(`\0tor-ramdisk-guest-${slot}`);
      if (server) return () => server.close();
    }
    await sleep(500);
  }
}

export async function boot(options: BootOptions): Promise<Guest> {
  const machine = await readMachine(options.arch);
  let [command, args] = [machine.binary, qemuArgs(machine, options)];
  if (options.network && 'tap' in options.network) {
    // QEMU opens the tap inside its namespace, so it runs there.
    await assertIsolated(options.network.tap);
    [command, args] = options.network.tap.exec(command, args);
  }
  const release = await takeGuestSlot();
  const child = startInteractive(command, args, { timeoutMs: options.timeoutMs });
  void child.finally(release);
  let output = '';
  // Where the next wait starts reading: the end of the previous match.
  let cursor = 0;
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    options.onOutput?.(chunk.toString('utf8'));
    output += chunk.toString('utf8').replace(/\r/g, '');
    for (const wake of waiters) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  let done = false;
  const exited = child.then((result) => {
    done = true;
    for (const wake of waiters) wake();
    return { exitCode: result.exitCode, timedOut: Boolean(result.timedOut), stderr };
  });
  return {
    output: () => output,
    exited,
    kill: () => child.kill('SIGKILL'),
    type: (text) => child.stdin!.write(text),
    waitFor: (pattern, timeoutMs = 90_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output.slice(cursor));
          if (match) {
            finish();
            const seen = output.slice(cursor, cursor + match.index + match[0].length);
            cursor += match.index + match[0].length;
            resolve(seen);
          } else if (done) {
            finish();
            reject(new Error(`the guest exited before printing ${pattern}; its serial output:\n${output.slice(-3000)}\nqemu stderr:\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no ${pattern} on the serial console within ${timeoutMs} ms; its output:\n${output.slice(-3000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
}
