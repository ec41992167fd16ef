import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { sha256 } from '../hash.js';

/** The compiled tree (`dist/`): what runs is what is hashed. */
export const codeRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/**
 * Modules every stage runs without importing them: the wrapper that starts each of its
 * commands (environment, PATH) and the directory of host-tool links it runs with.
 */
export const STAGE_RUNTIME = ['pipeline/exec.js', 'pipeline/engine/tools.js'] as const;

/**
 * The only modules a stage's import closure leaves out of its key, each with the reason. None
 * of them holds build logic; a test keeps it so (they import nothing of the project).
 */
export const CODE_EXCLUSIONS: Readonly<Record<string, string>> = {
  'pipeline/errors.js': 'error classes and their wording, exit codes: a message changes no output, and every module imports it',
};

/**
 * Everything the engine runs around a stage that is not part of its closure, and why its
 * output does not depend on it (not hashed, listed so that the choice is seen; the keys test
 * prints the list of modules that reach no stage):
 * - the scheduler (`engine/build.js`, `plan.js`, `graph.js`, `store.js`, `lock.js`, `eta.js`,
 *   `pictures.js`, `inputs.js`, `stage.js`, this module): it decides whether and when a stage
 *   runs, shows its progress, and moves its finished output;
 * - the configuration (`config/*`) and the pins (`sources/pins.js`): what a stage reads of
 *   them is in its key as values;
 * - fetching and verification (`sources/fetch.js`, `download.js`, `signature.js`, `cache.js`):
 *   a stage sees only bytes whose sha256 is the pin, and the pin is in the key;
 * - the remote stage cache (`remote/*`): it moves finished outputs, verified by signature and digest;
 * - the CLI, the cache layout (`context.js`), the bundle format, the QEMU driver and the smoke
 *   scenarios, releases and SBOMs (`release/*`), `bump`, the stage registry and doctor's tool
 *   list: they run no stage.
 */

const importPattern = /(?:^|[\s;}])(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;

/** The specifiers a compiled module imports (static and literal dynamic imports, re-exports). */
export function importsOf(text: string): string[] {
  return [...text.matchAll(importPattern)].map((m) => (m[1] ?? m[2])!);
}

/**
 * The code a stage runs, as `{ module: sha256 }` over its definition module and every
 * project module it reaches through imports (plus the stage runtime), and `{ npm:<name>:
 * version }` for each package those import. Paths are relative to the compiled tree, so a
 * clone's location never reaches a key.
 */
export async function codeInputs(definition: string, root: string = codeRoot): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const start = relative(root, fileURLToPath(definition));
  const queue = [start, ...STAGE_RUNTIME];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const module = queue.shift()!;
    if (seen.has(module) || module in CODE_EXCLUSIONS) continue;
    seen.add(module);
    const text = await readFile(join(root, module), 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`stage code ${module} cannot be read from ${root}: ${error.code ?? error.message}`, { hint: 'Run `npm run build` (tsc) first.' });
    });
    result[module] = sha256(text);
    for (const specifier of importsOf(text)) {
      if (specifier.startsWith('.')) queue.push(relative(root, resolve(root, dirname(module), specifier)));
      else if (!isBuiltin(specifier)) Object.assign(result, await packageVersion(specifier, root));
    }
  }
  return result;
}

const versions = new Map<string, Record<string, string>>();

/** `npm:<package>`: the installed version (package-lock.json pins it). */
async function packageVersion(specifier: string, root: string): Promise<Record<string, string>> {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const manifest = join(root, '..', 'node_modules', name, 'package.json');
  if (!versions.has(manifest)) {
    const { version } = JSON.parse(await readFile(manifest, 'utf8')) as { version: string };
    versions.set(manifest, { [`npm:${name}`]: version });
  }
  return versions.get(manifest)!;
}
