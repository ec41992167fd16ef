import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from '../config/schema.js';
import { projectRoot } from '../paths.js';
import { packageStage, withoutPie } from './package.js';

const CONFIGURE_TARGET: Record<Arch, string> = { x86_64: 'linux-x86_64', i686: 'linux-elf' };

/**
 * What tor does not need, cut: loadable code (engines, providers as modules, the legacy
 * provider, dlopen), datagram and QUIC transports, SSLv3, TLS compression, tests and docs;
 * every cipher, digest, signature and protocol that neither tor's TLS and relay crypto nor
 * the bundle (bundle-crypt: AES-256-CTR, PBKDF2-HMAC-SHA256) uses. Kept: AES, ChaCha20-Poly1305,
 * SHA-1/2/3, HMAC, HKDF, scrypt, RSA, DH, EC (P-256, X25519) and ML-KEM (TLS 1.3's hybrid
 * key exchange). No `openssl` program: the bundle's cipher and KDF are bundle-crypt's.
 */
const OPENSSL_OPTIONS = [
  'shared',
  'no-engine',
  'no-module',
  'no-legacy',
  'no-dso',
  'no-dtls',
  'no-quic',
  'no-ssl3',
  'no-comp',
  'no-tests',
  'no-docs',
  'no-apps',
  ...['aria', 'bf', 'camellia', 'cast', 'des', 'idea', 'rc2', 'rc4', 'seed', 'sm4', 'ocb', 'siv'].map((cipher) => `no-${cipher}`),
  ...['blake2', 'argon2', 'md4', 'rmd160', 'sm3', 'whirlpool', 'siphash'].map((digest) => `no-${digest}`),
  ...['dsa', 'sm2', 'ec2m', 'gost', 'ml-dsa', 'slh-dsa', 'srp'].map((algorithm) => `no-${algorithm}`),
  ...['cms', 'cmp', 'ct', 'ocsp', 'ts', 'http', 'rfc3779', 'srtp', 'nextprotoneg', 'ssl-trace'].map((protocol) => `no-${protocol}`),
] as const;

/** The image's tool for the bundle's cipher and KDF, built here against this libcrypto. */
const BUNDLE_CRYPT = 'configs/openssl/bundle-crypt.c';

/** OpenSSL 3.5 (LTS), shared libssl and libcrypto, and bundle-crypt. */
export const opensslStage = packageStage({
  name: 'openssl',
  title: 'OpenSSL',
  definition: import.meta.url,
  source: 'openssl',
  files: [BUNDLE_CRYPT],
  image: { files: ['usr/bin/bundle-crypt'], libraries: 'usr/lib' },
  // Shared libraries only.
  remove: ['usr/lib/*.a'],
  async build({ ctx, src, tc, env, destdir, make }) {
    // OpenSSL puts its -fPIC before CFLAGS, where the toolchain's -fPIE would override it for the libraries.
    const cflags = `${env.CFLAGS} -fPIC`;
    await ctx.exec('./Configure', [CONFIGURE_TARGET[tc.arch], '--prefix=/usr', '--libdir=lib', '--openssldir=/etc/ssl', ...OPENSSL_OPTIONS], {
      cwd: src,
      env: { ...env, CFLAGS: cflags, LDFLAGS: withoutPie(env.LDFLAGS!) },
    });
    // `openssl version -a` quotes the compiler flags: the scratch path in them is written as /build, like -ffile-prefix-map does.
    await make(['crypto/buildinf.h', `CFLAGS=${cflags.replaceAll(ctx.work, '/build')}`]);
    await make([]);
    await make(['install_sw', `DESTDIR=${destdir}`]);
    // no-engine and no-module leave the engines and modules directories empty (rmdir fails if they are not).
    const usr = join(destdir, 'usr');
    const lib = join(usr, 'lib');
    for (const dir of ['engines-3', 'ossl-modules']) await rmdir(join(lib, dir));
    await mkdir(join(usr, 'bin'), { recursive: true });
    await ctx.exec(
      env.CC!,
      [
        ...env.CFLAGS!.split(' ').filter(Boolean),
        '-Wall', '-Wextra', '-Werror',
        `-I${join(usr, 'include')}`,
        ...env.LDFLAGS!.split(' ').filter(Boolean),
        `-L${lib}`,
        '-o', join(usr, 'bin', 'bundle-crypt'),
        join(projectRoot, BUNDLE_CRYPT),
        '-lcrypto',
      ],
      { cwd: src, env },
    );
  },
});
