/**
 * A bearer-token issuer for docker-registry's `auth.token`, per the distribution token spec
 * (https://distribution.github.io/distribution/spec/auth/token/), on 127.0.0.1 over plain HTTP.
 *
 * - `GET /token?service=S&scope=repository:NAME:pull,push&scope=…` (scope may repeat, `account` is
 *   ignored), with optional Basic auth; answers `{token, access_token, expires_in, issued_at}`.
 * - `POST /token` (the OAuth2 password grant: form fields grant_type=password, username, password,
 *   service, scope as space-separated scopes); answers `{access_token, scope, expires_in, issued_at}`.
 * - A valid user gets every requested action, an anonymous request only `pull`, a wrong password (or an
 *   unknown user) 401, a `service` other than the configured one 400. `policy` replaces the grant rule.
 *
 * Tokens are ES256 JWTs whose header carries the signing certificate as `x5c`; the registry is given
 * that certificate as its `rootcertbundle`, so docker-registry 2.8 verifies the chain and the signature.
 * Claims: iss, sub (the user, '' when anonymous), aud (the service), exp, nbf, iat, jti, access.
 */
import { randomUUID, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certDerBase64, selfSigned } from './pki.js';

export interface ScopeRequest {
  /** 'repository', 'registry', … */
  type: string;
  /** Repository name (or 'catalog'). */
  name: string;
  actions: string[];
}

export interface TokenRequest {
  readonly method: 'GET' | 'POST';
  /** The scopes exactly as sent, e.g. 'repository:smoke/img:pull,push'. */
  readonly scopes: string[];
  /** The user named by Basic auth or the password grant, when there was one (even when its password was wrong). */
  readonly user?: string;
  readonly service?: string;
  /** The status the issuer answered with (200, 400, 401). */
  readonly status: number;
}

export interface TokenIssuer {
  /** http://127.0.0.1:PORT/token — the registry's `auth.token.realm`. */
  readonly url: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM file of the signing certificate: the registry's `auth.token.rootcertbundle`. */
  readonly rootCertBundle: string;
  /** Every token request, in arrival order. */
  readonly requests: TokenRequest[];
  stop(): Promise<void>;
}

export interface TokenIssuerOptions {
  /** The `aud`/`service`; default 'lading-test'. */
  service?: string;
  /** The `iss`; default 'lading-test-issuer'. */
  issuer?: string;
  /** Valid users and their passwords; default none (anonymous pull only). */
  users?: Record<string, string>;
  /** Token lifetime in seconds; default 300. */
  expiresIn?: number;
  /** Which actions to grant for one requested scope; default: all for a valid user, `pull` only for anonymous. */
  policy?: (scope: ScopeRequest, user: string | undefined) => string[];
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Splits 'repository:host/name:pull,push' (names never hold ':' but a type/name may be odd: split at the ends). */
export function parseScope(scope: string): ScopeRequest | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function defaultPolicy(scope: ScopeRequest, user: string | undefined): string[] {
  return user === undefined ? scope.actions.filter((a) => a === 'pull') : scope.actions;
}

function basicUser(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? { user: text, password: '' } : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.byteLength, ...headers });
  res.end(bytes);
}

/** Starts a token issuer on a free loopback port. Stop it (in `after`) when done. */
export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const service = options.service ?? 'lading-test';
  const issuer = options.issuer ?? 'lading-test-issuer';
  const users = options.users ?? {};
  const expiresIn = options.expiresIn ?? 300;
  const policy = options.policy ?? defaultPolicy;
  const dir = await mkdtemp(join(tmpdir(), 'lading-token-'));
  try {
    const signer = await selfSigned(dir, 'token-signer', '/CN=lading test token signer', ['keyUsage=critical,digitalSignature']);
    const key = await readFile(signer.key, 'utf8');
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [await certDerBase64(signer.cert)] }));
    const requests: TokenRequest[] = [];

    const mint = (user: string | undefined, scopes: string[]) => {
      const now = Math.floor(Date.now() / 1000);
      const access = scopes.flatMap((s) => {
        const parsed = parseScope(s);
        if (!parsed) return [];
        return [{ type: parsed.type, name: parsed.name, actions: policy(parsed, user) }];
      });
      const claims = {
        iss: issuer,
        sub: user ?? '',
        aud: service,
        exp: now + expiresIn,
        nbf: now - 1,
        iat: now,
        jti: randomUUID(),
        access,
      };
      const input = `${header}.${b64url(JSON.stringify(claims))}`;
      const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      return { token: `${input}.${b64url(signature)}`, issuedAt: new Date(now * 1000).toISOString() };
    };

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://issuer');
      const method = req.method === 'POST' ? 'POST' : 'GET';
      if (url.pathname !== '/token') {
        sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: url.pathname }] });
        return;
      }
      let scopes: string[];
      let reqService: string | undefined;
      let who: { user: string; password: string } | undefined;
      if (req.method === 'GET') {
        scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
        reqService = url.searchParams.get('service') ?? undefined;
        who = basicUser(req.headers.authorization);
      } else if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        scopes = form.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
        reqService = form.get('service') ?? undefined;
        if (form.get('grant_type') !== 'password') {
          requests.push({ method, scopes, ...(reqService !== undefined && { service: reqService }), status: 400 });
          return sendJson(res, 400, { error: 'unsupported_grant_type' });
        }
        who = { user: form.get('username') ?? '', password: form.get('password') ?? '' };
      } else {
        res.writeHead(405, { allow: 'GET, POST' }).end();
        return;
      }
      const log = (status: number) =>
        requests.push({ method, scopes, ...(who && { user: who.user }), ...(reqService !== undefined && { service: reqService }), status });
      if (reqService !== undefined && reqService !== service) {
        log(400);
        return sendJson(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${reqService}` }] });
      }
      if (who && users[who.user] !== who.password) {
        log(401);
        return sendJson(
          res,
          401,
          { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
          { 'www-authenticate': 'Basic realm="lading-test-issuer"' },
        );
      }
      log(200);
      const { token, issuedAt } = mint(who?.user, scopes);
      if (method === 'POST')
        sendJson(res, 200, { access_token: token, scope: scopes.join(' '), expires_in: expiresIn, issued_at: issuedAt });
      else sendJson(res, 200, { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt });
    };

    const server = createServer((req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(e) });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    let stopped: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${port}/token`,
      service,
      issuer,
      rootCertBundle: signer.cert,
      requests,
      stop() {
        stopped ??= (async () => {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
