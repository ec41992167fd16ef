import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InputError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { checkType, configSchema, describeType, parseFlagValue, type Arch, type ConfigValue, type Profile } from './schema.js';

/** One step of the stack: what it sets, what it locks, and what locks it explicitly reverses. */
export interface Layer {
  name: string;
  /** Where it came from: a file, or "command line". */
  origin: string;
  set: Record<string, ConfigValue>;
  lock: string[];
  unlock: string[];
}

export const layersDir = join(projectRoot, 'configs', 'layers');

export async function readLayerFile(name: string, path: string): Promise<Layer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read config layer ${name} from ${path}: ${(error as Error).message}`, { cause: error });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InputError(`config file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseLayer(name, displayPath(path), data);
}

function displayPath(path: string): string {
  const rel = relative(projectRoot, path);
  return rel.startsWith('..') ? path : rel;
}

export function parseLayer(name: string, origin: string, data: unknown): Layer {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new InputError(`${origin}: a config layer must be a JSON object`);
  const raw = data as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!['set', 'lock', 'unlock', '$comment'].includes(key)) {
      throw new InputError(`${origin}: unknown top-level key "${key}"`, { hint: 'A layer has "set" (key → value), "lock" and "unlock" (lists of keys).' });
    }
  }
  const set = (raw.set ?? {}) as Record<string, unknown>;
  if (typeof set !== 'object' || Array.isArray(set)) throw new InputError(`${origin}: "set" must be an object of key → value`);
  for (const [key, value] of Object.entries(set)) checkKeyValue(origin, key, value);
  const keyList = (field: 'lock' | 'unlock'): string[] => {
    const list = raw[field] ?? [];
    if (!Array.isArray(list) || !list.every((k) => typeof k === 'string')) throw new InputError(`${origin}: "${field}" must be a list of keys`);
    for (const key of list) if (!(key in configSchema)) throw unknownKey(origin, key);
    return list;
  };
  return { name, origin, set: set as Record<string, ConfigValue>, lock: keyList('lock'), unlock: keyList('unlock') };
}

function checkKeyValue(origin: string, key: string, value: unknown): void {
  const spec = configSchema[key];
  if (!spec) throw unknownKey(origin, key);
  if (!checkType(spec.type, value)) {
    throw new InputError(`${origin}: key "${key}" must be ${describeType(spec.type)}, got ${JSON.stringify(value)}`);
  }
}

function unknownKey(origin: string, key: string): InputError {
  const near = Object.keys(configSchema).filter((k) => k.split('.').pop() === key.split('.').pop() || k.startsWith(key.split('.')[0]!));
  return new InputError(`${origin}: unknown key "${key}"`, {
    hint: near.length > 0 ? `Did you mean: ${near.join(', ')}? (\`tor-ramdisk config --explain\` lists every key)` : '`tor-ramdisk config --explain` lists every key.',
  });
}

/** `--set key=value` flags as the last layer. */
export function flagLayer(assignments: string[]): Layer {
  const set: Record<string, ConfigValue> = {};
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new InputError(`--set ${assignment}: expected key=value`);
    const key = assignment.slice(0, eq);
    const spec = configSchema[key];
    if (!spec) throw unknownKey('command line (--set)', key);
    const value = parseFlagValue(spec.type, assignment.slice(eq + 1));
    checkKeyValue('command line (--set)', key, value);
    set[key] = value as ConfigValue;
  }
  return { name: 'flags', origin: 'command line', set, lock: [], unlock: [] };
}

export interface LayerSelection {
  arch: Arch;
  profile: Profile;
  /** The user's own file (`--config`). */
  userFile?: string;
  /** Extra named layers from configs/layers, after the profile (e.g. `debug`). */
  extra?: string[];
  flags?: string[];
}

/** The stack, in the one order it is applied: base → arch → profile → extras → user file → flags. */
export async function loadLayers(selection: LayerSelection, dir: string = layersDir): Promise<Layer[]> {
  const layers = [
    await readLayerFile('base', join(dir, 'base.json')),
    await readLayerFile(`arch/${selection.arch}`, join(dir, 'arch', `${selection.arch}.json`)),
    await readLayerFile(`profile/${selection.profile}`, join(dir, 'profile', `${selection.profile}.json`)),
  ];
  for (const extra of selection.extra ?? []) layers.push(await readLayerFile(extra, join(dir, `${extra}.json`)));
  if (selection.userFile) layers.push(await readLayerFile('user', selection.userFile));
  if (selection.flags && selection.flags.length > 0) layers.push(flagLayer(selection.flags));
  return layers;
}
