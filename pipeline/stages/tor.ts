import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { autotoolsPackage } from './autotools.js';

/**
 * tor, linked against the zlib, libevent, OpenSSL and libseccomp stages, and its unit tests
 * (`tests/test`, run on the build machine for x86_64 with those stages' libraries on
 * LD_LIBRARY_PATH). The image runs tor only: its other programs stay in the stage output.
 */
export const torStage = autotoolsPackage({
  name: 'tor',
  title: 'tor',
  definition: import.meta.url,
  source: 'tor',
  deps: ['zlib', 'libevent', 'openssl', 'libseccomp'],
  tools: [{ command: 'pkg-config', package: 'pkg-config' }],
  image: { files: ['usr/bin/tor'] },
  configGuess: 'config.guess',
  configure: ({ depPrefix }) => [
    '--sysconfdir=/etc',
    '--localstatedir=/var',
    `--with-zlib-dir=${depPrefix('zlib')}`,
    `--with-libevent-dir=${depPrefix('libevent')}`,
    `--with-openssl-dir=${depPrefix('openssl')}`,
    '--enable-gcc-hardening',
    '--enable-linker-hardening',
    // The seccomp sandbox (Sandbox 1, which the image always sets), from the libseccomp stage.
    '--enable-seccomp',
    // A relay image: no directory authority code.
    '--disable-module-dirauth',
    // Only the libraries above: no liblzma, libzstd, libscrypt or libsystemd is built for the image.
    '--disable-lzma',
    '--disable-zstd',
    '--disable-libscrypt',
    '--disable-systemd',
    '--disable-asciidoc',
    '--disable-manpage',
    '--disable-html-manual',
  ],
  env: (env) => ({
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
  }),
  async preBuild({ ctx, src }) {
    // configure turns the sandbox off quietly when it cannot find libseccomp: the image relies on it.
    const orconfig = await readFile(join(src, 'orconfig.h'), 'utf8');
    if (!/^#define HAVE_SECCOMP_H 1$/m.test(orconfig) || !/-lseccomp\b/.test(await readFile(join(src, 'Makefile'), 'utf8'))) {
      throw new BuildError("tor's configure found no libseccomp: tor would run without its sandbox", ctx.stage.name, ctx.logPath, {
        hint: 'See "checking for seccomp.h" and "seccomp_init" in the log; the libseccomp stage must install seccomp.h and libseccomp.so.',
      });
    }
  },
  // `all` built tor, its tools and the unit-test programs; the unit tests sit beside the image's tree (usr/), never in it.
  async postInstall({ src, destdir }) {
    await mkdir(join(destdir, 'tests'));
    await copyFile(join(src, 'src', 'test', 'test'), join(destdir, 'tests', 'test'));
  },
});
