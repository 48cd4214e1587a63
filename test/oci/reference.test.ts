import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { familiarString, formatReference, parseImageReference, repositoryOf, withDefaultTag } from '../../src/oci/reference.js';

const D256 = `sha256:${'a1'.repeat(32)}`;
const D512 = `sha512:${'0f'.repeat(64)}`;
const HEX64 = 'ab'.repeat(32);

// [input, formatReference output, familiarString output]
const VALID: ReadonlyArray<readonly [string, string, string]> = [
  ['ubuntu', 'docker.io/library/ubuntu', 'ubuntu'],
  ['alpine:3.19', 'docker.io/library/alpine:3.19', 'alpine:3.19'],
  ['library/alpine', 'docker.io/library/alpine', 'alpine'],
  ['docker.io/library/alpine:latest', 'docker.io/library/alpine:latest', 'alpine:latest'],
  ['docker.io/alpine', 'docker.io/library/alpine', 'alpine'],
  ['index.docker.io/foo', 'docker.io/library/foo', 'foo'],
  ['index.docker.io/user/foo', 'docker.io/user/foo', 'user/foo'],
  ['user/app', 'docker.io/user/app', 'user/app'],
  ['user/app:v1.2.3', 'docker.io/user/app:v1.2.3', 'user/app:v1.2.3'],
  ['library/a/b', 'docker.io/library/a/b', 'library/a/b'],
  ['a/b/c/d', 'docker.io/a/b/c/d', 'a/b/c/d'],
  ['localhost/x', 'localhost/x', 'localhost/x'],
  ['localhost/x:1', 'localhost/x:1', 'localhost/x:1'],
  ['localhost:5000/x', 'localhost:5000/x', 'localhost:5000/x'],
  ['localhost:5000/ns/x:dev', 'localhost:5000/ns/x:dev', 'localhost:5000/ns/x:dev'],
  ['localhost', 'docker.io/library/localhost', 'localhost'],
  ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000'],
  ['[::1]:5000/a/b:tag', '[::1]:5000/a/b:tag', '[::1]:5000/a/b:tag'],
  ['[fe80::1]/img', '[fe80::1]/img', '[fe80::1]/img'],
  ['127.0.0.1:5000/img:1', '127.0.0.1:5000/img:1', '127.0.0.1:5000/img:1'],
  [
    'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64',
    'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64',
    'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64',
  ],
  ['ghcr.io/owner/repo/sub/image:main', 'ghcr.io/owner/repo/sub/image:main', 'ghcr.io/owner/repo/sub/image:main'],
  ['registry.example.com/x', 'registry.example.com/x', 'registry.example.com/x'],
  ['my-registry.local:443/a', 'my-registry.local:443/a', 'my-registry.local:443/a'],
  ['Registry.Example.COM/x', 'Registry.Example.COM/x', 'Registry.Example.COM/x'],
  ['Foo/bar', 'Foo/bar', 'Foo/bar'],
  ['a/b', 'docker.io/a/b', 'a/b'],
  ['a', 'docker.io/library/a', 'a'],
  ['foo__bar', 'docker.io/library/foo__bar', 'foo__bar'],
  ['foo---bar/baz_qux', 'docker.io/foo---bar/baz_qux', 'foo---bar/baz_qux'],
  ['foo.bar', 'docker.io/library/foo.bar', 'foo.bar'],
  ['example.com/a.b_c-d__e/f', 'example.com/a.b_c-d__e/f', 'example.com/a.b_c-d__e/f'],
  [`alpine@${D256}`, `docker.io/library/alpine@${D256}`, `alpine@${D256}`],
  [`alpine:3.19@${D256}`, `docker.io/library/alpine:3.19@${D256}`, `alpine:3.19@${D256}`],
  [`quay.io/x/y@${D256}`, `quay.io/x/y@${D256}`, `quay.io/x/y@${D256}`],
  [`localhost:5000/x:t@${D512}`, `localhost:5000/x:t@${D512}`, `localhost:5000/x:t@${D512}`],
  [`user/app@${D512}`, `docker.io/user/app@${D512}`, `user/app@${D512}`],
  ['foo:Latest_1.0-rc', 'docker.io/library/foo:Latest_1.0-rc', 'foo:Latest_1.0-rc'],
  ['foo:_x', 'docker.io/library/foo:_x', 'foo:_x'],
  [`foo:${'t'.repeat(128)}`, `docker.io/library/foo:${'t'.repeat(128)}`, `foo:${'t'.repeat(128)}`],
  // Looks like a digest but has no '@': upstream reads repository "sha256" with a 64-character tag.
  [`sha256:${HEX64}`, `docker.io/library/sha256:${HEX64}`, `sha256:${HEX64}`],
  [`${HEX64.slice(0, 63)}`, `docker.io/library/${HEX64.slice(0, 63)}`, HEX64.slice(0, 63)],
  // Deliberate difference from upstream: keep docker.io/ when the short form would name another registry.
  ['docker.io/foo.bar/baz', 'docker.io/foo.bar/baz', 'docker.io/foo.bar/baz'],
  ['docker.io/localhost/x', 'docker.io/localhost/x', 'docker.io/localhost/x'],
  // Exactly 255 characters: docker.io + '/' + path.
  [`${'a'.repeat(10)}/${'b'.repeat(234)}`, `docker.io/${'a'.repeat(10)}/${'b'.repeat(234)}`, `${'a'.repeat(10)}/${'b'.repeat(234)}`],
];

// [input, fragment of the error message]
const INVALID: ReadonlyArray<readonly [string, string]> = [
  ['', 'repository name must have at least one component'],
  [' alpine', 'invalid reference format'],
  ['alpine ', 'invalid reference format'],
  ['alp ine', 'whitespace'],
  ['Foo/Bar', 'invalid reference "Foo/Bar": repository name must be lowercase'],
  ['UPPER', 'repository name must be lowercase'],
  ['user/App:1', 'repository name must be lowercase'],
  [HEX64, 'cannot specify 64-byte hexadecimal strings'],
  [':tag', 'missing repository name'],
  [`@${D256}`, 'missing repository name'],
  ['foo//bar', 'invalid reference format'],
  ['foo/', 'invalid reference format'],
  ['/foo', 'invalid reference format'],
  ['localhost/', 'missing repository path'],
  ['quay.io/', 'missing repository path'],
  ['foo:', 'empty tag'],
  ['foo:-bad', 'invalid reference format'],
  ['foo:bad/tag', 'invalid reference format'],
  [`foo:${'t'.repeat(129)}`, 'invalid reference format'],
  ['foo:a:b', 'invalid reference format'],
  ['foo@sha256:abc', 'invalid sha256 digest'],
  [`foo@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
  [`foo@sha256:${'A'.repeat(64)}`, 'invalid sha256 digest'],
  ['foo@', 'invalid digest'],
  [`foo@${D256}@${D256}`, 'invalid digest'],
  ['-foo', 'invalid reference format'],
  ['foo-', 'invalid reference format'],
  ['foo..bar', 'invalid reference format'],
  ['foo___bar', 'invalid reference format'],
  ['foo/.bar', 'invalid reference format'],
  ['-host.com/x', 'is not a valid registry host'],
  ['host-.com/x', 'is not a valid registry host'],
  ['a..b.com/x', 'is not a valid registry host'],
  ['host.com:port/x', 'is not a valid registry host'],
  ['[zz::1]/x', 'is not a valid registry host'],
  ['a_b.c/x', 'is not a valid registry host'],
  ['localhost:/x', 'is not a valid registry host'],
  [`${'a'.repeat(10)}/${'b'.repeat(235)}`, 'repository name must not be more than 255 characters'],
  [`quay.io/${'b'.repeat(248)}`, 'repository name must not be more than 255 characters'],
  ['foo\nbar', 'invalid reference format'],
];

describe('parseImageReference', () => {
  assert.ok(VALID.length >= 40 && INVALID.length >= 15);

  for (const [input, full, familiar] of VALID) {
    it(`normalizes ${JSON.stringify(input.slice(0, 60))}`, () => {
      const ref = parseImageReference(input);
      assert.equal(formatReference(ref), full);
      assert.equal(familiarString(ref), familiar);
      // Idempotent: the normalized and the familiar forms both parse back to the same reference.
      assert.equal(formatReference(parseImageReference(full)), full);
      assert.equal(formatReference(parseImageReference(familiar)), full);
      assert.deepEqual(parseImageReference(full), ref);
    });
  }

  for (const [input, fragment] of INVALID) {
    it(`rejects ${JSON.stringify(input.slice(0, 60))}`, () => {
      assert.throws(
        () => parseImageReference(input),
        (e) => {
          assert.ok(isLadingError(e, 'INVALID_REFERENCE'), String(e));
          assert.ok(e.message.includes(fragment), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(fragment)}`);
          assert.ok(!e.message.includes('\n'), 'message is one line');
          assert.ok(e.message.length < 300, 'message is short');
          return true;
        },
      );
    });
  }

  it('clips a long offending input in the message', () => {
    const long = `${'x'.repeat(300)}/Y`;
    assert.throws(
      () => parseImageReference(long),
      (e) => isLadingError(e, 'INVALID_REFERENCE') && e.message.includes('xxx...') && !e.message.includes(long),
    );
  });

  it('splits domain, path, tag and digest', () => {
    const ref = parseImageReference(`localhost:5000/ns/x:dev@${D256}`);
    assert.deepEqual({ ...ref }, { domain: 'localhost:5000', path: 'ns/x', tag: 'dev', digest: D256 });
    assert.equal(repositoryOf(ref), 'localhost:5000/ns/x');
    const bare = parseImageReference('alpine');
    assert.deepEqual(Object.keys(bare).sort(), ['domain', 'path'], 'absent tag and digest are absent keys');
  });
});

describe('withDefaultTag', () => {
  it('adds latest only when there is neither tag nor digest', () => {
    assert.equal(formatReference(withDefaultTag(parseImageReference('alpine'))), 'docker.io/library/alpine:latest');
    assert.equal(familiarString(withDefaultTag(parseImageReference('user/app'))), 'user/app:latest');
    assert.equal(formatReference(withDefaultTag(parseImageReference('alpine:3'))), 'docker.io/library/alpine:3');
    assert.equal(formatReference(withDefaultTag(parseImageReference(`alpine@${D256}`))), `docker.io/library/alpine@${D256}`);
  });
});

describe('familiarString', () => {
  it('keeps docker.io for hand-built references whose short form would normalize differently', () => {
    assert.equal(familiarString({ domain: 'docker.io', path: 'alpine' }), 'docker.io/alpine');
    assert.equal(familiarString({ domain: 'docker.io', path: 'library/alpine', tag: 'x' }), 'alpine:x');
  });
});
