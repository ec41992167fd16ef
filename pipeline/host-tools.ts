import type { HostTool } from './engine/stage.js';
import { stages } from './stages/index.js';

/** What the test suite runs besides the build's own tools: gpg for signatures, QEMU for boots. */
export const testTools: readonly HostTool[] = [
  { command: 'gpg', package: 'gnupg' },
  { command: 'qemu-system-x86_64', package: 'qemu-system-x86' },
  { command: 'qemu-system-i386', package: 'qemu-system-x86' },
  // UEFI firmware for the x86_64 ISO's UEFI boot (qemu/x86_64.json names the file).
  { file: '/usr/share/ovmf/OVMF.fd', package: 'ovmf' },
  // The runtime's shell runs under the host's busybox ash; strace proves secrets stay out of argv.
  { file: '/bin/busybox', package: 'busybox-static' },
  { command: 'strace', package: 'strace' },
  // The bundle tests open what the host sealed with `openssl enc`, as the image does.
  { command: 'openssl', package: 'openssl' },
];

/** Host tools the stages declare, plus what fetching and unpacking need. */
export function buildTools(): HostTool[] {
  return [
    { command: 'gpgv', package: 'gpgv' },
    { command: 'tar', package: 'tar' },
    { command: 'xz', package: 'xz-utils' },
    { command: 'bzip2', package: 'bzip2' },
    { command: 'dpkg-deb', package: 'dpkg' },
    ...stages.flatMap((s) => s.tools ?? []),
  ];
}
