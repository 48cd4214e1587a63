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
import { relay, startTcpForwarder } from '../helpers/tcp-forwarder.js';

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
  const requests: RequestCutter['requests'] = [];
  let left = times;

  const forwarder = await startTcpForwarder(upstream, (client, up) => {
    let pending = Buffer.alloc(0); // the start of a request head not yet complete
    let bodyLeft = 0;
    /** Body bytes still to forward before cutting, or -1 when this request is not being cut. */
    let cutIn = -1;
    const forward = (b: Buffer) => relay(client, up, b);
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
    up.on('data', (data: Buffer) => relay(up, client, data));
  });
  return { host: forwarder.host, requests, stop: () => forwarder.stop() };
}
