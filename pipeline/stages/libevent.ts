import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { autoconfTriplets, packageStage, withoutPie } from './package.js';

/** libevent 2.1, shared: tor's event loop. */
export const libeventStage = packageStage({
  name: 'libevent',
  title: 'libevent',
  definition: import.meta.url,
  source: 'libevent',
  async build(pkg) {
    const { ctx, src, env, destdir, make } = pkg;
    await ctx.exec(
      './configure',
      [
        ...(await autoconfTriplets(pkg, 'build-aux/config.guess')),
        '--prefix=/usr',
        // tor does its own TLS; 2.1 has no mbedtls support to turn off.
        '--disable-openssl',
        '--disable-samples',
        '--disable-libevent-regress',
        '--disable-debug-mode',
        '--disable-static',
      ],
      { cwd: src, env: { ...env, LDFLAGS: withoutPie(env.LDFLAGS!) } },
    );
    await make([]);
    await make(['install', `DESTDIR=${destdir}`]);
    // Libtool archives serve only libtool links against them; event_rpcgen.py is a build-time tool.
    const lib = join(destdir, 'usr', 'lib');
    for (const file of await readdir(lib)) if (file.endsWith('.la')) await rm(join(lib, file));
    await rm(join(destdir, 'usr', 'bin'), { recursive: true });
  },
});
