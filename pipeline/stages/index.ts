import type { Stage } from '../engine/stage.js';
import { busyboxStage } from './busybox.js';
import { dropbearStage } from './dropbear.js';
import { initramfsStage } from './initramfs.js';
import { isoStage } from './iso.js';
import { kernelConfigStage, kernelEmbeddedStage, kernelStage } from './kernel.js';
import { libeventStage } from './libevent.js';
import { libseccompStage } from './libseccomp.js';
import { opensslStage } from './openssl.js';
import { toolchainStage } from './toolchain.js';
import { torStage } from './tor.js';
import { zlibStage } from './zlib.js';

/** The packages, built with the toolchain; the initramfs holds what each declares for the image. */
const packages: readonly Stage[] = [zlibStage, libeventStage, opensslStage, libseccompStage, torStage, busyboxStage, dropbearStage];

/** Every stage of the pipeline. */
export const stages: readonly Stage[] = [
  toolchainStage,
  ...packages,
  kernelConfigStage,
  kernelStage,
  initramfsStage(packages),
  kernelEmbeddedStage,
  isoStage,
];

/** What `build` makes by default: the three images (bzImage + initramfs, the kernel with it inside, the hybrid ISO). */
export const IMAGE_TARGETS = ['kernel', 'initramfs', 'kernel-embedded', 'iso'] as const;
