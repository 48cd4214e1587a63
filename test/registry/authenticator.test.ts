/** The token flow in isolation: what is asked of a token server, what is cached, what is refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { Authenticator, type TokenFetcher } from '../../src/store/registry/auth.js';
import type { Credential } from '../../src/store/registry/credentials.js';

const CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:ns/app:pull"';

function recorder(answer: (url: URL, req: Parameters<TokenFetcher>[1]) => { status: number; body: string }) {
  const calls: { url: URL; req: Parameters<TokenFetcher>[1] }[] = [];
  const fetcher: TokenFetcher = async (url, req) => {
    calls.push({ url, req });
    return answer(url, req);
  };
  return { calls, fetcher };
}

const creds = (c: Credential | undefined) => async () => c;

describe('authenticator', () => {
  it('fetches a bearer token with basic credentials, for exactly the scopes asked, and caches it', async () => {
    const { calls, fetcher } = recorder(() => ({ status: 200, body: JSON.stringify({ token: 'T1', expires_in: 300 }) }));
    const auth = new Authenticator(creds({ username: 'u', password: 'p' }), fetcher);
    const scopes = ['repository:ns/app:pull,push', 'repository:ns/base:pull'];
    assert.equal(await auth.headerFor('reg.example', 'ns/app', scopes), undefined, 'nothing is known before the first challenge');
    assert.equal(await auth.answer('reg.example', 'ns/app', scopes, CHALLENGE), 'Bearer T1');
    assert.equal(calls.length, 1);
    const url = calls[0]!.url;
    assert.equal(url.searchParams.get('service'), 'reg.example');
    assert.deepEqual(url.searchParams.getAll('scope'), scopes);
    assert.equal(calls[0]!.req.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
    assert.equal(await auth.headerFor('reg.example', 'ns/app', [...scopes].reverse()), 'Bearer T1', 'cached per scope set');
    assert.equal(await auth.headerFor('reg.example', 'ns/app', ['repository:other:pull']), undefined);
  });

  it('asks once for concurrent challenges of the same scopes', async () => {
    const { calls, fetcher } = recorder(() => ({ status: 200, body: '{"access_token":"A"}' }));
    const auth = new Authenticator(creds(undefined), fetcher);
    const answers = await Promise.all([1, 2, 3].map(() => auth.answer('r', 'x', ['repository:x:pull'], CHALLENGE)));
    assert.deepEqual(answers, ['Bearer A', 'Bearer A', 'Bearer A']);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.req.headers.authorization, undefined, 'anonymous: no Authorization to the token server');
  });

  it('exchanges an identity token with the OAuth2 refresh grant', async () => {
    const { calls, fetcher } = recorder(() => ({ status: 200, body: '{"access_token":"R"}' }));
    const auth = new Authenticator(creds({ username: '<token>', password: 'refresh-me' }), fetcher);
    assert.equal(await auth.answer('r', 'ns/app', ['repository:ns/app:pull'], CHALLENGE), 'Bearer R');
    assert.equal(calls[0]!.req.method, 'POST');
    const form = new URLSearchParams(calls[0]!.req.body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('refresh_token'), 'refresh-me');
    assert.equal(form.get('service'), 'reg.example');
    assert.equal(form.get('scope'), 'repository:ns/app:pull');
  });

  it('says the credentials were rejected, naming the registry and repository', async () => {
    const { fetcher } = recorder(() => ({ status: 401, body: '' }));
    const auth = new Authenticator(creds({ username: 'u', password: 'wrong' }), fetcher);
    await assert.rejects(
      auth.answer('reg.example', 'ns/app', ['repository:ns/app:pull'], CHALLENGE),
      (e) => isLadingError(e, 'AUTH') && /reg\.example rejected the credentials for ns\/app/.test(e.message),
    );
  });

  it('answers a basic challenge with the credentials, and says how to pass some when there are none', async () => {
    const auth = new Authenticator(creds({ username: 'u', password: 'p' }), recorder(() => ({ status: 500, body: '' })).fetcher);
    assert.equal(await auth.answer('r', 'x', [], 'Basic realm="r"'), `Basic ${Buffer.from('u:p').toString('base64')}`);
    assert.equal(await auth.headerFor('r', 'x', []), `Basic ${Buffer.from('u:p').toString('base64')}`);
    const anonymous = new Authenticator(creds(undefined), recorder(() => ({ status: 500, body: '' })).fetcher);
    await assert.rejects(anonymous.answer('r', 'x', [], 'Basic realm="r"'), (e) => isLadingError(e, 'AUTH') && /--creds/.test(e.message));
  });

  it('refuses malformed token responses and realms clearly', async () => {
    const bad = new Authenticator(creds(undefined), recorder(() => ({ status: 200, body: 'not json' })).fetcher);
    await assert.rejects(
      bad.answer('r', 'x', ['s'], CHALLENGE),
      (e) => isLadingError(e, 'AUTH') && /malformed token response/.test(e.message),
    );
    const empty = new Authenticator(creds(undefined), recorder(() => ({ status: 200, body: '{}' })).fetcher);
    await assert.rejects(empty.answer('r', 'x', ['s'], CHALLENGE), (e) => isLadingError(e, 'AUTH') && /no token/.test(e.message));
    await assert.rejects(bad.answer('r', 'x', ['s'], 'Bearer service="x"'), (e) => isLadingError(e, 'AUTH') && /no realm/.test(e.message));
    await assert.rejects(bad.answer('r', 'x', ['s'], 'Negotiate'), (e) => isLadingError(e, 'AUTH') && /without saying how/.test(e.message));
  });
});
