import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KconfigValue } from './fragment.js';

/** Where each tree's Kconfig starts: the kernel's, uClibc-ng's and busybox's. */
const TOP_LEVEL = ['Kconfig', 'extra/Configs/Config.in', 'Config.in'];

interface Definition {
  file: string;
  /** `depends on` of the symbol itself, then of enclosing `if` blocks and menus, innermost first. */
  conditions: { kind: 'depends on' | 'inside if' | 'inside menu depending on'; expr: string }[];
}

/**
 * Walks the Kconfig tree from its top file, following `source` lines, and records for a
 * symbol every condition it sits under: its own `depends on`, and the `if` blocks and menus
 * around it (the kernel's networking options live inside `if NET`, for example).
 */
async function definitionsOf(tree: string, bare: string, srcarch: string): Promise<Definition[]> {
  const found: Definition[] = [];
  const seen = new Set<string>();
  const walk = async (relative: string, outer: Definition['conditions']): Promise<void> => {
    const path = join(tree, relative.replace(/\$\(SRCARCH\)|\$SRCARCH/g, srcarch));
    if (seen.has(path) || !(await stat(path).catch(() => undefined))?.isFile()) return;
    seen.add(path);
    const lines = (await readFile(path, 'utf8')).split('\n');
    const stack: { kind: 'if' | 'menu'; conditions: Definition['conditions'] }[] = [];
    const current = () => [...stack.flatMap((s) => s.conditions).reverse(), ...outer];
    let menu: Definition['conditions'] | undefined;
    let symbol: Definition | undefined;
    for (const raw of lines) {
      const line = raw.trim();
      const word = line.split(/\s+/)[0];
      if (word === 'depends' && line.startsWith('depends on ')) {
        const expr = line.slice('depends on '.length).trim();
        if (symbol) symbol.conditions.unshift({ kind: 'depends on', expr });
        else if (menu) menu.push({ kind: 'inside menu depending on', expr });
        continue;
      }
      if (/^(bool|tristate|string|int|hex|prompt|default|select|imply|help|range|def_bool|def_tristate|option|modules|visible|---help---)\b/.test(line) || line === '' || line.startsWith('#')) continue;
      symbol = undefined;
      menu = undefined;
      const src = /^(?:o?source|rsource)\s+"?([^"\s]+)"?/.exec(line);
      if (src) {
        await walk(src[1]!, current());
      } else if (word === 'if') {
        stack.push({ kind: 'if', conditions: [{ kind: 'inside if', expr: line.slice(3).trim() }] });
      } else if (word === 'endif') {
        popTo(stack, 'if');
      } else if (word === 'menu') {
        const entry = { kind: 'menu' as const, conditions: [] as Definition['conditions'] };
        stack.push(entry);
        menu = entry.conditions;
      } else if (word === 'endmenu') {
        popTo(stack, 'menu');
      } else if (/^(menu)?config$/.test(word ?? '') && line.split(/\s+/)[1] === bare) {
        symbol = { file: relative, conditions: current() };
        found.push(symbol);
      }
    }
  };
  for (const top of TOP_LEVEL) {
    if ((await stat(join(tree, top)).catch(() => undefined))?.isFile()) {
      await walk(top, []);
      break;
    }
  }
  return found;
}

function popTo(stack: { kind: 'if' | 'menu' }[], kind: 'if' | 'menu'): void {
  const index = stack.map((s) => s.kind).lastIndexOf(kind);
  if (index >= 0) stack.splice(index);
}

/**
 * Why Kconfig could not give a symbol its wanted value: each condition it sits under, with
 * the symbols in it that are off in the final configuration.
 */
export async function explainDrop(tree: string, symbol: string, final: Map<string, KconfigValue>, prefix = 'CONFIG_', srcarch = 'x86'): Promise<string> {
  const off = (expr: string) => [...new Set(expr.match(/[A-Za-z0-9_]+/g) ?? [])].filter((s) => /[A-Z]/.test(s) && !/^[yn]$/.test(s) && (final.get(`${prefix}${s}`) ?? 'n') === 'n');
  const reasons = new Set<string>();
  for (const definition of await definitionsOf(tree, symbol.slice(prefix.length), srcarch)) {
    for (const condition of definition.conditions) {
      const offHere = off(condition.expr);
      // Conditions that hold are not the reason; show only those with something off.
      if (offHere.length > 0) reasons.add(`${condition.kind} ${condition.expr} (off here: ${offHere.join(', ')})`);
    }
  }
  if (reasons.size === 0) return 'no unmet dependency found (a choice, a select, or a symbol this tree does not define)';
  return [...reasons].join('; ');
}
