/**
 * A TCP forwarder on 127.0.0.1 that loses the response to chosen requests: the request reaches the
 * upstream whole, the upstream answers, and the client's connection is reset instead of getting that
 * answer. It is what a connection dropping just after an upload PATCH looks like to a client, which the
 * HTTP-level fault proxy cannot do for a response with an empty body (its headers get through first).
 *
 * It forwards bytes untouched (Host included), so a registry builds its upload Locations with the
 * dropper's address and the whole upload keeps going through it. One request at a time per connection
 * (no pipelining), which is how undici and node:http talk to a registry.
 *
 *   const dropper = await startResponseDropper(reg.host, (head) => head.startsWith('PATCH '), 1);
 *   after(() => dropper.stop());
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface ResponseDropper {
  /** 127.0.0.1:PORT, plain HTTP */
  readonly host: string;
  /** The first line of every request seen, with whether its response was dropped. */
  readonly requests: { line: string; dropped: boolean }[];
  stop(): Promise<void>;
}

/**
 * Forwards to `upstream` (host:port, plain HTTP); the responses to the first `times` requests whose head
 * (request line and headers) `match` accepts are replaced by a connection reset.
 */
export async function startResponseDropper(upstream: string, match: (head: string) => boolean, times = 1): Promise<ResponseDropper> {
  const colon = upstream.lastIndexOf(':');
  const [upHost, upPort] = [upstream.slice(0, colon), Number(upstream.slice(colon + 1))];
  const requests: ResponseDropper['requests'] = [];
  const sockets = new Set<Socket>();
  let left = times;

  const server = createServer((client) => {
    const up = connect(upPort, upHost);
    sockets.add(client);
    sockets.add(up);
    let pending = ''; // the start of a request head not yet complete
    let inHead = true;
    let bodyLeft = 0;
    let dropNext = false;

    client.on('data', (data: Buffer) => {
      // Track request boundaries (Content-Length bodies only, as registry clients send them).
      let rest = data;
      while (rest.length > 0) {
        if (!inHead) {
          const take = Math.min(bodyLeft, rest.length);
          bodyLeft -= take;
          rest = rest.subarray(take);
          if (bodyLeft === 0) inHead = true;
          continue;
        }
        const text = pending + rest.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end === -1) {
          pending = text;
          break;
        }
        const head = text.slice(0, end);
        const consumed = end + 4 - pending.length;
        pending = '';
        rest = rest.subarray(consumed);
        const drop = left > 0 && match(head);
        if (drop) {
          left--;
          dropNext = true;
        }
        requests.push({ line: head.split('\r\n')[0] ?? '', dropped: drop });
        bodyLeft = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        inHead = bodyLeft === 0;
      }
      if (!up.write(data)) {
        client.pause();
        up.once('drain', () => client.resume());
      }
    });
    up.on('data', (data: Buffer) => {
      if (dropNext) {
        // The upstream has answered the request: the client never hears it.
        up.destroy();
        client.resetAndDestroy();
        return;
      }
      if (!client.write(data)) {
        up.pause();
        client.once('drain', () => up.resume());
      }
    });
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
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopped: Promise<void> | undefined;
  return {
    host,
    requests,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
