import { autotoolsPackage } from './autotools.js';

/** libseccomp, shared: the syscall filter of tor's sandbox (Sandbox 1). */
export const libseccompStage = autotoolsPackage({
  name: 'libseccomp',
  title: 'libseccomp',
  definition: import.meta.url,
  source: 'libseccomp',
  image: { libraries: 'usr/lib' },
  // configure insists on it; the syscall tables it makes ship prebuilt, so make regenerates them only if syscalls.csv is newer.
  tools: [{ command: 'gperf', package: 'gperf' }],
  configGuess: 'build-aux/config.guess',
  // No Python bindings (the default), no static library.
  configure: ['--disable-static', '--disable-python'],
  sharedOnly: true,
  // scmp_sys_resolver is a developer's tool; libtool archives and manual pages serve no one here.
  remove: ['usr/lib/*.la', 'usr/bin', 'usr/share'],
});
