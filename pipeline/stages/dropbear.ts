import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { autotoolsPackage } from './autotools.js';

/**
 * scp never forwards ports or an agent: the client is built without them. No server is built,
 * but its password authentication is checked for crypt() anyway (i686 has no libcrypt here).
 */
const LOCAL_OPTIONS = `#define DROPBEAR_CLI_LOCALTCPFWD 0
#define DROPBEAR_CLI_REMOTETCPFWD 0
#define DROPBEAR_CLI_AGENTFWD 0
#define DROPBEAR_SVR_PASSWORD_AUTH 0
`;

/** Dropbear's SSH client and scp, for exporting the relay's bundle; no server, so no host keys. */
export const dropbearStage = autotoolsPackage({
  name: 'dropbear',
  title: 'dropbear (scp client)',
  definition: import.meta.url,
  source: 'dropbear',
  // scp runs dbclient, found at /usr/bin/dbclient (dropbear's default).
  image: { files: ['usr/bin/dbclient', 'usr/bin/scp'] },
  configGuess: 'src/config.guess',
  configure: [
    // Its own libtomcrypt and libtommath, never whatever the build machine has.
    '--enable-bundled-libtom',
    '--disable-zlib',
    // No logging and no login records: errors go to stderr only.
    '--disable-syslog',
    '--disable-lastlog',
    '--disable-utmp',
    '--disable-utmpx',
    '--disable-wtmp',
    '--disable-wtmpx',
    '--disable-loginfunc',
    '--disable-pututline',
    '--disable-pututxline',
  ],
  // Optimized for size (the last -O wins): scp runs once per export.
  env: (env) => ({ CFLAGS: `${env.CFLAGS} -Os` }),
  // Only the client side of export.
  makeArgs: ['PROGRAMS=dbclient scp'],
  async preBuild({ src }) {
    await writeFile(join(src, 'localoptions.h'), LOCAL_OPTIONS);
  },
  // Manual pages only; the image has none.
  remove: ['usr/share'],
});
