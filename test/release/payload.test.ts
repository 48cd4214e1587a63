/** The payload file formats: written as oc writes them, read as oc and the CVO read them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { goMarshalIndent } from '../../src/release/go-json.js';
import {
  checkNamesAgree,
  imageReferencesBytes,
  parseImageReferences,
  parseReleaseMetadata,
  parseTools,
  releaseMetadataBytes,
} from '../../src/release/payload.js';
import { parsePinnedPullSpec, pullSpecFor } from '../../src/release/pull-spec.js';
import { compareSemver, parseSemver, sortVersions } from '../../src/release/semver.js';
import { parseTransportRef } from '../../src/store/transport.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/release/${name}`, import.meta.url));
const D = `sha256:${'c'.repeat(64)}`;

describe('release payload formats', () => {
  it('writes image-references as oc does: MarshalIndent of the ImageStream, tags sorted, maps sorted, no final newline', () => {
    const bytes = imageReferencesBytes({
      name: '4.15.0',
      creationTimestamp: '1970-01-01T00:00:00Z',
      annotations: {},
      tags: [
        { name: 'installer', pullSpec: `quay.io/o/r@${D}`, annotations: { 'z.key': 'a<b', 'a.key': '' } },
        { name: 'cli', pullSpec: `quay.io/o/r@${D}` },
      ],
    });
    const expected = `{
  "kind": "ImageStream",
  "apiVersion": "image.openshift.io/v1",
  "metadata": {
    "name": "4.15.0",
    "creationTimestamp": "1970-01-01T00:00:00Z"
  },
  "spec": {
    "lookupPolicy": {
      "local": false
    },
    "tags": [
      {
        "name": "cli",
        "from": {
          "kind": "DockerImage",
          "name": "quay.io/o/r@${D}"
        },
        "importPolicy": {},
        "referencePolicy": {
          "type": ""
        }
      },
      {
        "name": "installer",
        "annotations": {
          "a.key": "",
          "z.key": "a\\u003cb"
        },
        "from": {
          "kind": "DockerImage",
          "name": "quay.io/o/r@${D}"
        },
        "importPolicy": {},
        "referencePolicy": {
          "type": ""
        }
      }
    ]
  },
  "status": {
    "dockerImageRepository": ""
  }
}`;
    assert.equal(bytes.toString(), expected);
  });

  it('writes release-metadata as oc does: previous sorted as strings and always present, next and empty metadata left out', () => {
    const bytes = releaseMetadataBytes({
      kind: 'cincinnati-metadata-v0',
      version: '1.0.0',
      previous: ['1.0.0-rc.10', '0.9.0', '1.0.0-rc.9'],
      metadata: {},
    });
    assert.equal(
      bytes.toString(),
      '{\n  "kind": "cincinnati-metadata-v0",\n  "version": "1.0.0",\n  "previous": [\n    "0.9.0",\n    "1.0.0-rc.10",\n    "1.0.0-rc.9"\n  ]\n}',
    );
    const empty = releaseMetadataBytes({ kind: 'cincinnati-metadata-v0', version: '1.0.0', previous: [] });
    assert.equal(empty.toString(), '{\n  "kind": "cincinnati-metadata-v0",\n  "version": "1.0.0",\n  "previous": []\n}');
    const meta = releaseMetadataBytes({
      kind: 'cincinnati-metadata-v0',
      version: '1.0.0',
      previous: [],
      metadata: { url: 'u', b: { y: 1, x: [true] } },
    });
    assert.match(
      meta.toString(),
      /"metadata": \{\n {4}"b": \{\n {6}"x": \[\n {8}true\n {6}\],\n {6}"y": 1\n {4}\},\n {4}"url": "u"\n {2}\}/,
    );
  });

  it('reads image-references and release-metadata as oc writes them', () => {
    const refs = parseImageReferences(fixture('oc-image-references'), 'fixture', { pinned: true });
    assert.equal(refs.name, '4.15.0');
    assert.equal(refs.creationTimestamp, '2024-02-23T01:24:49Z');
    assert.deepEqual(
      refs.tags.map((t) => t.name),
      ['cli', 'cluster-version-operator', 'installer'],
    );
    assert.equal(refs.tags[0]!.annotations?.['io.openshift.build.versions'], 'kubectl=1.28.2');
    assert.match(refs.tags[0]!.pullSpec, /^quay\.io\/openshift-release-dev\/ocp-v4\.0-art-dev@sha256:[0-9a-f]{64}$/);
    const meta = parseReleaseMetadata(fixture('oc-release-metadata'), 'fixture');
    assert.deepEqual(meta.previous, ['4.14.10', '4.14.11', '4.14.9']);
    assert.equal(meta.metadata?.url, 'https://access.redhat.com/errata/RHSA-2024:0041');
    checkNamesAgree(refs, meta, 'fixture');
    // Written back, the release-metadata bytes are the same (oc's layout, key order and sorting).
    assert.equal(releaseMetadataBytes(meta).toString(), fixture('oc-release-metadata').toString());
  });

  it('reads image-references written as YAML, as the CVO test payloads are', () => {
    const refs = parseImageReferences(fixture('yaml-image-references'), 'fixture', { pinned: true });
    assert.equal(refs.name, '1.0.0-abc');
    assert.deepEqual(
      refs.tags.map((t) => t.name),
      ['cvo'],
    );
  });

  it('refuses references not pinned by digest in a payload (as oc does), but takes them as compose input', () => {
    const doc = (name: string) =>
      Buffer.from(
        JSON.stringify({
          kind: 'ImageStream',
          apiVersion: 'image.openshift.io/v1',
          metadata: { name: '1.0.0' },
          spec: { tags: [{ name: 'cli', from: { kind: 'DockerImage', name } }] },
        }),
      );
    assert.throws(
      () => parseImageReferences(doc('quay.io/o/cli:latest'), 'refs', { pinned: true }),
      (e: unknown) =>
        isLadingError(e, 'INVALID_RELEASE') &&
        /^refs: image-references should only contain pointers to images by digest: cli is quay\.io\/o\/cli:latest/.test(e.message),
    );
    assert.equal(parseImageReferences(doc('quay.io/o/cli:latest'), 'refs', { pinned: false }).tags[0]!.pullSpec, 'quay.io/o/cli:latest');
    assert.equal(parseImageReferences(doc(`quay.io/o/cli:1@${D}`), 'refs', { pinned: true }).tags.length, 1);
  });

  it('refuses malformed payload files with a message naming the file', () => {
    const bad: [string, Uint8Array, RegExp][] = [
      ['not json', Buffer.from('{'), /not valid JSON or YAML/],
      ['wrong kind', Buffer.from('{"kind":"ConfigMap","metadata":{"name":"1.0.0"}}'), /kind is "ConfigMap", expected ImageStream/],
      ['wrong apiVersion', Buffer.from('{"kind":"ImageStream","apiVersion":"v1","metadata":{"name":"1.0.0"}}'), /apiVersion is "v1"/],
      ['no name', Buffer.from('{"kind":"ImageStream","metadata":{}}'), /metadata.name \(the release version\) is missing/],
      [
        'duplicate',
        Buffer.from(
          `{"metadata":{"name":"1.0.0"},"spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"x@${D}"}},{"name":"a","from":{"kind":"DockerImage","name":"x@${D}"}}]}}`,
        ),
        /listed twice/,
      ],
      [
        'ImageStreamTag source',
        Buffer.from('{"metadata":{"name":"1.0.0"},"spec":{"tags":[{"name":"a","from":{"kind":"ImageStreamTag","name":"x:y"}}]}}'),
        /has no from: \{kind: DockerImage/,
      ],
    ];
    for (const [what, bytes, message] of bad) {
      assert.throws(
        () => parseImageReferences(bytes, 'image-references', { pinned: true }),
        (e: unknown) => isLadingError(e, 'INVALID_RELEASE') && message.test(e.message),
        what,
      );
    }
    assert.throws(
      () => parseReleaseMetadata(Buffer.from('{"kind":"x","version":"1.0.0"}'), 'rm'),
      /rm: kind is "x", expected "cincinnati-metadata-v0"/,
    );
    assert.throws(
      () => parseReleaseMetadata(Buffer.from('{"kind":"cincinnati-metadata-v0","version":"v1.0"}'), 'rm'),
      /version "v1.0" is not a semantic version/,
    );
    assert.throws(
      () => parseReleaseMetadata(Buffer.from('{"kind":"cincinnati-metadata-v0","version":"1.0.0","previous":"1.0.0"}'), 'rm'),
      /previous must be a list/,
    );
    assert.throws(() => parseTools(Buffer.from('{"kind":"other"}'), 't'), /expected \{"kind":"lading-tools-v0"/);
  });

  it('refuses an ImageStream whose name differs from the metadata version, as the CVO does', () => {
    const refs = parseImageReferences(fixture('oc-image-references'), 'refs', { pinned: true });
    const meta = parseReleaseMetadata(Buffer.from('{"kind":"cincinnati-metadata-v0","version":"4.15.1","previous":[]}'), 'rm');
    assert.throws(
      () => checkNamesAgree(refs, meta, 'release x'),
      (e: unknown) =>
        isLadingError(e, 'INVALID_RELEASE') &&
        e.message === 'release x: version from image-references "4.15.0" differs from release-metadata "4.15.1"',
    );
  });

  it('pull specs: registry repos and OCI layouts, pinned by digest only', () => {
    assert.equal(pullSpecFor(parseTransportRef('docker://quay.io/o/r:4.15'), D), `quay.io/o/r@${D}`);
    assert.equal(pullSpecFor(parseTransportRef('oci:/tmp/x:tag'), D), `oci:/tmp/x@${D}`);
    assert.equal(parsePinnedPullSpec(`quay.io/o/r@${D}`).digest, D);
    assert.equal(parsePinnedPullSpec(`oci:/tmp/x@${D}`).location.transport, 'oci');
    assert.throws(() => parsePinnedPullSpec('quay.io/o/r:4.15'), /is not pinned by digest/);
    assert.throws(() => parsePinnedPullSpec('oci:/tmp/x:tag'), /is not pinned by digest/);
  });

  it('semver: parses strictly and orders by precedence', () => {
    for (const ok of ['4.15.0', '1.0.0-abc', '4.16.0-0.nightly-2024-03-13-061822', '1.0.0+build.1', '0.0.1-2024-01-01-000000'])
      assert.ok(parseSemver(ok), ok);
    for (const bad of ['v4.15.0', '4.15', '04.1.0', '1.0.0-', '1.0.0-01', '']) assert.equal(parseSemver(bad), undefined, bad);
    assert.deepEqual(sortVersions(['4.14.10', '4.14.9', '4.15.0-rc.1', '4.15.0', '4.15.0-rc.0', 'junk']), [
      '4.14.9',
      '4.14.10',
      '4.15.0-rc.0',
      '4.15.0-rc.1',
      '4.15.0',
      'junk',
    ]);
    assert.equal(compareSemver(parseSemver('1.0.0-alpha')!, parseSemver('1.0.0-alpha.1')!), -1);
    assert.equal(compareSemver(parseSemver('1.0.0-beta.11')!, parseSemver('1.0.0-beta.2')!), 1);
  });

  it('Go-style JSON escapes <, > and & like encoding/json', () => {
    assert.equal(goMarshalIndent({ a: '<&>\u2028' }), '{\n  "a": "\\u003c\\u0026\\u003e\\u2028"\n}');
    assert.equal(goMarshalIndent({ a: [], b: {} }), '{\n  "a": [],\n  "b": {}\n}');
  });
});
