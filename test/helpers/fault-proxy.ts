/**
 * A programmable HTTP reverse proxy on 127.0.0.1 in front of a registry (or any HTTP(S) server), for
 * fault-injection tests. Clients talk plain HTTP to the proxy; it forwards to the upstream over HTTP or
 * HTTPS, streaming bodies both ways and passing every header through (Authorization included), except
 * that `Host` becomes the upstream's and a `Location` pointing at the upstream is rewritten to point at
 * the proxy. `WWW-Authenticate` is left as is (a token realm still names the real issuer).
 *
 * `rules` is checked in order for every request; the first rule that matches (method, path regexp on the
 * path with its query, and fewer than `times` earlier hits) injects its fault. It is plain node:http on
 * top of node:net sockets, so truncations and resets really happen at the socket level:
 *
 *   const proxy = await startFaultProxy(reg);   // a RegistryInstance will do (certDir gives the CA)
 *   after(() => proxy.stop());
 *   proxy.rules = [{ method: 'GET', path: /\/blobs\/sha256:/, times: 1, fault: { kind: 'reset-after', bytes: 100 } }];
 *
 * Also `startRedirectTarget()`: a second loopback server that records what it receives (to prove a
 * client drops Authorization on a cross-host redirect) and answers with a configurable response.
 */
import { readFileSync } from 'node:fs';
import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export type Fault =
  /** Answer without asking upstream, e.g. 500, 503, or 429 with Retry-After. The body defaults to empty. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward the upstream response, then reset (RST) the client socket after `bytes` body bytes. */
  | { kind: 'reset-after'; bytes: number }
  /** Send the real headers (real Content-Length) but only `bytes` body bytes, then end (FIN) the socket. */
  | { kind: 'truncate'; bytes: number }
  /** Flip the lowest bit of the body byte at `offset` (headers unchanged). */
  | { kind: 'flip-byte'; offset: number }
  /** Set (replace) a response header, e.g. a lying Docker-Content-Digest. */
  | { kind: 'header'; name: string; value: string }
  /** Send the body `bytesPerTick` bytes every `tickMs` milliseconds. */
  | { kind: 'drip'; bytesPerTick: number; tickMs: number }
  /** Claim this Content-Length (e.g. '10737418240'), send the real body, then end the socket. */
  | { kind: 'content-length'; value: string }
  /** Answer with a redirect (default 307) to `location` instead of forwarding. */
  | { kind: 'redirect'; location: string; status?: number };

export interface FaultRule {
  /** Which requests: method and a regexp on the path (e.g. /\/blobs\/sha256:/). */
  method?: string;
  path?: RegExp;
  /** Apply to the first `times` matching requests (default: all). */
  times?: number;
  fault: Fault;
}

export interface ProxyLogEntry {
  method: string;
  /** The path with its query, as the client sent it. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The status the client was sent (0 while unanswered, 502 when the upstream failed). */
  status: number;
  /** The fault injected, if any. */
  fault?: Fault['kind'];
}

export interface FaultProxy {
  /** 127.0.0.1:PORT, plain HTTP */
  readonly host: string;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Mutable: tests set/clear rules between steps. */
  rules: FaultRule[];
  /** Every request seen: method, path (with query), request headers, response status. */
  readonly log: ProxyLogEntry[];
  stop(): Promise<void>;
}

export interface Upstream {
  host: string;
  scheme: 'http' | 'https';
  /** PEM text of the CA that signed an HTTPS upstream's certificate. */
  ca?: string;
  /** Or a directory holding it as ca.crt (a RegistryInstance's certDir). */
  certDir?: string;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect'];

async function listenLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) out[k] = v;
  return out;
}

/** Starts a fault proxy in front of `upstream`. Stop it (in `after`) when done. */
export async function startFaultProxy(upstream: Upstream): Promise<FaultProxy> {
  const ca = upstream.ca ?? (upstream.certDir !== undefined ? readFileSync(join(upstream.certDir, 'ca.crt'), 'utf8') : undefined);
  const [upHost, upPortText] = [
    upstream.host.slice(0, upstream.host.lastIndexOf(':')),
    upstream.host.slice(upstream.host.lastIndexOf(':') + 1),
  ];
  const upPort = Number(upPortText);
  const https = upstream.scheme === 'https';
  const agent = https ? new HttpsAgent({ keepAlive: true, ...(ca !== undefined && { ca }) }) : new HttpAgent({ keepAlive: true });
  const upstreamOrigin = `${upstream.scheme}://${upstream.host}`;
  const hits = new WeakMap<FaultRule, number>();
  const log: ProxyLogEntry[] = [];
  let host = '';

  const proxy: FaultProxy = {
    get host() {
      return host;
    },
    get url() {
      return `http://${host}`;
    },
    rules: [],
    log,
    stop: () => Promise.resolve(),
  };

  const pick = (req: IncomingMessage): FaultRule | undefined => {
    for (const rule of proxy.rules) {
      if (rule.method !== undefined && rule.method.toUpperCase() !== req.method) continue;
      if (rule.path) {
        rule.path.lastIndex = 0;
        if (!rule.path.test(req.url ?? '')) continue;
      }
      const n = hits.get(rule) ?? 0;
      if (rule.times !== undefined && n >= rule.times) continue;
      hits.set(rule, n + 1);
      return rule;
    }
    return undefined;
  };

  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    entry: ProxyLogEntry,
    status: number,
    headers: Record<string, string>,
    body: string,
  ) => {
    req.resume();
    entry.status = status;
    const bytes = Buffer.from(body);
    res.writeHead(status, { ...headers, 'content-length': String(bytes.byteLength) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, fault: Fault | undefined) => {
    const headers = withoutHopByHop(req.headers);
    headers.host = upstream.host;
    const upReq = (https ? httpsRequest : httpRequest)({
      host: upHost,
      port: upPort,
      method: req.method,
      path: req.url,
      headers,
      agent,
      ...(https && ca !== undefined && { ca }),
    });
    req.pipe(upReq);
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    upReq.on('error', (e) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      entry.status = 502;
      const body = Buffer.from(`fault proxy: upstream ${upstream.host}: ${e.message}\n`);
      res.writeHead(502, { 'content-type': 'text/plain', 'content-length': String(body.byteLength) }).end(body);
    });
    upReq.on('response', (upRes) => {
      const out = withoutHopByHop(upRes.headers);
      delete out['transfer-encoding'];
      const location = upRes.headers.location;
      if (location?.startsWith(upstreamOrigin)) out.location = `http://${host}${location.slice(upstreamOrigin.length)}`;
      if (fault?.kind === 'header') out[fault.name.toLowerCase()] = fault.value;
      if (fault?.kind === 'content-length') out['content-length'] = fault.value;
      const status = upRes.statusCode ?? 502;
      entry.status = status;
      res.writeHead(status, upRes.statusMessage, out);
      const socket = res.socket;

      if (fault?.kind === 'reset-after' || fault?.kind === 'truncate') {
        const limit = fault.bytes;
        const kill = () => {
          upRes.destroy();
          if (fault.kind === 'reset-after') socket?.resetAndDestroy();
          else socket?.end();
        };
        res.flushHeaders();
        let sent = 0;
        if (limit <= 0) {
          // Let the headers reach the socket first.
          res.write('', kill);
          return;
        }
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.byteLength;
          if (sent >= limit) {
            upRes.pause();
            res.write(part, kill);
          } else if (!res.write(part)) {
            upRes.pause();
            res.once('drain', () => upRes.resume());
          }
        });
        upRes.on('end', () => {
          if (sent < limit) res.end();
        });
        return;
      }

      if (fault?.kind === 'content-length') {
        upRes.pipe(res, { end: false });
        upRes.on('end', () => res.write('', () => socket?.end()));
        return;
      }

      if (fault?.kind === 'flip-byte') {
        let seen = 0;
        upRes.on('data', (chunk: Buffer) => {
          const at = fault.offset - seen;
          seen += chunk.byteLength;
          if (at >= 0 && at < chunk.byteLength) {
            chunk = Buffer.from(chunk);
            chunk[at] = (chunk[at] ?? 0) ^ 0x01;
          }
          if (!res.write(chunk)) {
            upRes.pause();
            res.once('drain', () => upRes.resume());
          }
        });
        upRes.on('end', () => res.end());
        return;
      }

      if (fault?.kind === 'drip') {
        res.flushHeaders();
        const queue: Buffer[] = [];
        let queued = 0;
        let ended = false;
        upRes.on('data', (chunk: Buffer) => {
          queue.push(chunk);
          queued += chunk.byteLength;
          if (queued > 1 << 20) upRes.pause();
        });
        upRes.on('end', () => (ended = true));
        const timer = setInterval(() => {
          let budget = Math.max(1, fault.bytesPerTick);
          const parts: Buffer[] = [];
          while (budget > 0 && queue.length > 0) {
            const head = queue[0]!;
            const part = head.subarray(0, budget);
            parts.push(part);
            budget -= part.byteLength;
            queued -= part.byteLength;
            if (part.byteLength === head.byteLength) queue.shift();
            else queue[0] = head.subarray(part.byteLength);
          }
          if (parts.length) res.write(Buffer.concat(parts));
          if (queued < 1 << 16) upRes.resume();
          if (ended && queue.length === 0) {
            clearInterval(timer);
            res.end();
          }
        }, fault.tickMs);
        res.on('close', () => {
          clearInterval(timer);
          upRes.destroy();
        });
        return;
      }

      upRes.pipe(res);
    });
  };

  const server = createServer((req, res) => {
    const entry: ProxyLogEntry = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, status: 0 };
    log.push(entry);
    const rule = pick(req);
    const fault = rule?.fault;
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'status') answer(req, res, entry, fault.status, fault.headers ?? {}, fault.body ?? '');
    else if (fault?.kind === 'redirect') answer(req, res, entry, fault.status ?? 307, { location: fault.location }, '');
    else forward(req, res, entry, fault);
  });
  // A client that gives up mid-response (or a reset we caused) is not an error of the proxy's.
  server.on('clientError', (_e, socket) => socket.destroy());
  host = await listenLoopback(server);
  let stopped: Promise<void> | undefined;
  proxy.stop = () => {
    stopped ??= closeServer(server).then(() => agent.destroy());
    return stopped;
  };
  return proxy;
}

export interface RedirectTargetResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export interface RedirectTarget {
  /** 127.0.0.1:PORT, plain HTTP */
  readonly host: string;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Every request received: method, path (with query) and headers. */
  readonly requests: { method: string; path: string; headers: Record<string, string | string[] | undefined> }[];
  /** Mutable: what every request is answered with (Content-Length is added). */
  response: RedirectTargetResponse;
  stop(): Promise<void>;
}

/**
 * A plain HTTP server on loopback (another port, so another origin than the proxy or registry) that
 * records the requests it gets and answers each with `response` (default 200, empty body).
 */
export async function startRedirectTarget(response: Partial<RedirectTargetResponse> = {}): Promise<RedirectTarget> {
  const requests: RedirectTarget['requests'] = [];
  const current = { response: { status: 200, headers: {}, body: '', ...response } as RedirectTargetResponse };
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers } });
    req.resume();
    const { status, headers, body } = current.response;
    const bytes = Buffer.from(body);
    res.writeHead(status, { ...headers, 'content-length': String(bytes.byteLength) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  const host = await listenLoopback(server);
  let stopped: Promise<void> | undefined;
  return {
    host,
    url: `http://${host}`,
    requests,
    get response() {
      return current.response;
    },
    set response(r: RedirectTargetResponse) {
      current.response = r;
    },
    stop: () => (stopped ??= closeServer(server)),
  };
}
