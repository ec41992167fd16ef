import type { Stage } from '../engine/stage.js';
import { busyboxStage } from './busybox.js';
import { dropbearStage } from './dropbear.js';
import { initramfsStage } from './initramfs.js';
import { kernelConfigStage, kernelEmbeddedStage, kernelStage } from './kernel.js';
import { libeventStage } from './libevent.js';
import { opensslStage } from './openssl.js';
import { toolchainStage } from './toolchain.js';
import { torStage } from './tor.js';
import { zlibStage } from './zlib.js';

/** Every stage of the pipeline. */
export const stages: readonly Stage[] = [
  toolchainStage,
  zlibStage,
  libeventStage,
  opensslStage,
  torStage,
  busyboxStage,
  dropbearStage,
  kernelConfigStage,
  kernelStage,
  initramfsStage,
  kernelEmbeddedStage,
];

/** What `build` makes by default: the images (bzImage + initramfs, and the kernel with it inside). */
export const IMAGE_TARGETS = ['kernel', 'initramfs', 'kernel-embedded'] as const;
