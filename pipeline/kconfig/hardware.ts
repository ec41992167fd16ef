import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from '../config/schema.js';
import { InputError } from '../errors.js';
import { projectRoot } from '../paths.js';

/** One row of kernel/hardware.md: a device, where relays meet it, the symbol that drives it, its arches. */
export interface Device {
  device: string;
  where: string;
  symbol: string;
  arches: Arch[];
}

export const HARDWARE_LIST = join(projectRoot, 'kernel', 'hardware.md');
const ARCHES: readonly Arch[] = ['x86_64', 'i686'];

/** The table of kernel/hardware.md: `| Device | Where it is met | Symbol | Arch |`, symbols without CONFIG_. */
export function parseHardwareList(text: string, name = 'kernel/hardware.md'): Device[] {
  const rows = text.split('\n').map((line, index) => ({ line: line.trim(), number: index + 1 })).filter((r) => r.line.startsWith('|'));
  const devices: Device[] = [];
  for (const { line, number } of rows.slice(2)) {
    const cells = line.slice(1, -1).split('|').map((c) => c.trim());
    const symbol = /^`([A-Z0-9_]+)`$/.exec(cells[2] ?? '')?.[1];
    const arches = (cells[3] ?? '').split(',').map((a) => a.trim());
    if (cells.length !== 4 || !symbol || arches.some((a) => !ARCHES.includes(a as Arch))) {
      throw new InputError(`${name}:${number}: expected | device | where | \`SYMBOL\` | x86_64, i686 |, got: ${line}`);
    }
    devices.push({ device: cells[0]!, where: cells[1]!, symbol, arches: arches as Arch[] });
  }
  if (devices.length === 0) throw new InputError(`${name}: no device table`, { hint: 'The table starts with | Device | Where it is met | Symbol | Arch |.' });
  return devices;
}

export async function readHardwareList(): Promise<Device[]> {
  return parseHardwareList(await readFile(HARDWARE_LIST, 'utf8'));
}

/** Each device of an arch with its symbol's value in a built configuration (`n` when absent). */
export function hardwareReport(devices: Device[], arch: Arch, values: Map<string, string>): { device: Device; actual: string }[] {
  return devices.filter((d) => d.arches.includes(arch)).map((device) => ({ device, actual: values.get(`CONFIG_${device.symbol}`) ?? 'n' }));
}
