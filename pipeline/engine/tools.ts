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

export function toolName(tool: HostTool): string {
  return 'command' in tool ? tool.command : tool.file;
}

function present(tool: HostTool): boolean {
  if ('command' in tool) return onPath(tool.command);
  try {
    accessSync(tool.file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function missingTools(tools: readonly HostTool[]): HostTool[] {
  const unique = new Map(tools.map((t) => [toolName(t), t]));
  return [...unique.values()].filter((tool) => !present(tool));
}

export function packagesFor(tools: readonly HostTool[]): string[] {
  return [...new Set(tools.map((t) => t.package))].sort();
}

export function installCommand(tools: readonly HostTool[]): string {
  return `apt-get install -y ${packagesFor(tools).join(' ')}`;
}
