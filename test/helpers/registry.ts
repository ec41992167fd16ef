import { execa, type ResultPromise } from 'execa';
import { createSign, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

/** A login the token service accepts. */
export const LOGIN = { username: 'ci', password: 'correct horse battery staple' };

export interface TestRegistry {
  /** host:port on 127.0.0.1 */
  host: string;
  /** The registry's storage directory. */
  storage: string;
  /** Where the registry keeps blobs: a test may alter one to stand for a tampered registry. */
  blobPath(digest: string): string;
  /** Token requests the token service answered, with the scope asked for. */
  tokenScopes: string[];
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1 with storage in a
 * temp directory; with `token`, behind the token flow: a token service of the test's own on
 * 127.0.0.1 checks the login and signs a JWT with a throwaway certificate the registry trusts.
 */
export async function startRegistry(options: { token?: boolean } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-registry-'));
  const port = await freePort();
  const tokenScopes: string[] = [];
  let tokenServer: Server | undefined;
  let auth = '';
  if (options.token) {
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.crt'), '-subj', '/CN=tor-ramdisk test token service', '-days', '2']);
    const key = await readFile(join(dir, 'token.key'), 'utf8');
    const der = (await readFile(join(dir, 'token.crt'), 'utf8')).replace(/-----[^-]+-----|\s/g, '');
    tokenServer = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const expected = `Basic ${Buffer.from(`${LOGIN.username}:${LOGIN.password}`).toString('base64')}`;
      if (url.pathname !== '/token' || req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      const scope = url.searchParams.get('scope') ?? '';
      tokenScopes.push(scope);
      const [, name, actions] = scope.split(':');
      const now = Math.floor(Date.now() / 1000);
      const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der] }));
      const claims = base64url(
        JSON.stringify({
          iss: 'tor-ramdisk-test-issuer',
          sub: LOGIN.username,
          aud: 'tor-ramdisk-test',
          exp: now + 300,
          nbf: now - 10,
          iat: now,
          jti: randomBytes(8).toString('hex'),
          access: name ? [{ type: 'repository', name, actions: (actions ?? '').split(',') }] : [],
        }),
      );
      const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${base64url(signature)}` }));
    });
    const tokenPort = await listen(tokenServer);
    auth = `auth:
  token:
    realm: http://127.0.0.1:${tokenPort}/token
    service: tor-ramdisk-test
    issuer: tor-ramdisk-test-issuer
    rootcertbundle: ${join(dir, 'token.crt')}
`;
  }
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
http:
  addr: 127.0.0.1:${port}
${auth}`,
  );
  const child: ResultPromise = execa('docker-registry', ['serve', join(dir, 'config.yml')], { reject: false, all: true });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start on ${host}: ${(await child).all}`);
    await sleep(100);
  }
  return {
    host,
    storage: join(dir, 'data'),
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    tokenScopes,
    async close() {
      child.kill();
      await child;
      await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A proxy on 127.0.0.1 in front of a registry that, once `cut` is set, forwards half of the
 * next large blob and then drops the connection: a registry going away mid-pull.
 */
export async function startCuttingProxy(target: string): Promise<{ host: string; cut: boolean; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { cut: false };
  const server = createServer((req, res) => {
    const upstream = request({ host: '127.0.0.1', port: Number(target.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (answer) => {
      const length = Number(answer.headers['content-length'] ?? 0);
      if (state.cut && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && length > 1024) {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= length / 2) return;
          res.write(chunk.subarray(0, Math.max(0, Math.ceil(length / 2) - sent)));
          sent += chunk.length;
          if (sent >= length / 2) setTimeout(() => req.socket.destroy(), 20);
        });
        return;
      }
      res.writeHead(answer.statusCode ?? 500, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  return Object.assign(state, {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}
