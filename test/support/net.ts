import { createServer } from 'node:net';

/** A TCP port free on loopback right now (for servers the tests start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Listens on a port the OS picks on loopback and resolves with it: the socket
 * is ours from the start, so no other server can take the port in between
 * (as with a `freePort` picked, closed and then listened on).
 */
export function listenOnFreePort(server: {
  listen(port: number, host: string, cb: () => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
  address(): unknown;
}): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}
