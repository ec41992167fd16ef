import type { ResolvedConfig } from '../config/resolve.js';
import type { SourcePins } from '../sources/pins.js';
import { stageClosure } from './graph.js';
import { changedInputs, stageInputs, stageKey, type StageInputs } from './inputs.js';
import type { Stage } from './stage.js';
import type { StageStore } from './store.js';

export interface PlannedStage {
  stage: Stage;
  inputs: StageInputs;
  key: string;
  cached: boolean;
  /** Why it must be built: the inputs that differ from the last build for this arch. */
  reason: string[];
  /** How long its last build for this arch took, if that output is still in the cache (the progress display's estimate). */
  expectedMs: number | undefined;
}

export async function planStages(
  registry: readonly Stage[],
  targets: readonly string[],
  config: ResolvedConfig,
  pins: SourcePins,
  store: StageStore,
): Promise<PlannedStage[]> {
  const keys: Record<string, string> = {};
  const planned: PlannedStage[] = [];
  for (const stage of stageClosure(registry, targets)) {
    const inputs = await stageInputs(stage, config, pins, keys);
    const key = stageKey(inputs);
    keys[stage.name] = key;
    const cached = (await store.lookup(stage.name, key)) !== undefined;
    let reason: string[] = [];
    const last = await store.lastInputs(stage.name, config.arch);
    if (!cached) {
      reason = last ? changedInputs(last, inputs) : ['never built for this arch'];
      if (reason.length === 0) reason = ['output missing from the cache'];
    }
    const expectedMs = last ? (await store.lookup(stage.name, stageKey(last)))?.durationMs : undefined;
    planned.push({ stage, inputs, key, cached, reason, expectedMs });
  }
  return planned;
}

export function formatPlan(plan: PlannedStage[], arch: string): string {
  const width = Math.max(...plan.map((p) => p.stage.name.length));
  const lines = [`plan for ${arch}:`];
  for (const p of plan) {
    lines.push(`  ${p.stage.name.padEnd(width)}  ${p.cached ? 'cached  ' : 'to build'}  ${p.key.slice(0, 12)}`);
    for (const why of p.reason) lines.push(`  ${''.padEnd(width)}    ${why}`);
  }
  return lines.join('\n');
}
