import type { ResolvedConfig } from '../config/resolve.js';
import type { RunOptions, RunResult } from '../exec.js';
import type { FetchedFile } from '../sources/fetch.js';

/** A host program (or header, or library file) a stage needs, and the Debian package that provides it. */
export type HostTool = { package: string } & ({ command: string } | { file: string });

/**
 * A stage is data plus one function. Everything it declares goes into its cache key;
 * `run` writes only into `ctx.out` (and scratch files into `ctx.work`).
 */
export interface Stage {
  name: string;
  title: string;
  /** `import.meta.url` of the modules that define the stage (its recipe): their text is part of the key. */
  definition: string | readonly string[];
  /** Pinned sources it unpacks (names in configs/sources.json); may depend on the configuration. */
  sources?: readonly string[] | ((config: ResolvedConfig) => readonly string[]);
  /** Configuration keys it reads; nothing else of the configuration reaches it. */
  config?: readonly string[];
  /** Stages whose outputs it uses. */
  deps?: readonly string[];
  /** Project files or folders it reads (kernel fragments, the initramfs tree); may depend on the configuration. */
  files?: readonly string[] | ((config: ResolvedConfig) => readonly string[]);
  tools?: readonly HostTool[];
  run(ctx: StageContext): Promise<void>;
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
  deps: Record<string, StageOutput>;
  sources: Record<string, FetchedFile[]>;
  /** Parallel jobs this stage may use (make -j). */
  jobs: number;
  logPath: string;
  signal: AbortSignal;
  /** Runs an external command with this stage's log, name and cancellation. */
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
