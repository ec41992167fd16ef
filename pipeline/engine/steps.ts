import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LocalFsError } from '../errors.js';
import type { StageContext } from './stage.js';

/**
 * One step of a resumable stage. `writes` names every directory under `ctx.resume` the step
 * creates or changes: they are what is put back before the step is tried again.
 */
export interface Step {
  name: string;
  writes: readonly string[];
  run(): Promise<void>;
}

/**
 * Runs a resumable stage's steps (`Stage.resumable`), starting at the first one that has not
 * succeeded at this key. Before a step starts, what it writes is copied aside; once it has
 * succeeded its stamp is written and the copy dropped. A step that failed or was killed is
 * retried from that copy, never from what it left halfway: the step sees exactly what the
 * steps before it made, as in an uninterrupted build, so nothing half-written is trusted.
 */
export async function runSteps(ctx: StageContext, steps: readonly Step[]): Promise<void> {
  const root = ctx.resume;
  if (!root) throw new Error(`stage ${ctx.stage.name} runs steps but is not declared resumable`);
  const state = join(root, '.steps');
  await mkdir(state, { recursive: true });
  for (const [index, step] of steps.entries()) {
    const id = `${String(index + 1).padStart(2, '0')}-${step.name.replace(/[^A-Za-z0-9]+/g, '-')}`;
    const stamp = join(state, `${id}.done`);
    if (await exists(stamp)) {
      ctx.progress(`${step.name}: done in an earlier attempt`);
      continue;
    }
    const saved = join(state, `${id}.before`);
    if (await exists(saved)) {
      ctx.progress(`${step.name}: resuming from its start`);
      await restore(ctx, root, saved, step.writes);
    } else {
      await save(ctx, root, saved, step.writes);
    }
    ctx.progress(step.name);
    await step.run();
    await writeFile(stamp, `${new Date().toISOString()}\n`);
    await rm(saved, { recursive: true, force: true });
  }
}

/** Copies what the step writes into `saved` (via a temporary name: a killed copy is no copy). */
async function save(ctx: StageContext, root: string, saved: string, writes: readonly string[]): Promise<void> {
  const temp = `${saved}.tmp`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp);
  const absent: string[] = [];
  for (const dir of writes) {
    if (!(await exists(join(root, dir)))) {
      absent.push(dir);
      continue;
    }
    await mkdir(dirname(join(temp, dir)), { recursive: true });
    // cp -a keeps modification times to the nanosecond: make sees the tree as it was.
    await ctx.exec('cp', ['-a', join(root, dir), join(temp, dir)]);
  }
  await writeFile(join(temp, '.absent.json'), JSON.stringify(absent));
  await rename(temp, saved);
}

/** Puts back what the step writes as it was before the step's first attempt. */
async function restore(ctx: StageContext, root: string, saved: string, writes: readonly string[]): Promise<void> {
  const absent = JSON.parse(await readFile(join(saved, '.absent.json'), 'utf8')) as string[];
  for (const dir of writes) {
    await rm(join(root, dir), { recursive: true, force: true, maxRetries: 5 });
    if (absent.includes(dir)) continue;
    if (!(await exists(join(saved, dir)))) throw new LocalFsError(join(saved, dir), 'ENOENT', `stage ${ctx.stage.name}: the copy of ${dir} made before this step is gone (tor-ramdisk clean --abandoned starts the stage afresh)`);
    await mkdir(dirname(join(root, dir)), { recursive: true });
    await ctx.exec('cp', ['-a', join(saved, dir), join(root, dir)]);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
