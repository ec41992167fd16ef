import { accessSync, constants } from 'node:fs';
import { mkdir, realpath, stat, symlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { MissingToolError } from '../errors.js';
import { run } from '../exec.js';
import { sha256, sha256File } from '../hash.js';

/**
 * A host program (or header, or library file) a stage runs or reads, and the Debian package
 * that provides it. A compiler's identity covers its driver, `-v` and its compiler proper.
 */
export type HostTool = { package: string } & ({ command: string; compiler?: 'cc1' | 'cc1plus' } | { file: string });

export function toolName(tool: HostTool): string {
  return 'command' in tool ? tool.command : tool.file;
}

/** Where `command` is on the host's PATH (the stage's links point there), or undefined. */
export function which(command: string, path: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function present(tool: HostTool): boolean {
  if ('command' in tool) return which(tool.command) !== undefined;
  try {
    accessSync(tool.file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Each tool once, by name, in name order. */
export function uniqueTools(tools: readonly HostTool[]): HostTool[] {
  return [...new Map(tools.map((t) => [toolName(t), t])).values()].sort((a, b) => (toolName(a) < toolName(b) ? -1 : 1));
}

export function missingTools(tools: readonly HostTool[]): HostTool[] {
  return uniqueTools(tools).filter((tool) => !present(tool));
}

export function packagesFor(tools: readonly HostTool[]): string[] {
  return [...new Set(tools.map((t) => t.package))].sort();
}

export function installCommand(tools: readonly HostTool[]): string {
  return `apt-get install -y ${packagesFor(tools).join(' ')}`;
}

const fileHashes = new Map<string, Promise<string>>();

/** sha256 of a file, once per process for each (path, size, mtime). */
async function hashOnce(path: string): Promise<string> {
  const real = await realpath(path);
  const info = await stat(real);
  const id = `${real}:${info.size}:${info.mtimeMs}:${info.ino}`;
  if (!fileHashes.has(id)) fileHashes.set(id, sha256File(real));
  return fileHashes.get(id)!;
}

async function compilerIdentity(driver: string, proper: 'cc1' | 'cc1plus'): Promise<string> {
  const { stderr: version } = await run(driver, ['-v']);
  const { stdout: properPath } = await run(driver, [`-print-prog-name=${proper}`]);
  return sha256([await hashOnce(driver), version.trim(), `${proper} ${await hashOnce(properPath.trim())}`].join('\n'));
}

/**
 * What each declared tool is on this machine, for the stage key: the sha256 of the program a
 * command resolves to (for a compiler, with its `-v` and its compiler proper), or of the file.
 * A tool that is not installed is "missing": the build stops before running anything.
 */
export async function toolIdentities(tools: readonly HostTool[]): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const tool of uniqueTools(tools)) {
    const found = 'command' in tool ? which(tool.command) : present(tool) ? tool.file : undefined;
    if (!found) {
      result[toolName(tool)] = 'missing';
      continue;
    }
    result[toolName(tool)] = 'command' in tool && tool.compiler ? await compilerIdentity(found, tool.compiler) : await hashOnce(found);
  }
  return result;
}

/**
 * The PATH a stage runs with: a new directory holding one link per declared command, to where
 * the host has it, and nothing else. An undeclared tool is not found on any machine.
 */
export async function linkTools(dir: string, tools: readonly HostTool[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  const missing = missingTools(tools);
  if (missing.length > 0) throw new MissingToolError(missing.map(toolName), installCommand(missing));
  for (const tool of uniqueTools(tools)) {
    if ('command' in tool) await symlink(which(tool.command)!, join(dir, tool.command));
  }
  return dir;
}
