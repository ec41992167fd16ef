import type { Stage } from '../engine/stage.js';
import { kernelConfigStage, kernelStage } from './kernel.js';
import { toolchainStage } from './toolchain.js';

/** Every stage of the pipeline; the last one is what `build` makes by default. */
export const stages: readonly Stage[] = [toolchainStage, kernelConfigStage, kernelStage];
