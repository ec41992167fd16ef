import { InputError } from '../errors.js';
import type { Stage } from './stage.js';

/** The requested stages and everything they depend on, dependencies first. */
export function stageClosure(registry: readonly Stage[], targets: readonly string[]): Stage[] {
  const byName = new Map(registry.map((s) => [s.name, s]));
  const ordered: Stage[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    const stage = byName.get(name);
    if (!stage) {
      const via = chain.length > 0 ? ` (needed by ${chain.at(-1)})` : '';
      throw new InputError(`unknown stage "${name}"${via}`, { hint: `Stages: ${registry.map((s) => s.name).join(', ')}` });
    }
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new InputError(`stage dependency cycle: ${[...chain, name].join(' → ')}`);
    state.set(name, 'visiting');
    for (const dep of stage.deps ?? []) visit(dep, [...chain, name]);
    state.set(name, 'done');
    ordered.push(stage);
  };
  for (const target of targets) visit(target, []);
  return ordered;
}
