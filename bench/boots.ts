// Boot figures of one ISO, shared by the benchmark scripts: power on to the operator menu
// (menu-bios, as a USB stick), to tor started and to the relay Running in the private Tor network's consensus
// with nothing typed but the boot line (relay), to tor started with nothing typed at all
// (unattended: UEFI on x86_64, BIOS on i686), and the smallest -m (MiB) at which the relay
// scenario passes.
import type { Arch } from '../pipeline/config/schema.js';
import { runScenario, scenariosFor } from '../pipeline/qemu/smoke.js';

/** The RAM sizes tried, largest first, until the relay scenario fails; the times are at the first. */
export const MEMORIES = [96, 80, 64, 48];

export interface BootFigures {
  menu: number | undefined;
  torStarted: number | undefined;
  unattended: number | undefined;
  running: number | undefined;
  smallestMb: number | undefined;
}

export async function bootFigures(arch: Arch, iso: string): Promise<BootFigures> {
  const menu = await runScenario(arch, iso, scenariosFor(arch, ['menu-bios'])[0]!);
  const unattended = await runScenario(arch, iso, scenariosFor(arch, ['unattended'])[0]!);
  const [relay] = scenariosFor(arch, ['relay']);
  let smallestMb: number | undefined;
  let first: Awaited<ReturnType<typeof runScenario>> | undefined;
  for (const memoryMb of MEMORIES) {
    const result = await runScenario(arch, iso, { ...relay!, memoryMb }).catch((error: Error) => {
      console.error(`${arch}: relay with -m ${memoryMb}: ${error.message.split('\n')[0]}`);
      return undefined;
    });
    if (!result) break;
    smallestMb = memoryMb;
    first ??= result;
  }
  return {
    menu: menu.marks.menu,
    torStarted: first?.marks['tor started'],
    unattended: unattended.marks['tor started'],
    running: first?.marks['Running in the consensus'],
    smallestMb,
  };
}

/** Seconds, or what happened instead. */
export const seconds = (value: number | undefined) => (value === undefined ? 'failed' : `${value.toFixed(1)} s`);
/** The smallest RAM, or that even the largest tried was too small. */
export const smallest = (value: number | undefined) => (value === undefined ? `> ${MEMORIES[0]} MiB` : `${value} MiB`);
