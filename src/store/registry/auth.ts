/**
 * Registry authentication: anonymous, Basic, and the distribution token flow (a 401 names a realm,
 * service and scope; a token for those scopes is fetched with the user's credentials, if any, and cached
 * until shortly before it expires). Tokens are cached per registry and scope set, so a run that copies
 * hundreds of images asks the token server once per repository, not once per request.
 */
import { LadingError } from '../../errors.js';
import { type Challenge, parseWwwAuthenticate } from './challenge.js';
import { type Credential, IDENTITY_TOKEN_USERNAME } from './credentials.js';

export type CredentialLookup = (host: string, repository?: string) => Promise<Credential | undefined>;

/** How the authenticator fetches a token: a request to the realm, through the client's own TLS settings. */
export type TokenFetcher = (
  url: URL,
  request: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; body: string }>;

interface CachedToken {
  header: string;
  expiresAt: number;
}

export class Authenticator {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly credentials: CredentialLookup,
    private readonly fetchToken: TokenFetcher,
  ) {}

  /** The Authorization header to send up front, when a challenge for this host is already known. */
  async headerFor(host: string, repository: string, scopes: readonly string[]): Promise<string | undefined> {
    const challenge = this.challenges.get(host);
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') return basicHeader(await this.credentials(host, repository));
    if (challenge.scheme !== 'bearer') return undefined;
    const cached = this.tokens.get(tokenKey(host, scopes));
    return cached !== undefined && cached.expiresAt > Date.now() ? cached.header : undefined;
  }

  /**
   * Answers a 401: remembers the challenge and returns the header to retry with. Throws a clear AUTH
   * error when there is nothing to retry with or the token server refuses.
   */
  async answer(
    host: string,
    repository: string,
    scopes: readonly string[],
    wwwAuthenticate: string | undefined,
    /** The Authorization the 401 answered, if any: a cached token that was refused is not offered again. */
    rejected?: string,
  ): Promise<string> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate ?? '');
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (challenge === undefined) {
      throw new LadingError('AUTH', `${host} refused access to ${repository} (401) without saying how to authenticate`);
    }
    this.challenges.set(host, challenge);
    const credential = await this.credentials(host, repository);
    if (challenge.scheme === 'basic') {
      const header = basicHeader(credential);
      if (header === undefined) throw denied(host, repository, false);
      return header;
    }
    const key = tokenKey(host, scopes);
    // Concurrent requests that all met a 401 share the token the first one fetched.
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now() && cached.header !== rejected) return cached.header;
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.requestToken(host, repository, challenge, scopes, credential).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const token = await p;
    this.tokens.set(key, token);
    return token.header;
  }

  /** Whether any credential is configured for this registry and repository. */
  async hasCredential(host: string, repository: string): Promise<boolean> {
    return (await this.credentials(host, repository)) !== undefined;
  }

  private async requestToken(
    host: string,
    repository: string,
    challenge: Challenge,
    scopes: readonly string[],
    credential: Credential | undefined,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (realm === undefined) throw new LadingError('AUTH', `${host} asked for a bearer token but named no realm to get it from`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new LadingError('AUTH', `${host} named an invalid token realm "${realm}"`);
    }
    let res: { status: number; body: string };
    if (credential?.username === IDENTITY_TOKEN_USERNAME) {
      // An identity token (docker login's refresh token) is exchanged with the OAuth2 refresh grant.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.password, client_id: 'lading' });
      if (challenge.params.service !== undefined) form.set('service', challenge.params.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.fetchToken(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } else {
      if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const authorization = basicHeader(credential);
      res = await this.fetchToken(url, { method: 'GET', headers: authorization === undefined ? {} : { authorization } });
    }
    if (res.status === 401 || res.status === 403) throw denied(host, repository, credential !== undefined);
    if (res.status !== 200) throw new LadingError('AUTH', `token server ${url.host} answered ${res.status} for ${host}/${repository}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body) as typeof body;
    } catch {
      throw new LadingError('AUTH', `token server ${url.host} sent a malformed token response for ${host}/${repository}`);
    }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (token === undefined || token === '')
      throw new LadingError('AUTH', `token server ${url.host} sent no token for ${host}/${repository}`);
    // The spec's default lifetime is 60 s, and never less; renew 10 s early.
    const seconds = typeof body.expires_in === 'number' && body.expires_in >= 60 ? body.expires_in : 60;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + (seconds - 10) * 1000 };
  }
}

function basicHeader(credential: Credential | undefined): string | undefined {
  if (credential === undefined || credential.username === IDENTITY_TOKEN_USERNAME) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

function tokenKey(host: string, scopes: readonly string[]): string {
  return `${host} ${[...scopes].sort().join(' ')}`;
}

function denied(host: string, repository: string, hadCredentials: boolean): LadingError {
  return new LadingError(
    'AUTH',
    hadCredentials
      ? `${host} rejected the credentials for ${repository} (401): check --creds, --authfile or your registry login for ${host}`
      : `${host} requires authentication for ${repository} (401): pass --creds USER:PASS or --authfile, or log in to ${host}`,
    { registry: host, repository },
  );
}
