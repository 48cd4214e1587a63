/**
 * The plumbing under the TCP-level fault injectors (response-dropper.ts, request-cutter.ts): a server on
 * 127.0.0.1 that opens one upstream connection per client connection, tears both down together, and
 * stops by destroying every socket. What flows between the two (and what is cut or lost) is the
 * caller's `wire`, which installs the data handlers on both sockets.
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface TcpForwarder {
  /** 127.0.0.1:PORT */
  readonly host: string;
  stop(): Promise<void>;
}

/** Writes `data` to `to`, pausing `from` until `to` drains when its buffer is full. */
export function relay(from: Socket, to: Socket, data: Buffer): void {
  if (data.length > 0 && !to.write(data)) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}

export async function startTcpForwarder(upstream: string, wire: (client: Socket, up: Socket) => void): Promise<TcpForwarder> {
  const colon = upstream.lastIndexOf(':');
  const [upHost, upPort] = [upstream.slice(0, colon), Number(upstream.slice(colon + 1))];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(upPort, upHost);
    sockets.add(client);
    sockets.add(up);
    const close = () => {
      up.destroy();
      client.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('close', close);
    up.on('close', close);
    client.on('error', () => undefined);
    up.on('error', () => undefined);
    wire(client, up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  let stopped: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
