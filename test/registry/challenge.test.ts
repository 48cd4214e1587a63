/** WWW-Authenticate parsing and token scopes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { parseWwwAuthenticate, repositoryScope } from '../../src/store/registry/challenge.js';

describe('parseWwwAuthenticate', () => {
  it("parses Docker Hub's bearer challenge, commas inside the quoted scope included", () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"';
    assert.deepEqual(parseWwwAuthenticate(header), [
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
      },
    ]);
  });

  it('parses a basic challenge and a bare (unquoted) parameter value', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm=https://auth.example/token, service=reg'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'reg' } },
    ]);
  });

  it('splits several challenges in one header (the RFC 7235 example)', () => {
    const header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"';
    assert.deepEqual(parseWwwAuthenticate(header), [
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'basic', params: { realm: 'simple' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Basic realm="a",Bearer realm="b",scope="repository:x:pull,push"'), [
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'b', scope: 'repository:x:pull,push' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Negotiate, Basic realm="x"'), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });

  it('unescapes quoted strings, backslashes included', () => {
    const [c] = parseWwwAuthenticate('Basic realm="a \\"quoted\\" \\\\ realm, with comma"');
    assert.equal(c?.params.realm, 'a "quoted" \\ realm, with comma');
  });

  it('lowercases schemes and parameter names, keeps values, and tolerates spaces around "="', () => {
    assert.deepEqual(parseWwwAuthenticate('BEARER Realm = "https://Auth.Example/T" , SERVICE="Reg"'), [
      { scheme: 'bearer', params: { realm: 'https://Auth.Example/T', service: 'Reg' } },
    ]);
  });

  it('keeps the first of a repeated parameter', () => {
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="one", realm="two"')[0]?.params, { realm: 'one' });
  });

  it('ignores token68 credentials', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic dXNlcjpwYXNz=='), [{ scheme: 'basic', params: {} }]);
    assert.deepEqual(parseWwwAuthenticate('Negotiate a87421000492aa874209af8bc028, Basic realm="x"'), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Custom abc/def+ghi='), [{ scheme: 'custom', params: {} }]);
  });

  it('returns what it can from malformed input and never throws', () => {
    assert.deepEqual(parseWwwAuthenticate(''), []);
    assert.deepEqual(parseWwwAuthenticate('   ,, '), []);
    // Unterminated quoted string: the rest of the header is the value.
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.example/token'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token' } },
    ]);
    // A parameter with no scheme before it is dropped; the challenge after it survives.
    assert.deepEqual(parseWwwAuthenticate('realm="x", Basic realm="y"'), [{ scheme: 'basic', params: { realm: 'y' } }]);
    // Junk between parameters is skipped to the next comma.
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="r" @@junk, service="s"'), [
      { scheme: 'bearer', params: { realm: 'r', service: 's' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('@@@, Basic realm="z"'), [{ scheme: 'basic', params: { realm: 'z' } }]);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm='), [{ scheme: 'bearer', params: {} }]);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm=,service="s"'), [{ scheme: 'bearer', params: { realm: '', service: 's' } }]);
    for (const junk of ['"', '\\', '=', '=,=', 'Bearer "', 'Bearer realm="\\', 'Basic ,,=,"x', '\u0000\u00ff', 'a=b=c"d\\"e,f']) {
      assert.doesNotThrow(() => parseWwwAuthenticate(junk), junk);
    }
  });

  it('does not let a parameter named like an Object prototype key misbehave', () => {
    const [c] = parseWwwAuthenticate('Bearer constructor="x", __proto__="y", realm="r"');
    assert.equal(c?.params.realm, 'r');
    assert.equal(c?.params.constructor, 'x');
    assert.ok(Object.hasOwn(c?.params ?? {}, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(c?.params, '__proto__')?.value, 'y');
    assert.equal(Object.getPrototypeOf(c?.params), Object.prototype);
  });
});

describe('repositoryScope', () => {
  it('writes pull, pull,push and the actions in a fixed order without duplicates', () => {
    assert.equal(repositoryScope('ns/app', ['pull']), 'repository:ns/app:pull');
    assert.equal(repositoryScope('ns/app', ['pull', 'push']), 'repository:ns/app:pull,push');
    assert.equal(repositoryScope('library/alpine', ['push', 'pull', 'push']), 'repository:library/alpine:pull,push');
    assert.equal(repositoryScope('a', ['delete', 'pull']), 'repository:a:pull,delete');
  });

  it('refuses an empty repository or an empty action list', () => {
    assert.throws(
      () => repositoryScope('', ['pull']),
      (e) => isLadingError(e, 'INVALID_REFERENCE'),
    );
    assert.throws(
      () => repositoryScope('a b', ['pull']),
      (e) => isLadingError(e, 'INVALID_REFERENCE'),
    );
    assert.throws(
      () => repositoryScope('ns/app', []),
      (e) => isLadingError(e, 'USAGE'),
    );
  });
});
