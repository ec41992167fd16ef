import { InputError } from '../errors.js';
import type { Layer } from './layers.js';
import { configSchema, type Arch, type ConfigValue, type Profile, type ToolchainVariant } from './schema.js';

export interface ResolvedValue {
  value: ConfigValue;
  /** The layer that set the value in force. */
  layer: Layer;
  lockedBy?: Layer;
  unlockedBy?: Layer;
  /** Earlier layers whose value this one replaced, oldest first. */
  overridden: { layer: Layer; value: ConfigValue }[];
}

export class ResolvedConfig {
  constructor(
    readonly layers: Layer[],
    readonly values: Map<string, ResolvedValue>,
  ) {}

  get(key: string): ConfigValue {
    const entry = this.values.get(key);
    if (!entry) throw new InputError(`config key "${key}" has no value`, { hint: 'configs/layers/base.json must set every key.' });
    return entry.value;
  }

  get arch(): Arch {
    return this.get('arch') as Arch;
  }

  get profile(): Profile {
    return this.get('profile') as Profile;
  }

  get toolchainVariant(): ToolchainVariant {
    return this.get('toolchain.variant') as ToolchainVariant;
  }

  /** Keys whose lock a layer reversed: images built so are named as such. */
  get unlocked(): string[] {
    return [...this.values].filter(([, v]) => v.unlockedBy).map(([k]) => k);
  }

  /** The values of the given keys, for a stage's cache key. */
  pick(keys: readonly string[]): Record<string, ConfigValue> {
    return Object.fromEntries(keys.map((key) => [key, this.get(key)]));
  }
}

/** Applies the layers in order. A locked key may change only in a layer that unlocks it. */
export function resolveConfig(layers: Layer[]): ResolvedConfig {
  const values = new Map<string, ResolvedValue>();
  const locks = new Map<string, Layer>();
  for (const layer of layers) {
    for (const key of layer.unlock) {
      if (!locks.has(key)) throw new InputError(`${layer.origin}: unlocks "${key}", which no earlier layer locked`);
    }
    for (const [key, value] of Object.entries(layer.set)) {
      const previous = values.get(key);
      const lock = locks.get(key);
      if (previous && lock && previous.value !== value && !layer.unlock.includes(key)) {
        throw new InputError(
          `config key "${key}" is locked to ${JSON.stringify(previous.value)} by layer ${lock.name} (${lock.origin}); ` +
            `layer ${layer.name} (${layer.origin}) sets it to ${JSON.stringify(value)}`,
          { hint: `This is a security invariant. To reverse it on purpose, list "${key}" in that layer's "unlock"; such images are named as unlocked.` },
        );
      }
      const unlockedBy = previous && lock && previous.value !== value ? layer : previous?.unlockedBy;
      values.set(key, {
        value,
        layer,
        ...(lock ? { lockedBy: lock } : {}),
        ...(unlockedBy ? { unlockedBy } : {}),
        overridden: previous ? [...previous.overridden, { layer: previous.layer, value: previous.value }] : [],
      });
    }
    for (const key of layer.lock) {
      if (!values.has(key)) throw new InputError(`${layer.origin}: locks "${key}" before any layer sets it`);
      locks.set(key, layer);
      const entry = values.get(key)!;
      values.set(key, { ...entry, lockedBy: layer });
    }
  }
  const missing = Object.keys(configSchema).filter((key) => !values.has(key));
  if (missing.length > 0) throw new InputError(`no layer sets ${missing.join(', ')}`, { hint: 'configs/layers/base.json must set every key.' });
  return new ResolvedConfig(layers, values);
}

/** One line per key: value, the layer that set it, and what it replaced. */
export function explainConfig(config: ResolvedConfig): string {
  const rows = [...config.values].sort(([a], [b]) => a.localeCompare(b));
  const keyWidth = Math.max(...rows.map(([k]) => k.length));
  const valueWidth = Math.max(...rows.map(([, v]) => JSON.stringify(v.value).length));
  const lines = [`layers, in order: ${config.layers.map((l) => `${l.name} (${l.origin})`).join(' → ')}`, ''];
  for (const [key, entry] of rows) {
    const notes = [
      ...(entry.lockedBy ? [`locked by ${entry.lockedBy.name}`] : []),
      ...(entry.unlockedBy ? [`UNLOCKED by ${entry.unlockedBy.name}`] : []),
      ...(entry.overridden.length > 0 ? [`overrides ${entry.overridden.map((o) => `${o.layer.name}=${JSON.stringify(o.value)}`).join(', ')}`] : []),
    ];
    lines.push(
      `${key.padEnd(keyWidth)}  ${JSON.stringify(entry.value).padEnd(valueWidth)}  ${entry.layer.name} (${entry.layer.origin})${notes.length ? `  [${notes.join('; ')}]` : ''}`,
    );
  }
  return lines.join('\n');
}
