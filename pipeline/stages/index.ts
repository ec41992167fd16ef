import type { HostTool, Stage } from '../engine/stage.js';
import { kernelConfigStage, kernelStage } from './kernel.js';
import { toolchainStage } from './toolchain.js';

/** Every stage of the pipeline; the last one is what `build` makes by default. */
export const stages: readonly Stage[] = [toolchainStage, kernelConfigStage, kernelStage];

/** Host tools every stage may need, for `doctor` and the README's set-up command. */
export function hostTools(): HostTool[] {
  return stages.flatMap((s) => s.tools ?? []);
}
