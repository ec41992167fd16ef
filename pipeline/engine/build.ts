import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Listr, PRESET_TIMESTAMP, type ListrRendererValue } from 'listr2';
import type { ResolvedConfig } from '../config/resolve.js';
import { BuildError, InputError, LocalFsError, localFsError, MissingToolError, TorRamdiskError } from '../errors.js';
import { run } from '../exec.js';
import type { DownloadCache } from '../sources/cache.js';
import type { Downloader } from '../sources/download.js';
import { fetchSources, type FetchedFile } from '../sources/fetch.js';
import type { SourcePins } from '../sources/pins.js';
import type { RemoteCache } from '../remote/cache.js';
import { remainingMs } from './eta.js';
import { stageFileHashes } from './inputs.js';
import { Jobserver } from './jobserver.js';
import { formatSeconds, timelineSvg, type TimelineEntry } from './pictures.js';
import { planStages, type PlannedStage } from './plan.js';
import { stageSources, stageTools, type Stage, type StageContext, type StageOutput } from './stage.js';
import type { StageStore } from './store.js';
import { installCommand, linkTools, missingTools, toolName } from './tools.js';

export type Renderer = 'default' | 'simple' | 'silent';

/** What every arch of a build shares: the stages, the caches and the job budget. */
export interface SharedBuildOptions {
  registry: readonly Stage[];
  targets: readonly string[];
  pins: SourcePins;
  store: StageStore;
  downloads: DownloadCache;
  /** The job budget: at most this many jobs (stages, and the jobs of their makes) at once, across the arches. */
  jobs?: number;
  offline?: boolean;
  downloader?: Downloader;
  keysDir?: string;
  renderer?: Renderer;
  /** Where what the remote cache did is told once the display is done (pushes finish after their stage). */
  onRemote?: (line: string) => void;
}

/** One configuration (an arch) of a build. */
export interface ArchBuild {
  config: ResolvedConfig;
  /** A shared stage cache: looked up before a stage is built, pushed to after. */
  remote?: RemoteCache;
}

export interface BuildOptions extends SharedBuildOptions, ArchBuild {}

export interface StageResult extends StageOutput {
  cached: boolean;
  /** Taken from the remote cache, verified, instead of built here. */
  pulled: boolean;
  durationMs: number;
}

/** Builds the targets and their dependencies; cached stages are skipped, the rest run in parallel. */
export async function buildStages(options: BuildOptions): Promise<StageResult[]> {
  return (await buildArches(options, [options]))[0]!;
}

/**
 * Builds the targets for each configuration (the arches of `--arch all`) in one build: their
 * stages run side by side under one job budget, so one arch's serial steps (configure scripts,
 * links, compression) leave no core idle while the other has work. A failure in one ends both.
 * The results come per configuration, in the order given.
 */
export async function buildArches(options: SharedBuildOptions, builds: readonly ArchBuild[]): Promise<StageResult[][]> {
  const { store } = options;
  const jobs = options.jobs ?? availableParallelism();
  const plans = await Promise.all(builds.map(({ config }) => planStages(options.registry, options.targets, config, options.pins, store)));
  await store.sweepAbandoned();
  const missing = missingTools(plans.flatMap((plan, i) => plan.filter((p) => !p.cached).flatMap((p) => stageTools(p.stage, builds[i]!.config))));
  if (missing.length > 0) throw new MissingToolError(missing.map(toolName), installCommand(missing));

  const abort = new AbortController();
  // One signal ends every command and releases every lock of the build: it has many listeners by design.
  setMaxListeners(0, abort.signal);
  const jobserver = await Jobserver.open(jobs);
  const unreachableHosts = new Set<string>();
  // For the progress lines and the timeline picture.
  const t0 = Date.now();
  const timeline: TimelineEntry[] = [];
  const pushes: Promise<unknown>[] = [];
  const remoteLines: string[] = builds.flatMap((b) => b.remote?.warnings ?? []);
  // Stage names in the display and the timeline say their arch when there is more than one.
  const label = (config: ResolvedConfig, text: string) => (builds.length > 1 ? `${config.arch} ${text}` : text);
  const units = builds.map(({ config, remote }, i) => archUnit(config, remote, plans[i]!));
  const tasks = new Listr(
    units.flatMap((unit) => unit.tasks),
    {
      concurrent: true,
      exitOnError: true,
      renderer: (options.renderer ?? 'default') as ListrRendererValue,
      rendererOptions: live() ? { collapseErrors: false } : { timestamp: PRESET_TIMESTAMP },
    } as ConstructorParameters<typeof Listr>[1],
  );
  try {
    await tasks.run();
  } finally {
    jobserver.close();
    await Promise.all(pushes);
    for (const line of remoteLines) options.onRemote?.(line);
    const slot = builds.length > 1 ? 'all' : builds[0]!.config.arch;
    const arches = builds.map((b) => b.config.arch).join(' and ');
    if (timeline.some((e) => !e.cached)) await writeTimeline(store.timelinePath(slot), timelineSvg(timeline, `tor-ramdisk build, ${arches}, ${new Date(t0).toISOString()}`, jobs));
  }
  return Promise.all(units.map((unit) => Promise.all(unit.plan.map((p) => unit.results.get(p.stage.name)!.promise))));

  function live(): boolean {
    return options.renderer === 'default' || options.renderer === undefined;
  }

  /** One configuration's stages: their tasks (a summary line, then one per stage) and their results. */
  function archUnit(config: ResolvedConfig, remote: RemoteCache | undefined, plan: PlannedStage[]) {
    // One settled-later promise per stage, made before anything starts, so a stage can wait for its deps.
    const results = new Map(plan.map((p) => [p.stage.name, deferred<StageResult>()]));
    const done = new Set<string>();
    const running = new Map<string, number>();
    /** This configuration's entries of the timeline. */
    const mine: TimelineEntry[] = [];
    let refreshSummary = () => {};
    const finished = (name: string, cached: boolean, startedAt: number, slot?: number, pulled = false) => {
      running.delete(name);
      done.add(name);
      const entry = { stage: label(config, name), startMs: startedAt - t0, endMs: Date.now() - t0, cached, ...(pulled ? { pulled } : {}), ...(slot === undefined ? {} : { slot }) };
      mine.push(entry);
      timeline.push(entry);
      refreshSummary();
    };
    /** Takes a stage from the remote cache into the store as a build would, or says why not; the caller holds its lock and a slot. */
    const pullStage = async (planned: PlannedStage, update: (title: string) => void, slot: number): Promise<StageResult | undefined> => {
      const name = planned.stage.name;
      const started = Date.now();
      update(`${planned.stage.title} (looking in ${remote!.url})`);
      const temp = await store.begin(name, planned.key);
      running.set(name, started);
      try {
        const result = await remote!.pull(name, planned.key, temp);
        if (!result.pulled) {
          // A miss is the normal case; a refusal or a failing registry is for the person to see.
          if (!result.missing) remoteLines.push(`WARNING: ${name} ${planned.key.slice(0, 12)}… from ${remote!.url}: ${result.reason}; built here instead`);
          running.delete(name);
          await store.discard(temp.dir);
          return undefined;
        }
        await writeFile(store.logPath(name, planned.key), `pulled from ${remote!.url}, signed by ${result.signedBy}\n`);
        await store.commit(name, temp.dir, result.manifest);
        await store.recordLast(name, config.arch, planned.inputs);
        remoteLines.push(`${name}: pulled from ${remote!.url}, signed by ${result.signedBy}`);
        finished(name, false, started, slot, true);
        return { stage: name, key: planned.key, dir: store.outDir(name, planned.key), cached: false, pulled: true, durationMs: Date.now() - started };
      } catch (error) {
        running.delete(name);
        await store.discard(temp.dir);
        throw localFsError(error, `stage ${name}: pulling from ${remote!.url}`) ?? error;
      }
    };

    const runOne = async (planned: PlannedStage, update: (title: string) => void, output: (line: string) => void, step: (line: string) => void): Promise<StageResult> => {
      const depOutputs: Record<string, StageOutput> = {};
      for (const dep of planned.stage.deps ?? []) depOutputs[dep] = await results.get(dep)!.promise;
      const started = Date.now();
      const name = planned.stage.name;
      if (planned.cached) {
        await store.recordLast(name, config.arch, planned.inputs);
        finished(name, true, started);
        return { stage: name, key: planned.key, dir: store.outDir(name, planned.key), cached: true, pulled: false, durationMs: Date.now() - started };
      }
      update(`${planned.stage.title} (waiting for a job slot)`);
      const { lane: slot, release } = await jobserver.acquire(abort.signal);
      const unlock = await store.lock(name, planned.key, { signal: abort.signal, onWait: update });
      if (await store.lookup(name, planned.key)) {
        // Another run built it while this one waited for the lock.
        await unlock();
        release();
        await store.recordLast(name, config.arch, planned.inputs);
        finished(name, true, started);
        return { stage: name, key: planned.key, dir: store.outDir(name, planned.key), cached: true, pulled: false, durationMs: Date.now() - started };
      }
      if (remote) {
        let pulled: StageResult | undefined;
        try {
          pulled = await pullStage(planned, update, slot);
        } catch (error) {
          await unlock();
          release();
          throw error;
        }
        if (pulled) {
          await unlock();
          release();
          return pulled;
        }
      }
      const temp = await store.begin(name, planned.key);
      const building = Date.now();
      running.set(name, building);
      refreshSummary();
      try {
        update(planned.stage.title);
        const sources: Record<string, FetchedFile[]> = {};
        for (const source of stageSources(planned.stage, config)) {
          output(`verifying ${source}`);
          sources[source] = await fetchSources([options.pins.get(source)!], {
            cache: options.downloads,
            offline: options.offline ?? false,
            unreachableHosts,
            signal: abort.signal,
            onEvent: output,
            ...(options.downloader ? { downloader: options.downloader } : {}),
            ...(options.keysDir ? { keysDir: options.keysDir } : {}),
          });
        }
        const logPath = store.logPath(name, planned.key);
        // A resumable stage's build trees outlive an attempt: configure scripts record the tools' paths.
        const resume = planned.stage.resumable ? store.resumeDir(name, planned.key) : undefined;
        const toolDir = resume ? join(resume, 'path') : temp.path;
        if (resume) await rm(toolDir, { recursive: true, force: true });
        const path = await linkTools(toolDir, stageTools(planned.stage, config));
        const ctx: StageContext = {
          stage: planned.stage,
          key: planned.key,
          config,
          out: temp.out,
          work: temp.work,
          ...(resume ? { resume } : {}),
          deps: depOutputs,
          sources,
          path,
          logPath,
          signal: abort.signal,
          exec: (command, args, opts = {}) => run(command, args, { logPath, stage: name, signal: abort.signal, onLine: output, jobserver, ...opts, env: { PATH: path, ...opts.env } }),
          progress: step,
        };
        await planned.stage.run(ctx);
        // The project files are read while the stage runs: one edited meanwhile would put an output under a key that does not describe it.
        const files = await stageFileHashes(planned.stage, config);
        const edited = [...new Set([...Object.keys(files), ...Object.keys(planned.inputs.files)])].filter((f) => files[f] !== planned.inputs.files[f]).sort();
        if (edited.length > 0) {
          throw new InputError(`stage ${name}: ${edited.join(', ')} changed while it was building; its output was not kept`, { hint: 'Build again: the stage is then built from the files as they are now.' });
        }
        const durationMs = Date.now() - building;
        await store.commit(name, temp.dir, { key: planned.key, inputs: planned.inputs, builtAt: new Date().toISOString(), durationMs });
        await store.recordLast(name, config.arch, planned.inputs);
        finished(name, false, building, slot);
        if (remote?.signKey) {
          pushes.push(
            remote.push(name, planned.key, store).then(
              () => remoteLines.push(`${name}: pushed to ${remote.url}, signed by ${remote.signKey}`),
              (error: unknown) => remoteLines.push(`WARNING: ${name}: not pushed to ${remote.url}: ${(error as Error).message}`),
            ),
          );
        }
        return { stage: name, key: planned.key, dir: store.outDir(name, planned.key), cached: false, pulled: false, durationMs };
      } catch (error) {
        running.delete(name);
        const local = await diskRefusal(temp.dir, name, error);
        await store.discard(temp.dir);
        // A resumable stage that failed before any step of its own holds only its tool links: nothing to resume.
        const resume = planned.stage.resumable ? store.resumeDir(name, planned.key) : undefined;
        if (resume && (await readdir(resume).catch(() => [])).every((entry) => entry === 'path')) await rm(resume, { recursive: true, force: true }).catch(() => undefined);
        throw local ?? (error instanceof TorRamdiskError ? error : (localFsError(error, `stage ${name}`) ?? new TorRamdiskError('ERR_STAGE', 'build', `stage ${name} failed: ${(error as Error).message}`, { cause: error })));
      } finally {
        await unlock();
        release();
      }
    };

    const etaStages = plan.map((p) => ({ name: p.stage.name, deps: p.stage.deps ?? [], expectedMs: p.cached ? 0 : p.expectedMs }));
    const summary = {
      title: summaryLine(config.arch, plan.length, done.size, running.size, remainingMs(etaStages, { done, running }, jobs, Date.now())),
      task: async (_ctx: unknown, task: { title: string }) => {
        refreshSummary = () => (task.title = summaryLine(config.arch, plan.length, done.size, running.size, remainingMs(etaStages, { done, running }, jobs, Date.now())));
        // A live display ticks; a log (CI) gets a line when a stage starts or ends.
        const ticker = live() ? setInterval(refreshSummary, 5000) : undefined;
        try {
          await Promise.allSettled(plan.map((p) => results.get(p.stage.name)!.promise));
        } finally {
          clearInterval(ticker);
        }
        const built = mine.filter((e) => !e.cached && !e.pulled).length;
        const pulledCount = mine.filter((e) => e.pulled).length;
        const pulled = pulledCount > 0 ? `, ${pulledCount} pulled` : '';
        task.title = `${config.arch}: ${plan.length} stages, ${built} built${pulled}, ${mine.filter((e) => e.cached).length} cached, in ${formatSeconds((Date.now() - t0) / 1000)}`;
      },
    };
    const stageTasks = plan.map((planned) => ({
      title: label(config, planned.cached ? `${planned.stage.title} [cached]` : planned.stage.title),
      task: async (_ctx: unknown, task: { title: string; output: string }) => {
        const settle = results.get(planned.stage.name)!;
        const expected = planned.expectedMs === undefined ? 'never built here' : `~${formatSeconds(planned.expectedMs / 1000)} last time`;
        try {
          const result = await runOne(
            planned,
            (title) => (task.title = label(config, title)),
            // Without a live display, lines would scroll by by the thousand: the log file has them.
            live() ? (line) => (task.output = line) : () => {},
            (line) => (task.title = label(config, `${planned.stage.title}: ${line} (${formatSeconds((Date.now() - (running.get(planned.stage.name) ?? Date.now())) / 1000)}; ${expected})`)),
          );
          settle.resolve(result);
          task.title = label(config, `${planned.stage.title} [${result.cached ? 'cached' : `${result.pulled ? 'pulled' : 'built'} in ${formatSeconds(result.durationMs / 1000)}`}]`);
        } catch (error) {
          settle.reject(error);
          abort.abort();
          throw error;
        }
      },
    }));
    return { plan, results, tasks: [summary, ...stageTasks] };
  }
}

/**
 * Whether the disk under a failed stage refuses writes (full, over quota, read-only): then the
 * failure is a local fault, whatever the command printed (tar says "Wrote only 3072 of 10240
 * bytes"). Asked by writing 1 MiB there ourselves, before the attempt's files are removed.
 */
async function diskRefusal(dir: string, stage: string, error: unknown): Promise<LocalFsError | undefined> {
  if (!(error instanceof BuildError || (error instanceof TorRamdiskError && error.cause instanceof BuildError))) return undefined;
  const probe = join(dir, '.space-probe');
  try {
    await writeFile(probe, Buffer.alloc(1 << 20));
    return undefined;
  } catch (cause) {
    const local = localFsError(cause);
    const what = error.message.split('\n')[0]!.replace(new RegExp(`^stage ${stage}: `), '');
    return local && new LocalFsError(dir, local.errno, `stage ${stage}: ${what}; the disk under it refuses writes`, { cause: error });
  } finally {
    await rm(probe, { force: true });
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a failure is reported by its own task; waiting stages see it too
  return { promise, resolve, reject };
}

function summaryLine(arch: string, total: number, done: number, running: number, eta: { ms: number; unknown: number }): string {
  const left = done === total ? 'done' : `about ${formatSeconds(eta.ms / 1000)} left${eta.unknown > 0 ? ` (+ ${eta.unknown} stage${eta.unknown === 1 ? '' : 's'} never built here)` : ''}`;
  return `${arch}: ${done} of ${total} stages done, ${running} building, ${left}`;
}

/** The timeline is for people: a filesystem that refuses it does not fail the build. */
async function writeTimeline(path: string, svg: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true }).catch(() => {});
  await writeFile(path, svg).catch(() => {});
}
