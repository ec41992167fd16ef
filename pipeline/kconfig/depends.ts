import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KconfigValue } from './fragment.js';

/** Every Kconfig file under a source tree. */
async function kconfigFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.')) await kconfigFiles(path, out);
    } else if (entry.name.startsWith('Kconfig') || entry.name.startsWith('Config.')) {
      out.push(path);
    }
  }
  return out;
}

const BLOCK_END = /^(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|comment|mainmenu)\b/;

/**
 * Why Kconfig could not give a symbol its wanted value: the `depends on` lines of its
 * definitions, with the symbols in them that are off in the final configuration.
 */
export async function explainDrop(tree: string, symbol: string, final: Map<string, KconfigValue>, prefix = 'CONFIG_'): Promise<string> {
  const bare = symbol.slice(prefix.length);
  const reasons: string[] = [];
  for (const file of await kconfigFiles(tree)) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (!new RegExp(`^\\s*(menu)?config\\s+${bare}\\s*$`).test(line)) return;
      for (let j = i + 1; j < lines.length && !BLOCK_END.test(lines[j]!.trim()); j++) {
        const dep = /^\s*depends on\s+(.*)$/.exec(lines[j]!);
        if (!dep) continue;
        const off = [...new Set(dep[1]!.match(/[A-Z][A-Z0-9_]+/g) ?? [])].filter((s) => (final.get(`${prefix}${s}`) ?? 'n') === 'n');
        reasons.push(`depends on ${dep[1]!.trim()}${off.length > 0 ? ` (off here: ${off.join(', ')})` : ''}`);
      }
    });
  }
  if (reasons.length === 0) return 'no dependency explains it (a choice, a select, or a symbol this tree does not define)';
  return [...new Set(reasons)].join('; ');
}
