import { statSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import { InputError } from '../errors.js';
import { canonicalJson, sha256 } from '../hash.js';
import { imageMode } from '../image/tree.js';
import { projectRoot } from '../paths.js';
import type { SourcePins } from '../sources/pins.js';
import { codeInputs } from './code.js';
import { stageFiles, stageSources, stageTools, type Stage } from './stage.js';
import { toolIdentities, uniqueTools, which, type HostTool } from './tools.js';

/** Everything a stage's output depends on, in canonical form. Its sha256 is the stage's key. */
export interface StageInputs {
  stage: string;
  /** The compiled project modules that run to make it (module → sha256) and the npm packages they import. */
  code: Record<string, string>;
  sources: Record<string, { version: string; files: Record<string, string[]> }>;
  config: Record<string, unknown>;
  files: Record<string, string>;
  deps: Record<string, string>;
  /** What each declared host tool is on this machine, and the stage's other outside inputs. */
  tools: Record<string, string>;
}

export async function stageInputs(
  stage: Stage,
  config: ResolvedConfig,
  pins: SourcePins,
  depKeys: Record<string, string>,
  root: string = projectRoot,
): Promise<StageInputs> {
  const sources: StageInputs['sources'] = {};
  for (const name of stageSources(stage, config)) {
    const pin = pins.get(name);
    if (!pin) throw new InputError(`stage ${stage.name} needs source "${name}", which configs/sources.json does not pin`, { hint: 'No pin, no build.' });
    // Content hashes only: a new mirror URL does not change what is built.
    sources[name] = {
      version: pin.version,
      files: Object.fromEntries(pin.files.map((f) => [f.name, [f.sha256, ...f.mirrors.map((m) => m.memberSha256 ?? m.sha256)]])),
    };
  }
  const files = await stageFileHashes(stage, config, root);
  return {
    stage: stage.name,
    code: await codeInputs(stage.definition),
    sources,
    config: config.pick(stage.config ?? []),
    files,
    deps: Object.fromEntries((stage.deps ?? []).map((dep) => [dep, depKeys[dep]!])),
    tools: { ...(await identities(stageTools(stage, config))), ...(await stage.identity?.(config)) },
  };
}

const known = new Map<string, Promise<Record<string, string>>>();

/** Each tool's identity once per process while its program is unchanged (a compiler's costs two runs of it). */
async function identities(tools: readonly HostTool[]): Promise<Record<string, string>> {
  const parts = await Promise.all(
    uniqueTools(tools).map((tool) => {
      const path = 'command' in tool ? which(tool.command) : tool.file;
      const info = path ? statSync(path, { throwIfNoEntry: false }) : undefined;
      const id = `${JSON.stringify(tool)}|${path}|${info?.ino}|${info?.mtimeMs}|${info?.size}`;
      if (!known.has(id)) known.set(id, toolIdentities([tool]));
      return known.get(id)!;
    }),
  );
  return Object.assign({}, ...parts) as Record<string, string>;
}

/** The project files a stage reads, each with its sha256 and image mode. */
export async function stageFileHashes(stage: Stage, config: ResolvedConfig, root: string = projectRoot): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const path of stageFiles(stage, config)) Object.assign(files, await hashTree(root, join(root, path)));
  return files;
}

export function stageKey(inputs: StageInputs): string {
  return sha256(canonicalJson(inputs));
}

async function hashTree(root: string, path: string): Promise<Record<string, string>> {
  const info = await lstat(path).catch(() => {
    throw new InputError(`stage input ${relative(root, path)} does not exist`);
  });
  if (info.isSymbolicLink()) return { [relative(root, path)]: `-> ${await readlink(path)}` };
  // The mode as the image takes it: an executable or private file differs from a plain one.
  const mode = imageMode(info).toString(8);
  if (info.isFile()) return { [relative(root, path)]: `${sha256(await readFile(path))}:${mode}` };
  const result: Record<string, string> = { [`${relative(root, path) || '.'}/`]: mode };
  for (const entry of (await readdir(path)).sort()) Object.assign(result, await hashTree(root, join(path, entry)));
  return result;
}

/** Dotted paths whose values differ between two input sets: what `plan` reports as changed. */
export function changedInputs(before: StageInputs, after: StageInputs): string[] {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((key) => a[key] !== b[key]).map((key) => describeChange(key, a[key], b[key]));
}

function describeChange(key: string, before: string | undefined, after: string | undefined): string {
  if (before === undefined) return `${key} (added)`;
  if (after === undefined) return `${key} (removed)`;
  const short = (v: string) => (/^"?[0-9a-f]{64}/.test(v) ? `${v.replace(/"/g, '').slice(0, 12)}…` : v);
  return `${key}: ${short(before)} → ${short(after)}`;
}

function flatten(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}
