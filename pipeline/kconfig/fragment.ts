import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError } from '../errors.js';

/** A Kconfig value as .config writes it: y, m, n (for "is not set"), a number, or a "string". */
export type KconfigValue = string;

export interface FragmentSetting {
  symbol: string;
  value: KconfigValue;
  line: number;
}

export interface Fragment {
  name: string;
  settings: FragmentSetting[];
}

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$/;

/**
 * Parses a fragment (or a whole .config). `CONFIG_X=n` is refused: Kconfig reads it, but
 * .config never says it, so a check against the result would always look wrong.
 */
export function parseKconfig(text: string, name: string, options: { prefix?: string } = {}): Fragment {
  const settings: FragmentSetting[] = [];
  const prefix = options.prefix ?? 'CONFIG_';
  const set = prefix === 'CONFIG_' ? SET : new RegExp(`^(${prefix}[A-Za-z0-9_]+)=(.*)$`);
  const unset = prefix === 'CONFIG_' ? UNSET : new RegExp(`^# (${prefix}[A-Za-z0-9_]+) is not set\\s*$`);
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    const on = set.exec(line);
    if (on) {
      if (on[2] === 'n') throw new InputError(`${name}:${index + 1}: ${on[1]}=n is not how Kconfig says "off"`, { hint: `Write "# ${on[1]} is not set".` });
      settings.push({ symbol: on[1]!, value: on[2]!, line: index + 1 });
      return;
    }
    const off = unset.exec(line);
    if (off) settings.push({ symbol: off[1]!, value: 'n', line: index + 1 });
  });
  return { name, settings };
}

export async function readFragment(path: string, options: { prefix?: string; name?: string } = {}): Promise<Fragment> {
  const text = await readFile(path, 'utf8').catch((error: Error) => {
    throw new InputError(`cannot read config fragment ${path}: ${error.message}`);
  });
  return parseKconfig(text, options.name ?? basename(path), options);
}

/** The final value of each symbol a .config states (absent symbols count as n). */
export function configValues(config: Fragment): Map<string, KconfigValue> {
  return new Map(config.settings.map((s) => [s.symbol, s.value]));
}

/** Applies fragments in order onto a base .config text: later lines replace earlier ones. */
export function mergeFragments(base: string, fragments: Fragment[], prefix = 'CONFIG_'): string {
  const wanted = new Map<string, KconfigValue>();
  for (const fragment of fragments) for (const s of fragment.settings) wanted.set(s.symbol, s.value);
  const kept = base
    .split('\n')
    .filter((line) => {
      const symbol = SET.exec(line)?.[1] ?? UNSET.exec(line)?.[1] ?? (prefix === 'CONFIG_' ? undefined : new RegExp(`^#? ?(${prefix}[A-Za-z0-9_]+)[= ]`).exec(line)?.[1]);
      return !(symbol && wanted.has(symbol));
    })
    .join('\n');
  const added = [...wanted].map(([symbol, value]) => (value === 'n' ? `# ${symbol} is not set` : `${symbol}=${value}`));
  return `${kept.trimEnd()}\n${added.join('\n')}\n`;
}

export interface Mismatch {
  fragment: string;
  symbol: string;
  wanted: KconfigValue;
  actual: KconfigValue;
}

/** Every symbol a fragment set whose final value differs; the last fragment to set a symbol owns it. */
export function checkFragments(fragments: Fragment[], final: Fragment): Mismatch[] {
  const actual = configValues(final);
  const owner = new Map<string, { fragment: string; wanted: KconfigValue }>();
  for (const fragment of fragments) for (const s of fragment.settings) owner.set(s.symbol, { fragment: fragment.name, wanted: s.value });
  const mismatches: Mismatch[] = [];
  for (const [symbol, { fragment, wanted }] of owner) {
    const value = actual.get(symbol) ?? 'n';
    if (value !== wanted) mismatches.push({ fragment, symbol, wanted, actual: actual.has(symbol) ? value : 'n (absent)' });
  }
  return mismatches;
}
