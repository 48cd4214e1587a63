import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  inShard,
  layoutRefName,
  parseMirrorTarget,
  parseShard,
  registryDestination,
  SOURCE_ANNOTATION,
  sourceFromLayoutEntry,
} from '../../src/copy/mirror-names.js';
import { isLadingError } from '../../src/errors.js';
import { formatReference, parseImageReference, withDefaultTag } from '../../src/oci/reference.js';
import { parseTransportRef } from '../../src/store/transport.js';

const D = `sha256:${'ef'.repeat(32)}`;
const ref = (s: string) => withDefaultTag(parseImageReference(s));
const REF_NAME = 'org.opencontainers.image.ref.name';

describe('parseMirrorTarget', () => {
  it('reads registry, layout and archive targets', () => {
    const table: Array<[string, unknown]> = [
      ['docker://mirror.example:5000/prefix', { kind: 'registry', domain: 'mirror.example:5000', prefix: 'prefix' }],
      ['docker://mirror.example:5000/a/b/', { kind: 'registry', domain: 'mirror.example:5000', prefix: 'a/b' }],
      ['docker://mirror.example', { kind: 'registry', domain: 'mirror.example', prefix: '' }],
      ['docker://localhost:5000', { kind: 'registry', domain: 'localhost:5000', prefix: '' }],
      ['docker://localhost/', { kind: 'registry', domain: 'localhost', prefix: '' }],
      ['docker://[::1]:5000/m', { kind: 'registry', domain: '[::1]:5000', prefix: 'm' }],
      ['docker://index.docker.io/myorg', { kind: 'registry', domain: 'docker.io', prefix: 'myorg' }],
      ['oci:/srv/mirror', { kind: 'layout', dir: '/srv/mirror' }],
      ['oci:relative/dir', { kind: 'layout', dir: 'relative/dir' }],
      ['oci-archive:/media/usb/mirror.tar', { kind: 'archive', file: '/media/usb/mirror.tar' }],
    ];
    for (const [input, want] of table) assert.deepEqual(parseMirrorTarget(input), want, input);
  });

  it('refuses tags, digests, bad hosts and prefixes, and other transports', () => {
    const table: Array<[string, string, RegExp]> = [
      ['docker://mirror.example/p:1', 'USAGE', /takes no tag/],
      [`docker://mirror.example/p@${D}`, 'USAGE', /takes no digest/],
      ['docker://', 'USAGE', /needs a registry host/],
      ['docker://myregistry/p', 'USAGE', /"myregistry" is not a registry host: it needs a '\.' or a port/],
      ['docker://bad_host.example', 'USAGE', /"bad_host.example" is not a valid registry host/],
      ['docker://mirror.example/Prefix', 'USAGE', /invalid registry prefix "Prefix"/],
      ['docker://mirror.example/a//b', 'USAGE', /invalid registry prefix "a\/\/b"/],
      ['oci:/srv/mirror:tag', 'USAGE', /an oci: target takes no tag or digest/],
      [`oci:/srv/mirror@${D}`, 'USAGE', /an oci: target takes no tag or digest/],
      ['oci-archive:/m.tar:tag', 'USAGE', /an oci-archive: target takes no tag or digest/],
      ['dir:/srv/x', 'UNSUPPORTED_TRANSPORT', /expected docker:\/\/HOST\[\/PREFIX\], oci:DIR or oci-archive:FILE/],
      ['mirror.example:5000/p', 'USAGE', /needs the docker:\/\/ prefix/],
      ['/srv/mirror', 'USAGE', /needs the docker:\/\/ prefix/],
    ];
    for (const [input, code, message] of table) {
      assert.throws(
        () => parseMirrorTarget(input),
        (e: unknown) => isLadingError(e) && e.code === code && message.test(e.message),
        input,
      );
    }
  });
});

describe('registryDestination', () => {
  const target = { domain: 'mirror.example:5000', prefix: 'prefix' };
  it('maps sources under the prefix, with or without their host', () => {
    const table: Array<[string, { domain: string; prefix: string }, boolean, string]> = [
      ['quay.io/org/app:1.2', target, false, 'mirror.example:5000/prefix/org/app:1.2'],
      ['quay.io/org/app:1.2', target, true, 'mirror.example:5000/prefix/quay.io/org/app:1.2'],
      ['alpine:3.19', target, false, 'mirror.example:5000/prefix/library/alpine:3.19'],
      ['alpine:3.19', target, true, 'mirror.example:5000/prefix/docker.io/library/alpine:3.19'],
      ['localhost:5000/x', target, false, 'mirror.example:5000/prefix/x:latest'],
      ['localhost:5000/x:1', target, true, 'mirror.example:5000/prefix/localhost-5000/x:1'],
      ['[::1]:5000/a/b:t', target, true, 'mirror.example:5000/prefix/1-5000/a/b:t'],
      [`quay.io/org/db@${D}`, target, false, `mirror.example:5000/prefix/org/db@${D}`],
      [`quay.io/org/db:1@${D}`, target, false, `mirror.example:5000/prefix/org/db:1@${D}`],
      ['quay.io/org/app:1', { domain: 'localhost:5000', prefix: '' }, false, 'localhost:5000/org/app:1'],
      ['quay.io/org/app:1', { domain: 'localhost:5000', prefix: '' }, true, 'localhost:5000/quay.io/org/app:1'],
      ['quay.io/app:1', { domain: 'docker.io', prefix: '' }, false, 'docker.io/library/app:1'],
      ['quay.io/app:1', { domain: 'm.example', prefix: 'a/b-c/d_e' }, false, 'm.example/a/b-c/d_e/app:1'],
    ];
    for (const [source, t, keepHost, want] of table) {
      const got = registryDestination(ref(source), t, { keepHost });
      assert.equal(formatReference(got), want, `${source} keepHost=${keepHost}`);
      assert.deepEqual(parseImageReference(formatReference(got)), got, 'round trip');
    }
  });

  it('gives a source with neither tag nor digest the tag latest', () => {
    assert.equal(formatReference(registryDestination(parseImageReference('quay.io/a'), target)), 'mirror.example:5000/prefix/a:latest');
  });

  it('refuses an invalid prefix or host, and names over 255 characters', () => {
    const table: Array<[{ domain: string; prefix: string }, RegExp]> = [
      [{ domain: 'm.example', prefix: 'Upper' }, /invalid registry prefix "Upper"/],
      [{ domain: 'm.example', prefix: '/lead' }, /invalid registry prefix/],
      [{ domain: 'm.example', prefix: 'a:b' }, /invalid registry prefix/],
      [{ domain: 'm.example', prefix: '-x' }, /invalid registry prefix/],
      [{ domain: 'myreg', prefix: '' }, /"myreg" is not a registry host/],
      [{ domain: 'm.example', prefix: 'x'.repeat(250) }, /must not be more than 255 characters/],
    ];
    for (const [t, message] of table) {
      assert.throws(
        () => registryDestination(ref('quay.io/org/app:1'), t),
        (e: unknown) =>
          isLadingError(e, 'INVALID_REFERENCE') &&
          e.message.startsWith('cannot mirror quay.io/org/app:1 to docker://') &&
          message.test(e.message),
        JSON.stringify(t),
      );
    }
  });
});

describe('layoutRefName and sourceFromLayoutEntry', () => {
  const named: Array<[string, string]> = [
    ['quay.io/org/app:1.2', 'quay.io/org/app:1.2'],
    ['alpine:3.19', 'docker.io/library/alpine:3.19'],
    ['user/app', 'docker.io/user/app:latest'],
    ['localhost:5000/ns/x:dev', 'localhost:5000/ns/x:dev'],
    [`quay.io/org/db:1@${D}`, 'quay.io/org/db:1'],
    ['quay.io/org/app:_Odd-Tag.9', 'quay.io/org/app:_Odd-Tag.9'],
  ];

  it('names an image by its full name and tag, readable as oci:DIR:NAME', () => {
    for (const [source, name] of named) {
      assert.equal(layoutRefName(ref(source)), name);
      assert.deepEqual(parseTransportRef(`oci:/d:${name}`), { transport: 'oci', path: '/d', ref: name });
    }
  });

  it('leaves digest-only sources (and IPv6 hosts) untagged', () => {
    assert.equal(layoutRefName(ref(`quay.io/org/db@${D}`)), undefined);
    assert.equal(layoutRefName(ref('[::1]:5000/a:1')), undefined);
  });

  it('reads the source back from the ref name', () => {
    for (const [source, name] of named) {
      const back = sourceFromLayoutEntry({ [REF_NAME]: name });
      const { digest: _digest, ...withoutDigest } = ref(source);
      assert.deepEqual(back, withoutDigest, name);
    }
  });

  it('prefers the source annotation, which also covers digest-only images', () => {
    for (const source of [`quay.io/org/db@${D}`, `quay.io/org/db:1@${D}`, 'alpine:3.19', '[::1]:5000/a:1']) {
      const annotations = { [SOURCE_ANNOTATION]: formatReference(ref(source)), [REF_NAME]: 'quay.io/other/name:9' };
      assert.deepEqual(sourceFromLayoutEntry(annotations), ref(source));
    }
  });

  it('finds nothing in plain tags, foreign names or no annotations', () => {
    for (const name of ['latest', '1.0', 'alpine:3.19', 'quay.io/org/app', `quay.io/org/app@${D}`, 'Not/A:Ref', '']) {
      assert.equal(sourceFromLayoutEntry({ [REF_NAME]: name }), undefined, name);
    }
    assert.equal(sourceFromLayoutEntry({}), undefined);
    assert.equal(sourceFromLayoutEntry(undefined), undefined);
  });

  it('refuses a corrupt source annotation', () => {
    assert.throws(
      () => sourceFromLayoutEntry({ [SOURCE_ANNOTATION]: 'Bad Ref' }),
      (e: unknown) => isLadingError(e, 'INVALID_LAYOUT') && e.message.includes(SOURCE_ANNOTATION),
    );
  });
});

describe('sharding', () => {
  const refs = Array.from({ length: 50 }, (_, i) => ref(`quay.io/org/app-${i}:${i % 7}`));

  it('puts every image in exactly one shard, for 1..5 shards', () => {
    for (let count = 1; count <= 5; count++) {
      const seen = new Map<string, number>();
      for (let index = 1; index <= count; index++) {
        const mine = refs.filter((r) => inShard(r, { index, count }));
        if (count > 1) assert.ok(mine.length < refs.length, `shard ${index}/${count} took everything`);
        for (const r of mine) seen.set(formatReference(r), (seen.get(formatReference(r)) ?? 0) + 1);
      }
      assert.equal(seen.size, refs.length, `n=${count}`);
      assert.ok(
        [...seen.values()].every((n) => n === 1),
        `n=${count}`,
      );
    }
  });

  it('is deterministic: the same name is always in the same shard', () => {
    const a = ref('quay.io/org/app:1');
    const shards = [1, 2, 3].filter((index) => inShard(a, { index, count: 3 }));
    assert.equal(shards.length, 1);
    assert.equal(inShard(ref('quay.io/org/app:1'), { index: shards[0] ?? 0, count: 3 }), true);
  });

  it('parses I/N', () => {
    assert.deepEqual(parseShard('1/1'), { index: 1, count: 1 });
    assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
    assert.deepEqual(parseShard('3/3'), { index: 3, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', '0/0', '', 'x', '2', '2/', '/3', '1/2/3', '-1/2', '1.5/3', 'a/b']) {
      assert.throws(
        () => parseShard(bad),
        (e: unknown) =>
          isLadingError(e, 'USAGE') && e.message === `invalid shard ${JSON.stringify(bad)}: expected I/N with 1 <= I <= N, e.g. 2/3`,
        bad,
      );
    }
  });

  it('refuses an impossible shard', () => {
    assert.throws(
      () => inShard(refs[0] ?? ref('a'), { index: 0, count: 3 }),
      (e: unknown) => isLadingError(e, 'USAGE'),
    );
  });
});
