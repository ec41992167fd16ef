import type { ResolvedConfig } from '../config/resolve.js';
import type { RunOptions, RunResult } from '../exec.js';
import type { FetchedFile } from '../sources/fetch.js';
import type { HostTool } from './tools.js';

/**
 * A stage is data plus one function. Everything it declares goes into its cache key;
 * `run` writes only into `ctx.out` (and scratch files into `ctx.work`).
 */
export interface Stage {
  name: string;
  title: string;
  /**
   * `import.meta.url` of the module that defines the stage (its recipe): the compiled text of
   * it and of every project module it imports, transitively, is part of the key.
   */
  definition: string;
  /** Pinned sources it unpacks (names in configs/sources.json); may depend on the configuration. */
  sources?: readonly string[] | ((config: ResolvedConfig) => readonly string[]);
  /** Configuration keys it reads; nothing else of the configuration reaches it. */
  config?: readonly string[];
  /** Stages whose outputs it uses. */
  deps?: readonly string[];
  /** Project files or folders it reads (kernel fragments, the initramfs tree); may depend on the configuration. */
  files?: readonly string[] | ((config: ResolvedConfig) => readonly string[]);
  /**
   * The host tools it runs or reads; may depend on the configuration. Their identity is part
   * of the key, and its commands run with a PATH holding these commands only.
   */
  tools?: readonly HostTool[] | ((config: ResolvedConfig) => readonly HostTool[]);
  /** Inputs outside the project that the key must cover (an external toolchain's tree): name → sha256. */
  identity?(config: ResolvedConfig): Promise<Record<string, string>>;
  /**
   * Its work survives a failed attempt (engine/steps.ts): `ctx.resume` is kept for the next
   * attempt at the same key, and its commands' tool links are there too, at a fixed path.
   */
  resumable?: boolean;
  /** What of its output goes into the image (a package's; the initramfs stage reads it from every stage that has it). */
  image?: ImageContents;
  run(ctx: StageContext): Promise<void>;
}

export interface ImageContents {
  /** Paths in the output copied to the same path in the image: programs, data files, trees. */
  files?: readonly string[];
  /** The directory of its shared libraries (e.g. `usr/lib`): the image takes the ones its programs need, no others. */
  libraries?: string;
}

export interface StageOutput {
  stage: string;
  key: string;
  /** The stage's output directory in the cache (read-only for consumers). */
  dir: string;
}

export interface StageContext {
  stage: Stage;
  key: string;
  config: ResolvedConfig;
  out: string;
  work: string;
  /** A resumable stage's directory for its steps (see `Stage.resumable`); else undefined. */
  resume?: string;
  deps: Record<string, StageOutput>;
  sources: Record<string, FetchedFile[]>;
  /** The PATH of this stage's commands: a directory of links to its declared host tools. */
  path: string;
  logPath: string;
  signal: AbortSignal;
  /** Runs an external command with this stage's log, name, cancellation and PATH (unless `env.PATH` says otherwise). */
  exec(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** One line of progress for the display. */
  progress(line: string): void;
}

export function stageSources(stage: Stage, config: ResolvedConfig): readonly string[] {
  return typeof stage.sources === 'function' ? stage.sources(config) : (stage.sources ?? []);
}

export function stageFiles(stage: Stage, config: ResolvedConfig): readonly string[] {
  return typeof stage.files === 'function' ? stage.files(config) : (stage.files ?? []);
}

export function stageTools(stage: Stage, config: ResolvedConfig): readonly HostTool[] {
  return typeof stage.tools === 'function' ? stage.tools(config) : (stage.tools ?? []);
}
