import { autotoolsPackage } from './autotools.js';

/** libevent 2.1, shared: tor's event loop. */
export const libeventStage = autotoolsPackage({
  name: 'libevent',
  title: 'libevent',
  definition: import.meta.url,
  source: 'libevent',
  image: { libraries: 'usr/lib' },
  configGuess: 'build-aux/config.guess',
  configure: [
    // tor does its own TLS; 2.1 has no mbedtls support to turn off.
    '--disable-openssl',
    '--disable-samples',
    '--disable-libevent-regress',
    '--disable-debug-mode',
    '--disable-static',
  ],
  sharedOnly: true,
  // Libtool archives serve only libtool links against them; event_rpcgen.py is a build-time tool.
  remove: ['usr/lib/*.la', 'usr/bin'],
});
