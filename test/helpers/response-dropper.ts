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
import { relay, startTcpForwarder } from './tcp-forwarder.js';

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
  const requests: ResponseDropper['requests'] = [];
  let left = times;

  const forwarder = await startTcpForwarder(upstream, (client, up) => {
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
      relay(client, up, data);
    });
    up.on('data', (data: Buffer) => {
      if (dropNext) {
        // The upstream has answered the request: the client never hears it.
        up.destroy();
        client.resetAndDestroy();
        return;
      }
      relay(up, client, data);
    });
  });
  return { host: forwarder.host, requests, stop: () => forwarder.stop() };
}
