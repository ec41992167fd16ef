import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How one path answers; `hits` counts requests so tests can see retries. */
export type Route =
  | { kind: 'file'; body: Buffer }
  | { kind: 'status'; status: number }
  | { kind: 'drop'; body: Buffer; after: number } // promise the whole body, send `after` bytes, cut the connection
  | { kind: 'slow'; body: Buffer; delayMs: number; slowTimes: number }; // stall the first `slowTimes` requests

export interface TestServer {
  url(path: string): string;
  route(path: string, route: Route): void;
  hits(path: string): number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1, on a free port, for the fetcher's integration tests. */
export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404).end('not found');
      return;
    }
    switch (route.kind) {
      case 'file':
        res.writeHead(200, { 'content-length': route.body.length }).end(route.body);
        return;
      case 'status':
        res.writeHead(route.status).end();
        return;
      case 'drop':
        res.writeHead(200, { 'content-length': route.body.length });
        res.write(route.body.subarray(0, route.after), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      case 'slow': {
        const send = () => res.writeHead(200, { 'content-length': route.body.length }).end(route.body);
        if (count <= route.slowTimes) setTimeout(send, route.delayMs);
        else send();
        return;
      }
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    route: (path, route) => routes.set(path, route),
    hits: (path) => hits.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
