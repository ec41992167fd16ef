import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { HostTool } from './stage.js';

export function onPath(command: string, path: string = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function missingTools(tools: readonly HostTool[]): HostTool[] {
  const unique = new Map(tools.map((t) => [t.command, t]));
  return [...unique.values()].filter((tool) => !onPath(tool.command));
}

export function packagesFor(tools: readonly HostTool[]): string[] {
  return [...new Set(tools.map((t) => t.package))].sort();
}

export function installCommand(tools: readonly HostTool[]): string {
  return `apt-get install -y ${packagesFor(tools).join(' ')}`;
}
