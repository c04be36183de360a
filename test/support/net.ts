import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP port free on loopback when picked, and closed again: another server
 * may be given it before the caller listens. Only for a program that must be
 * told its port, and only through `onSomePort`, which starts it again on
 * another when it was taken.
 */
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

/** A loopback TCP front: see `tcpFront`. */
export interface TcpFront {
  port: number;
  /** The loopback port each new connection is passed on to (0: none yet, connections are closed). */
  to: number;
  close(): Promise<void>;
}

/**
 * A TCP front on a port the OS picks, passing each connection on to the
 * loopback port in `to` at the time. For a program that must be told its
 * address before it starts (an app whose redirect URI names its port, a
 * program that cannot listen on port 0 and say which port it got): the
 * address is the front's and stays ours for the test's whole life, and the
 * program listens behind it on a port it may be started again on.
 */
export async function tcpFront(): Promise<TcpFront> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    // A reset, as a closed port gives (a connection closed without one leaves fetch waiting).
    if (!front.to) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: front.to });
    open.add(client);
    const end = () => {
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', () => {
      open.delete(client);
      client.resetAndDestroy();
    });
    upstream.on('close', end);
    client.pipe(upstream).pipe(client);
  });
  const front: TcpFront = {
    port: await listenOnFreePort(server),
    to: 0,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // A client's kept-alive connection would hold the close for ever.
        for (const socket of open) socket.destroy();
      }),
  };
  return front;
}

/**
 * An address that never answers: a port of ours that drops every connection
 * it is given (an issuer or endpoint that is down). Unlike a port picked and
 * closed, no other server can be given it while the test uses it.
 */
export async function deadEndpoint(): Promise<{ url: string; close(): Promise<void> }> {
  // A reset, as a closed port gives (a connection closed without one leaves fetch waiting).
  const server = createServer((socket) => socket.resetAndDestroy());
  const port = await listenOnFreePort(server);
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * Starts a program that must be told its port (it cannot take port 0): on a
 * port free when picked, and again on another when the program could not
 * listen on it because another server was given it in between (`taken` says
 * whether an error was that).
 */
export async function onSomePort<T>(start: (port: number) => Promise<T>, taken: (err: Error) => boolean, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (attempt >= attempts || !taken(err as Error)) throw err;
    }
  }
}
