// A TCP relay between the app and a store, so a test can catch the app in the
// middle of a request to the store: `hold` keeps back what the app sends while
// its connection stays open (the app still believes the store is up), and
// resolves once a request is held; `cut` then drops every connection and
// refuses new ones, as a store that died mid-request; `restore` listens again.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { listenOnFreePort } from './net.ts';

export interface Relay {
  url: string;
  /** Resolves when the app has sent something that is being held back. */
  hold(): Promise<void>;
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRelay(targetPort: number, scheme = 'redis'): Promise<Relay> {
  let port = 0;
  const sockets = new Set<Socket>();
  let held: (() => void) | null = null;
  let server: Server;

  const accept = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', end);
      s.on('error', end);
    }
    client.on('data', (chunk) => {
      if (!held) return void upstream.write(chunk);
      held();
    });
    upstream.on('data', (chunk) => client.write(chunk));
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(accept);
      // The first time on a port the OS picks; after a cut, on the same port again.
      if (!port) return void listenOnFreePort(server).then((picked) => resolve(void (port = picked)), reject);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      server.close(() => resolve());
    });

  await listen();
  let holding: Promise<void> | null = null;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    hold() {
      holding ??= new Promise<void>((resolve) => {
        held = resolve;
      });
      return holding;
    },
    async cut() {
      await close();
    },
    async restore() {
      held = null;
      holding = null;
      await listen();
    },
    stop: close,
  };
}
