/**
 * A TCP forwarder on 127.0.0.1 that cuts a request in the middle of its body: the upstream gets the head
 * and the first `bytes` body bytes of the first `times` requests whose head `match` accepts, then both
 * connections are reset. It is what a link dropping mid-upload looks like to the client and to the
 * registry, which the HTTP-level fault proxy (it faults responses) cannot do.
 *
 * Bytes are forwarded untouched (Host included), so a registry's upload Locations name the cutter and
 * the whole upload keeps going through it. Requests are told apart by Content-Length, as registry
 * clients send them; one request at a time per connection (no pipelining).
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface RequestCutter {
  readonly host: string;
  /** The head of every request seen (request line and headers), with whether it was cut. */
  readonly requests: { head: string; cut: boolean }[];
  stop(): Promise<void>;
}

export async function startRequestCutter(
  upstream: string,
  match: (head: string) => boolean,
  bytes: number,
  times = 1,
): Promise<RequestCutter> {
  const colon = upstream.lastIndexOf(':');
  const [upHost, upPort] = [upstream.slice(0, colon), Number(upstream.slice(colon + 1))];
  const requests: RequestCutter['requests'] = [];
  const sockets = new Set<Socket>();
  let left = times;

  const server = createServer((client) => {
    const up = connect(upPort, upHost);
    sockets.add(client);
    sockets.add(up);
    let pending = Buffer.alloc(0); // the start of a request head not yet complete
    let bodyLeft = 0;
    /** Body bytes still to forward before cutting, or -1 when this request is not being cut. */
    let cutIn = -1;
    const forward = (b: Buffer) => {
      if (b.length > 0 && !up.write(b)) {
        client.pause();
        up.once('drain', () => client.resume());
      }
    };
    const cut = () => {
      up.resetAndDestroy();
      client.resetAndDestroy();
    };

    client.on('data', (data: Buffer) => {
      let rest = data;
      while (rest.length > 0) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, rest.length);
          if (cutIn >= 0 && take >= cutIn) {
            forward(rest.subarray(0, cutIn));
            // Let the registry take in what it was sent before the connection goes.
            client.pause();
            setTimeout(cut, 200);
            return;
          }
          forward(rest.subarray(0, take));
          if (cutIn >= 0) cutIn -= take;
          bodyLeft -= take;
          rest = rest.subarray(take);
          continue;
        }
        const text = Buffer.concat([pending, rest]);
        const end = text.indexOf('\r\n\r\n');
        if (end === -1) {
          pending = text;
          return;
        }
        const head = text.subarray(0, end).toString('latin1');
        forward(text.subarray(0, end + 4));
        rest = text.subarray(end + 4);
        pending = Buffer.alloc(0);
        const hit = left > 0 && match(head);
        if (hit) left--;
        requests.push({ head, cut: hit });
        bodyLeft = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        cutIn = hit ? bytes : -1;
      }
    });
    up.on('data', (data: Buffer) => {
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
