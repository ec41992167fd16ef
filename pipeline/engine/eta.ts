/** What the estimate knows of a stage: its dependencies and how long its last build here took. */
export interface EtaStage {
  name: string;
  deps: readonly string[];
  /** Undefined when it was never built here: it counts as instant, and the estimate says how many such there are. */
  expectedMs: number | undefined;
}

export interface EtaState {
  done: ReadonlySet<string>;
  /** Stage → when it started (ms since the epoch). */
  running: ReadonlyMap<string, number>;
}

/**
 * The rest of the build, simulated: the running stages finish when their last build says,
 * then each waiting stage (dependencies first) takes the job slot that frees first once its
 * dependencies are done. Returns the milliseconds left and how many stages had no estimate.
 */
export function remainingMs(stages: readonly EtaStage[], state: EtaState, jobs: number, now: number): { ms: number; unknown: number } {
  const finish = new Map<string, number>();
  const slots: number[] = [];
  let unknown = 0;
  for (const s of stages) {
    if (state.done.has(s.name)) finish.set(s.name, now);
    const started = state.running.get(s.name);
    if (started === undefined) continue;
    if (s.expectedMs === undefined) unknown++;
    const end = Math.max(now, started + (s.expectedMs ?? 0));
    finish.set(s.name, end);
    slots.push(end);
  }
  while (slots.length < jobs) slots.push(now);
  slots.sort((a, b) => a - b);
  for (const s of stages) {
    if (finish.has(s.name)) continue;
    if (s.expectedMs === undefined) unknown++;
    const ready = Math.max(now, ...s.deps.map((d) => finish.get(d) ?? now));
    const slot = slots.shift()!;
    const end = Math.max(ready, slot) + (s.expectedMs ?? 0);
    finish.set(s.name, end);
    slots.push(end);
    slots.sort((a, b) => a - b);
  }
  return { ms: Math.max(0, ...[...finish.values()].map((t) => t - now)), unknown };
}
