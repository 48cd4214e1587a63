/**
 * The HTTP side of the registry store: one client per run, owning the connection pools, TLS settings,
 * authentication and the retry policy, shared by every repository the run touches. Hand-written over
 * undici's `request` because no npm library speaks the distribution spec with streaming, resumable
 * transfers and the auth flow; undici gives pooling, keep-alive and streaming bodies.
 *
 * Redirects are followed by hand so that Authorization is never forwarded to another host.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { Agent, Dispatcher } from 'undici';
import { LadingError } from '../../errors.js';
import { Authenticator, type CredentialLookup } from './auth.js';
import { DEFAULT_RETRY, RetryableFailure, type RetryPolicy, isRetryableStatus, retryAfterMs, withRetry } from './retry.js';

export interface RegistryClientOptions {
  /** Where credentials come from (see credentials.ts); anonymous when absent. */
  credentials?: CredentialLookup;
  /** false: do not verify TLS certificates, and allow plain HTTP (skopeo's --tls-verify=false). */
  tlsVerify?: boolean | ((host: string) => boolean);
  /** A directory of CA certificates (*.crt, PEM) to trust besides the system's. */
  certDir?: string;
  retry?: RetryPolicy;
  userAgent?: string;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path and query on the registry (e.g. /v2/ns/app/manifests/1.0), or a full URL from a Location header. */
  path: string;
  repository: string;
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** Bytes, or a stream or async iterable (sent once: never repeated after a 401 or a failure). */
  body?: Uint8Array | Readable | AsyncIterable<Uint8Array> | string;
  /** Retry on transient failures (only for requests that are safe to repeat; default: GET/HEAD/PUT of bytes). */
  idempotent?: boolean;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

interface Agents {
  verified: Agent;
  unverified: Agent;
  request: Undici['request'];
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

export class RegistryClient {
  readonly retry: RetryPolicy;
  /** Per registry host: whether it has the referrers API (learned from its first answer in this run). */
  readonly referrersApi = new Map<string, boolean>();
  /** Per registry host: the first referrers request, while it is in flight (the others wait for it). */
  readonly referrersProbes = new Map<string, Promise<unknown>>();
  /** Registry hosts that refused a large streamed PATCH: uploads to them go in chunks (upload.ts). */
  readonly chunkedUploads = new Set<string>();
  private readonly auth: Authenticator;
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>();
  private agents: Promise<Agents> | undefined;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.auth = new Authenticator(options.credentials ?? (async () => undefined), async (url, req) => {
      const res = await withRetry(this.retry, () => this.raw(req.method, url, req.headers, req.body));
      return { status: res.statusCode, body: await res.body.text() };
    });
  }

  /** Docker Hub's API lives on another host than its name. */
  static apiHost(domain: string): string {
    return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
  }

  /**
   * Sends one request with auth, redirects and (for idempotent requests) retries. Returns responses of
   * any status except 401 after auth and retryable statuses after retries; the caller reads or dumps
   * the body.
   */
  async send(host: string, req: RegistryRequest): Promise<RegistryResponse> {
    const idempotent = req.idempotent ?? (req.method === 'GET' || req.method === 'HEAD');
    const policy = idempotent ? this.retry : { ...this.retry, attempts: 1 };
    return withRetry(policy, async () => {
      const res = await this.sendOnce(host, req);
      // A request that must not be repeated blindly (an upload chunk) gets its answer back, whatever it
      // is: the caller decides how to resume.
      if (idempotent && isRetryableStatus(res.status)) {
        await res.body.dump().catch(() => undefined);
        const failure = new LadingError('REGISTRY', `${host} answered ${res.status} to ${req.method} ${pathOnly(res.url)}`, {
          registry: host,
          status: String(res.status),
        });
        throw new RetryableFailure(failure.message, retryAfterMs(res.headers['retry-after']), { cause: failure });
      }
      return res;
    });
  }

  private async sendOnce(host: string, req: RegistryRequest): Promise<RegistryResponse> {
    const base = new URL(`${await this.scheme(host)}://${host}`);
    let url = new URL(req.path, base);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'lading/0.1', ...req.headers };
    const auth = await this.auth.headerFor(host, req.repository, req.scopes);
    if (auth !== undefined) headers.authorization = auth;
    let retriedAuth = false;
    for (let redirects = 0; ;) {
      const sameHost = url.host === base.host;
      const sent = sameHost ? headers : withoutAuthorization(headers);
      const res = await this.raw(req.method, url, sent, req.body);
      const responseHeaders = res.headers as RegistryResponse['headers'];
      if (res.statusCode === 401 && sameHost && !retriedAuth && !isStream(req.body)) {
        await res.body.dump().catch(() => undefined);
        headers.authorization = await this.auth.answer(
          host,
          req.repository,
          req.scopes,
          header(responseHeaders, 'www-authenticate'),
          sent.authorization,
        );
        retriedAuth = true;
        continue;
      }
      if (res.statusCode === 401) {
        await res.body.dump().catch(() => undefined);
        const access = req.method === 'GET' || req.method === 'HEAD' ? 'pull from' : 'push to';
        const message = (await this.auth.hasCredential(host, req.repository))
          ? `${host} denied access to ${access} ${req.repository} with the credentials given (401): check --creds, --authfile or your login for ${host}`
          : `${host} requires authentication to ${access} ${req.repository} (401): pass --creds USER:PASS or --authfile, or log in to ${host}`;
        throw new LadingError('AUTH', message, { registry: host, repository: req.repository });
      }
      const location = header(responseHeaders, 'location');
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && location !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
        await res.body.dump().catch(() => undefined);
        if (++redirects > 5) throw new LadingError('REGISTRY', `${host}: too many redirects for ${pathOnly(url)}`);
        url = new URL(location, url);
        continue;
      }
      return { status: res.statusCode, headers: responseHeaders, body: res.body, url };
    }
  }

  private async raw(method: string, url: URL, headers: Record<string, string>, body: RegistryRequest['body']) {
    const { verified, unverified, request } = await this.getAgents();
    const dispatcher = this.verifies(url.host) ? verified : unverified;
    try {
      // undici sends async iterables too; its types list only streams.
      const payload = (body ?? null) as NonNullable<Dispatcher.DispatchOptions['body']> | null;
      return await request(url, { method: method as Dispatcher.HttpMethod, headers, body: payload, dispatcher });
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code === 'ECONNREFUSED') {
        throw Object.assign(new LadingError('REGISTRY', `cannot connect to ${url.host}: connection refused`, { registry: url.host }), {
          code,
        });
      }
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
        throw new LadingError(
          'REGISTRY',
          `cannot verify the TLS certificate of ${url.host} (${code}): pass --cert-dir with its CA, or --tls-verify=false`,
          {
            registry: url.host,
          },
        );
      }
      throw e;
    }
  }

  /** https, except for a registry that only speaks HTTP and is on loopback or named insecure. */
  private scheme(host: string): Promise<'https' | 'http'> {
    let p = this.schemes.get(host);
    if (p === undefined) {
      p = (async () => {
        if (!LOOPBACK.test(host) && this.verifies(host)) return 'https';
        try {
          const res = await this.raw('GET', new URL(`https://${host}/v2/`), {}, undefined);
          await res.body.dump();
          return 'https';
        } catch (e) {
          if (e instanceof LadingError && e.code === 'REGISTRY' && /TLS certificate/.test(e.message)) throw e;
          return 'http';
        }
      })();
      this.schemes.set(host, p);
    }
    return p;
  }

  private verifies(host: string): boolean {
    const v = this.options.tlsVerify ?? true;
    return typeof v === 'function' ? v(host) : v;
  }

  /**
   * undici is loaded on the first request, not at import: every CLI command imports this module through
   * the transports, and most never talk to a registry.
   */
  private getAgents(): Promise<Agents> {
    this.agents ??= (async () => {
      const [{ Agent, request }, extra] = await Promise.all([loadUndici(), readCertDir(this.options.certDir)]);
      const common = { connections: 32, keepAliveTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 120_000 };
      return {
        verified: new Agent({ ...common, connect: { ca: [...rootCertificates, ...extra] } }),
        unverified: new Agent({ ...common, connect: { rejectUnauthorized: false } }),
        request,
      };
    })();
    return this.agents;
  }

  async close(): Promise<void> {
    if (this.agents === undefined) return;
    const { verified, unverified } = await this.agents;
    await Promise.all([verified.close(), unverified.close()]);
  }
}

type Undici = typeof import('undici');

/**
 * undici's Agent and request. Its index loads every feature it has (fetch, WebSocket, caches, mocks):
 * about 200 ms of start-up, three quarters of which these two modules do not need. undici has no
 * `exports` map, so its modules can be loaded directly (the version is pinned); should a later version
 * move them, the index is loaded instead.
 */
async function loadUndici(): Promise<Pick<Undici, 'Agent' | 'request'>> {
  try {
    const [agent, api] = await Promise.all([
      import('undici/lib/dispatcher/agent.js' as string) as Promise<{ default: Undici['Agent'] }>,
      import('undici/lib/api/api-request.js' as string) as Promise<{ default: (this: Dispatcher, opts: object) => Promise<unknown> }>,
    ]);
    const Agent = agent.default;
    const dispatch = api.default;
    if (typeof Agent !== 'function' || typeof dispatch !== 'function') throw new Error('undici layout changed');
    // What undici's own request(url, options) does: split the URL into origin and path for the dispatcher.
    const request = ((url: URL, { dispatcher, ...opts }: { dispatcher: Dispatcher } & Record<string, unknown>) =>
      dispatch.call(dispatcher, { ...opts, origin: url.origin, path: `${url.pathname}${url.search}` })) as unknown as Undici['request'];
    return { Agent, request };
  } catch {
    return import('undici');
  }
}

async function readCertDir(dir: string | undefined): Promise<string[]> {
  if (dir === undefined) return [];
  const names = await readdir(dir).catch(() => {
    throw new LadingError('USAGE', `--cert-dir ${dir}: no such directory`);
  });
  return Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(dir, n), 'utf8')));
}

export function header(headers: RegistryResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { authorization: _, ...rest } = headers;
  return rest;
}

/** A body that can be read only once: a stream or an async iterable (an upload from its source). */
function isStream(body: RegistryRequest['body']): boolean {
  return typeof body === 'object' && body !== null && !(body instanceof Uint8Array);
}

function pathOnly(url: URL): string {
  return url.pathname;
}
