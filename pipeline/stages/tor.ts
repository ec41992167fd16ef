import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { autoconfTriplets, packageStage } from './package.js';

/**
 * tor, linked against the zlib, libevent and OpenSSL stages, and its unit tests (`tests/test`,
 * run on the build machine for x86_64 with those stages' libraries on LD_LIBRARY_PATH).
 */
export const torStage = packageStage({
  name: 'tor',
  title: 'tor',
  definition: import.meta.url,
  source: 'tor',
  deps: ['zlib', 'libevent', 'openssl'],
  tools: [{ command: 'pkg-config', package: 'pkg-config' }],
  async build(pkg) {
    const { ctx, src, env, destdir, depPrefix, make } = pkg;
    await ctx.exec(
      './configure',
      [
        ...(await autoconfTriplets(pkg, 'config.guess')),
        '--prefix=/usr',
        '--sysconfdir=/etc',
        '--localstatedir=/var',
        `--with-zlib-dir=${depPrefix('zlib')}`,
        `--with-libevent-dir=${depPrefix('libevent')}`,
        `--with-openssl-dir=${depPrefix('openssl')}`,
        '--enable-gcc-hardening',
        '--enable-linker-hardening',
        // A relay image: no directory authority code.
        '--disable-module-dirauth',
        // Only the libraries above: no libseccomp, liblzma, libzstd, libscrypt or libsystemd is built for the image.
        '--disable-seccomp',
        '--disable-lzma',
        '--disable-zstd',
        '--disable-libscrypt',
        '--disable-systemd',
        '--disable-asciidoc',
        '--disable-manpage',
        '--disable-html-manual',
      ],
      {
        cwd: src,
        env: {
          ...env,
          // Each function and object in its own section, so the link keeps only what tor reaches.
          CFLAGS: `${env.CFLAGS} -ffunction-sections -fdata-sections`,
          LDFLAGS: `${env.LDFLAGS} -Wl,--gc-sections`,
          // The build machine's pkg-config, reading only the dependencies' .pc files (PKG_CONFIG_LIBDIR):
          // configure stops on an unprefixed tool when cross-compiling, and there is no <target>-pkg-config.
          PKG_CONFIG: 'pkg-config',
          // Probes that would find a library on the build machine (the host toolchain's sysroot is /): the image has neither.
          ac_cv_lib_cap_cap_init: 'no',
          tor_cv_can_use_curve25519_nacl: 'no',
          // For a crash backtrace, tor adds unwind tables and -rdynamic (which exports all of its
          // 5000 symbols to name the frames): the image has no unwinder to take one, nor a log.
          tor_cv_cflags__fasynchronous_unwind_tables: 'no',
          tor_cv_ldflags__rdynamic: 'no',
        },
      },
    );
    // `all` builds tor, its tools and the unit-test programs.
    await make([]);
    await make(['install', `DESTDIR=${destdir}`]);
    // The image runs tor only: no tor-resolve, torify, tor-gencert or tor-print-ed-signing-cert, no torrc.sample.
    const bin = join(destdir, 'usr', 'bin');
    for (const file of await readdir(bin)) if (file !== 'tor') await rm(join(bin, file));
    await rm(join(destdir, 'etc'), { recursive: true });
    // The unit tests sit beside the image's tree (usr/), never in it.
    await mkdir(join(destdir, 'tests'));
    await copyFile(join(src, 'src', 'test', 'test'), join(destdir, 'tests', 'test'));
  },
});
