import type { HostTool } from '../engine/tools.js';
import { UNPACK_TOOLS } from '../sources/extract.js';

const commands = (pkg: string, names: string): HostTool[] => names.split(' ').map((command) => ({ command, package: pkg }));

/**
 * What configure scripts and makefiles take for granted: a POSIX shell and its utilities
 * (what Nix's stdenv and Buildroot's host dependencies give every package), and unpacking.
 */
export const POSIX_TOOLS: readonly HostTool[] = [
  ...commands('dash', 'sh'),
  ...commands('bash', 'bash'),
  ...commands(
    'coreutils',
    '[ arch b2sum base32 base64 basename basenc cat chgrp chmod chown cksum comm cp csplit cut date dd df dir dircolors dirname du echo env expand expr factor false fmt fold groups head id install join link ln logname ls md5sum mkdir mkfifo mknod mktemp mv nice nl nohup nproc numfmt od paste pathchk pr printenv printf ptx pwd readlink realpath rm rmdir seq sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf sleep sort split stat stdbuf sum sync tac tail tee test timeout touch tr true truncate tsort tty uname unexpand uniq unlink wc whoami yes',
  ),
  ...commands('sed', 'sed'),
  ...commands('grep', 'grep egrep fgrep'),
  ...commands('mawk', 'awk'),
  ...commands('findutils', 'find xargs'),
  ...commands('diffutils', 'diff cmp'),
  ...commands('debianutils', 'which'),
  ...commands('hostname', 'hostname'),
  ...commands('make', 'make'),
  ...commands('perl', 'perl'),
  ...UNPACK_TOOLS,
];

/** The build machine's C compiler (build-time helpers, Kbuild's HOSTCC) and its binutils. */
export const HOST_CC: readonly HostTool[] = [
  { command: 'gcc', package: 'gcc', compiler: 'cc1' },
  ...commands('binutils', 'as ld ar nm objcopy objdump ranlib readelf strip'),
];

/** The programs of a GNU cross toolchain, by suffix: what the toolchain stage's bin/ holds for every later stage. */
export const CROSS_TOOL_NAMES = ['gcc', 'cpp', 'ar', 'as', 'ld', 'nm', 'objcopy', 'objdump', 'ranlib', 'readelf', 'size', 'strings', 'strip'] as const;
