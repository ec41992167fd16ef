import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { packageStage, withoutPie } from './package.js';

/** zlib, shared: tor links it (directory documents and consensus diffs are deflated). */
export const zlibStage = packageStage({
  name: 'zlib',
  title: 'zlib',
  definition: import.meta.url,
  source: 'zlib',
  image: { libraries: 'usr/lib' },
  // The image links dynamically and has no manual pages; the headers and zlib.pc stay for tor's build.
  remove: ['usr/lib/libz.a', 'usr/share'],
  async build({ ctx, src, tc, env, destdir, make }) {
    // Not autoconf: CHOST names the target; CC and the flags come from the environment and are written into the Makefile.
    await ctx.exec('./configure', ['--prefix=/usr', '--shared'], { cwd: src, env: { ...env, CHOST: tc.target, LDFLAGS: withoutPie(env.LDFLAGS!) } });
    // `install` builds the libraries only; `all` would add zlib's example programs.
    await make(['install', `DESTDIR=${destdir}`]);
    // configure falls back to a static library when its shared-library probe fails, and says so only in passing.
    await stat(join(destdir, 'usr', 'lib', 'libz.so')).catch(() => {
      throw new BuildError('zlib: configure built no shared library (see "Checking for shared library support" in the log)', ctx.stage.name, ctx.logPath, {
        hint: 'The image links zlib dynamically; check the toolchain flags the probe used.',
      });
    });
  },
});
