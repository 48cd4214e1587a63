import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMirrorSet } from '../../src/copy/mirror-set.js';
import { isLadingError } from '../../src/errors.js';
import { formatReference } from '../../src/oci/reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

/** The images as comparable strings: 'REF [platforms]'. */
function summary(text: string): string[] {
  return parseMirrorSet(text, 'm.yaml').images.map(
    (i) =>
      `${formatReference(i.source)} ${i.platforms === 'all' ? 'all' : i.platforms.map((p) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`).join(',')}`,
  );
}

function fails(text: string, message: string): void {
  assert.throws(
    () => parseMirrorSet(text, 'm.yaml'),
    (e: unknown) => {
      assert.ok(isLadingError(e, 'INVALID_MIRROR_SET'), String(e));
      assert.equal(e.message, message);
      assert.ok(!e.message.includes('\n'));
      return true;
    },
  );
}

describe('parseMirrorSet: good files', () => {
  it('reads names with and without docker://, digests, platforms, and defaults the tag', () => {
    const text = [
      'images:',
      '  - name: docker://quay.io/org/app:1.2   # a comment',
      '    platforms: [linux/amd64, linux/arm64]',
      `  - name: quay.io/org/db@${D}`,
      '  - name: alpine',
      '  - name: localhost:5000/ns/x:dev',
      '    platforms:',
      '      - linux/arm/v7',
      '  - name: quay.io/org/pinned:1@' + D,
      '    platforms: all',
      '',
    ].join('\n');
    assert.deepEqual(summary(text), [
      'quay.io/org/app:1.2 linux/amd64,linux/arm64',
      `quay.io/org/db@${D} all`,
      'docker.io/library/alpine:latest all',
      'localhost:5000/ns/x:dev linux/arm/v7',
      `quay.io/org/pinned:1@${D} all`,
    ]);
  });

  it('normalizes platforms (containerd aliases)', () => {
    const set = parseMirrorSet('images:\n  - name: a:1\n    platforms: [linux/x86_64, Linux/AArch64]\n', 'm.yaml');
    assert.deepEqual(set.images[0]?.platforms, [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
  });

  it('follows YAML anchors and aliases', () => {
    const text = 'images:\n  - name: quay.io/a:1\n    platforms: &p [linux/amd64]\n  - name: quay.io/b:1\n    platforms: *p\n';
    assert.deepEqual(summary(text), ['quay.io/a:1 linux/amd64', 'quay.io/b:1 linux/amd64']);
  });
});

describe('parseMirrorSet: merging', () => {
  it('merges exact duplicates silently, keeping first-appearance order', () => {
    const text = 'images:\n  - name: quay.io/a:1\n  - name: b\n  - name: docker://quay.io/a:1\n  - name: docker.io/library/b:latest\n';
    assert.deepEqual(summary(text), ['quay.io/a:1 all', 'docker.io/library/b:latest all']);
  });

  it('unions platform lists of the same source, dropping repeats', () => {
    const text = [
      'images:',
      '  - name: quay.io/a:1',
      '    platforms: [linux/amd64, linux/arm64]',
      '  - name: quay.io/other:1',
      '  - name: quay.io/a:1',
      '    platforms: [linux/s390x, linux/aarch64, linux/amd64]',
      '',
    ].join('\n');
    assert.deepEqual(summary(text), ['quay.io/a:1 linux/amd64,linux/arm64,linux/s390x', 'quay.io/other:1 all']);
  });

  it("turns into 'all' when any listing of the source says all", () => {
    const first = 'images:\n  - name: quay.io/a:1\n    platforms: [linux/amd64]\n  - name: quay.io/a:1\n';
    const second = 'images:\n  - name: quay.io/a:1\n  - name: quay.io/a:1\n    platforms: [linux/amd64]\n';
    assert.deepEqual(summary(first), ['quay.io/a:1 all']);
    assert.deepEqual(summary(second), ['quay.io/a:1 all']);
  });

  it('keeps different tags, and tag vs digest, apart', () => {
    const text = `images:\n  - name: quay.io/a:1\n  - name: quay.io/a:2\n  - name: quay.io/a@${D}\n`;
    assert.equal(summary(text).length, 3);
  });
});

describe('parseMirrorSet: errors are one FILE:LINE:COL line', () => {
  it('YAML syntax errors', () => {
    fails('images: [\n', 'm.yaml:2:1: Flow sequence in block collection must be sufficiently indented and end with a ]');
    fails('images: []\nimages: []\n', 'm.yaml:2:1: Map keys must be unique');
    fails('images: []\n---\nimages: []\n', 'm.yaml:2:1: a mirror set is a single YAML document (remove this "---" and what follows)');
  });

  it('the top level', () => {
    fails('', 'm.yaml:1:1: the mirror set is empty: it needs images:');
    fails('# only a comment\n', 'm.yaml:1:1: the mirror set is empty: it needs images:');
    fails('- a\n', 'm.yaml:1:1: expected a mapping with images:');
    fails('# c\nother: 1\n', 'm.yaml:2:1: unknown key "other": a mirror set has images:');
    fails('images:\n  - name: a\nextra: true\n', 'm.yaml:3:1: unknown key "extra": a mirror set has images:');
    fails('releases:\n  - 4.15.0\n', 'm.yaml:1:1: releases: is not supported yet');
  });

  it('images: missing, empty or not a list', () => {
    fails('# c\n{}\n', 'm.yaml:2:1: missing images: (the list of images to mirror)');
    fails('images:\n', 'm.yaml:1:1: images: lists no images');
    fails('images: []\n', 'm.yaml:1:9: images: lists no images');
    fails('images: quay.io/a:1\n', 'm.yaml:1:9: images: must be a list, e.g. "- name: quay.io/org/app:1.2"');
  });

  it('image entries', () => {
    fails('images:\n  - quay.io/a:1\n', 'm.yaml:2:5: an image must be a mapping, e.g. "- name: quay.io/org/app:1.2"');
    fails('images:\n  - platforms: all\n', 'm.yaml:2:5: an image needs name:');
    fails('images:\n  - name: a\n    tag: b\n', 'm.yaml:3:5: unknown key "tag" in an image: expected name or platforms');
    fails('images:\n  - name:\n', 'm.yaml:2:10: name: is empty');
    fails('images:\n  - name: 12\n', 'm.yaml:2:11: name: must be an image reference, not 12');
  });

  it('names with another transport', () => {
    const hint = 'name images as docker://HOST/REPO:TAG or HOST/REPO@sha256:...';
    fails('images:\n  - name: oci:/srv/layout:app\n', `m.yaml:2:11: name: transport "oci:" cannot be mirrored from a mirror set: ${hint}`);
    fails(
      'images:\n  - name: a\n  - name: oci-archive:/x.tar\n',
      `m.yaml:3:11: name: transport "oci-archive:" cannot be mirrored from a mirror set: ${hint}`,
    );
    fails('images:\n  - name: https://quay.io/a\n', `m.yaml:2:11: name: transport "https:" cannot be mirrored from a mirror set: ${hint}`);
  });

  it("invalid references give the reference parser's message", () => {
    fails(
      'images:\n  - name: quay.io/Org/app:1\n',
      'm.yaml:2:11: invalid reference "quay.io/Org/app:1": repository name must be lowercase',
    );
    fails(
      'images:\n  - name: "docker://quay.io/a:"\n',
      'm.yaml:2:11: invalid reference "quay.io/a:": invalid reference format (empty tag)',
    );
    fails('images:\n  - name: "a\\nb"\n', 'm.yaml:2:11: invalid reference "a\\nb": invalid reference format (it contains whitespace)');
  });

  it('platforms', () => {
    fails(
      'images:\n  - name: a\n    platforms: [linux/amd64, linux]\n',
      'm.yaml:3:30: invalid platform "linux": expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8',
    );
    fails('images:\n  - name: a\n    platforms: []\n', 'm.yaml:3:16: platforms: lists no platforms (leave it out to keep them all)');
    fails(
      'images:\n  - name: a\n    platforms: linux/amd64\n',
      'm.yaml:3:16: platforms: must be a list like [linux/amd64, linux/arm64], or all',
    );
    fails('images:\n  - name: a\n    platforms: [{os: linux}]\n', 'm.yaml:3:17: a platform must be a string like linux/amd64');
  });

  it('uses the file name as given and records the position in the context', () => {
    assert.throws(
      () => parseMirrorSet('images: []\n', '/etc/lading/set.yaml'),
      (e: unknown) =>
        isLadingError(e) &&
        e.message.startsWith('/etc/lading/set.yaml:1:9: ') &&
        e.context.file === '/etc/lading/set.yaml' &&
        e.context.line === '1' &&
        e.context.column === '9',
    );
  });
});
