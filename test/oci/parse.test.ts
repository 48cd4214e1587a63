import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ErrorCode, isLadingError } from '../../src/errors.js';
import { canonicalJson, canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { type Digest, digestOf } from '../../src/oci/digest.js';
import { EMPTY_DESCRIPTOR, MediaType } from '../../src/oci/media-types.js';
import { parseConfig, parseIndexJson, parseLayoutFile, parseManifest } from '../../src/oci/parse.js';
import { validateAgainstSchema } from '../../src/oci/schema.js';
import { type Descriptor, MAX_MANIFEST_BYTES } from '../../src/oci/types.js';

const enc = new TextEncoder();

function blob(content: string, mediaType: string): Descriptor {
  return { mediaType, digest: digestOf(content), size: enc.encode(content).byteLength };
}

const CONFIG = {
  architecture: 'amd64',
  os: 'linux',
  created: '2024-05-01T12:00:00.123456789Z',
  config: { Env: ['PATH=/usr/bin'], Cmd: ['sh'], Labels: { a: 'b' } },
  rootfs: { type: 'layers', diff_ids: [digestOf('layer-uncompressed')] },
  history: [{ created: '2024-05-01T12:00:00+02:00', created_by: 'ADD rootfs' }],
};
const CONFIG_JSON = canonicalJson(CONFIG);
const LAYER = blob('layer', MediaType.ociLayerGzip);

function ociManifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: blob(CONFIG_JSON, MediaType.ociConfig),
    layers: [LAYER],
    annotations: { 'org.opencontainers.image.title': 'x<y&z' },
    ...extra,
  };
}

/** Serializes `doc` and returns the bytes with a descriptor that names them. */
function encode(doc: unknown, mediaType: string): { bytes: Uint8Array; desc: Descriptor } {
  const bytes = typeof doc === 'string' ? enc.encode(doc) : canonicalJsonBytes(doc);
  return { bytes, desc: { mediaType, digest: digestOf(bytes), size: bytes.byteLength } };
}

function parse(doc: unknown, mediaType: string = MediaType.ociManifest) {
  const { bytes, desc } = encode(doc, mediaType);
  return parseManifest(bytes, desc, `manifest ${desc.digest} in oci:/x`);
}

function throwsCode(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    assert.ok(!e.message.includes('\n'), 'message is one line');
    return true;
  });
}

describe('parseManifest: accepted', () => {
  it('an OCI image manifest', () => {
    const m = parse(ociManifest());
    assert.equal(m.kind, 'manifest');
    if (m.kind !== 'manifest') return;
    assert.equal(m.manifest.layers[0]?.digest, LAYER.digest);
    assert.equal(m.descriptor.mediaType, MediaType.ociManifest);
  });

  it('an OCI index, including an entry of a media type it does not walk', () => {
    const child = encode(ociManifest(), MediaType.ociManifest).desc;
    const m = parse(
      {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [{ ...child, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }, blob('sbom', 'application/spdx+json')],
      },
      MediaType.ociIndex,
    );
    assert.equal(m.kind, 'index');
    if (m.kind === 'index') assert.equal(m.index.manifests.length, 2);
  });

  it('a Docker v2 schema 2 manifest and manifest list', () => {
    const docker = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: blob(CONFIG_JSON, MediaType.dockerConfig),
      layers: [blob('layer', MediaType.dockerLayerGzip)],
    };
    assert.equal(parse(docker, MediaType.dockerManifest).kind, 'manifest');
    const child = encode(docker, MediaType.dockerManifest).desc;
    const list = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: [{ ...child, platform: { architecture: 'amd64', os: 'linux', features: ['sse4'] } }],
    };
    assert.equal(parse(list, MediaType.dockerManifestList).kind, 'index');
  });

  it('takes the media type from the JSON when the descriptor has none', () => {
    const m = parse(ociManifest(), '');
    assert.equal(m.descriptor.mediaType, MediaType.ociManifest);
  });

  it('an empty-config artifact manifest with artifactType, and matching embedded data', () => {
    const m = parse(ociManifest({ config: EMPTY_DESCRIPTOR, artifactType: 'application/vnd.example+json' }));
    assert.equal(m.kind, 'manifest');
  });
});

describe('parseManifest: refused', () => {
  it('bytes over 4 MiB', () => {
    const bytes = new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20);
    const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
    throwsCode(() => parseManifest(bytes, desc, 'manifest m'), 'MANIFEST_TOO_LARGE', `${MAX_MANIFEST_BYTES + 1} bytes`, '4 MiB');
  });

  it('bytes that do not match the digest or the size', () => {
    const { bytes, desc } = encode(ociManifest(), MediaType.ociManifest);
    const other = digestOf('other');
    throwsCode(
      () => parseManifest(bytes, { ...desc, digest: other }, `manifest ${other}`),
      'DIGEST_MISMATCH',
      `manifest ${other} is corrupt`,
      desc.digest,
    );
    throwsCode(
      () => parseManifest(bytes, { ...desc, size: desc.size + 1 }, 'manifest m'),
      'SIZE_MISMATCH',
      `expected ${desc.size + 1} bytes`,
    );
  });

  it('malformed JSON, a BOM, and JSON that is not an object', () => {
    throwsCode(() => parse('{"schemaVersion":2,'), 'INVALID_MANIFEST', 'is not valid JSON');
    throwsCode(() => parse(`\ufeff${canonicalJson(ociManifest())}`), 'INVALID_MANIFEST', 'is not valid JSON');
    throwsCode(() => parse('[]'), 'INVALID_MANIFEST', 'must be a JSON object');
  });

  it('Docker schema 1, with UNSUPPORTED_MEDIA_TYPE', () => {
    const s1 = { schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [], history: [] };
    throwsCode(() => parse(s1, MediaType.dockerSchema1Signed), 'UNSUPPORTED_MEDIA_TYPE', 'schema 1', 'manifest sha256:');
    throwsCode(() => parse(s1, MediaType.dockerSchema1), 'UNSUPPORTED_MEDIA_TYPE', 'schema 1');
  });

  it('unknown or missing media types', () => {
    const { mediaType: _, ...bare } = ociManifest();
    throwsCode(() => parse(bare, 'application/json'), 'UNSUPPORTED_MEDIA_TYPE', '"application/json"');
    throwsCode(() => parse(bare, ''), 'UNSUPPORTED_MEDIA_TYPE', '(none)');
  });

  it('a descriptor media type that contradicts the JSON', () => {
    throwsCode(() => parse(ociManifest(), MediaType.dockerManifest), 'INVALID_MANIFEST', MediaType.ociManifest, MediaType.dockerManifest);
  });

  const schemaCases: [string, Record<string, unknown>, string][] = [
    ['a malformed layer digest', { layers: [{ ...LAYER, digest: 'sha256:not hex' }] }, '/layers/0/digest must match pattern "^[a-z0-9]+'],
    ['a missing config', { config: undefined }, '/config is required'],
    ['an empty layer list', { layers: [] }, '/layers must NOT have fewer than 1 items'],
    ['a non-string annotation', { annotations: { a: 1 } }, '/annotations/a must be string'],
    ['a negative size', { layers: [{ ...LAYER, size: -1 }] }, '/layers/0/size must be >= 0'],
    ['a fractional size', { layers: [{ ...LAYER, size: 1.5 }] }, '/layers/0/size must be integer'],
    ['a url that is not a URI', { layers: [{ ...LAYER, urls: ['not a uri'] }] }, '/layers/0/urls/0 must match format "uri"'],
    ['schemaVersion 1', { schemaVersion: 1 }, '/schemaVersion must be >= 2'],
    [
      'a malformed media type',
      { mediaType: undefined, layers: [{ ...LAYER, mediaType: 'tar' }] },
      '/layers/0/mediaType must match pattern',
    ],
  ];
  for (const [name, extra, fragment] of schemaCases) {
    it(`schema: ${name}`, () => throwsCode(() => parse(ociManifest(extra)), 'INVALID_MANIFEST', 'in oci:/x is invalid: ', fragment));
  }

  it('digest algorithms Lading cannot verify', () => {
    const layer = { ...LAYER, digest: `sha384:${'a'.repeat(96)}` };
    throwsCode(() => parse(ociManifest({ layers: [layer] })), 'INVALID_MANIFEST', '/layers/0/digest', 'sha384');
    throwsCode(() => parse(ociManifest({ layers: [{ ...LAYER, digest: 'sha256:abc' }] })), 'INVALID_MANIFEST', '/layers/0/digest');
  });

  it('sizes beyond 2^53 in an index (int64 in the schema)', () => {
    const index = { schemaVersion: 2, manifests: [{ ...LAYER, mediaType: MediaType.ociManifest, size: 2n ** 60n }] };
    throwsCode(() => parse(index, MediaType.ociIndex), 'INVALID_MANIFEST', '/manifests/0/size');
  });

  it('an empty config without artifactType', () => {
    throwsCode(() => parse(ociManifest({ config: EMPTY_DESCRIPTOR })), 'INVALID_MANIFEST', '/artifactType is required');
  });

  it('embedded data that does not match its descriptor', () => {
    const bad = (data: string, size = 2) => ({ config: { ...EMPTY_DESCRIPTOR, data, size }, artifactType: 'a/b' });
    throwsCode(() => parse(ociManifest(bad('e3w='))), 'INVALID_MANIFEST', '/config/data hashes to');
    throwsCode(() => parse(ociManifest(bad('e30gIA=='))), 'INVALID_MANIFEST', '/config/data decodes to 4 bytes but size is 2');
    throwsCode(() => parse(ociManifest(bad('e30'))), 'INVALID_MANIFEST', '/config/data must be padded standard base64');
    throwsCode(() => parse(ociManifest(bad('e3!='))), 'INVALID_MANIFEST', '/config/data must be padded standard base64');
  });

  it('a subject that is not a manifest', () => {
    throwsCode(() => parse(ociManifest({ subject: LAYER })), 'INVALID_MANIFEST', '/subject/mediaType');
    const subject = encode(ociManifest(), MediaType.ociManifest).desc;
    assert.equal(parse(ociManifest({ subject })).kind, 'manifest');
  });
});

describe('parseConfig', () => {
  const what = 'config c';
  const cfg = (doc: unknown, mediaType: string = MediaType.ociConfig) => {
    const { bytes, desc } = encode(doc, mediaType);
    return parseConfig(bytes, desc, what);
  };

  it('accepts an OCI config and a Docker config with Go nulls (dropped from the result)', () => {
    assert.equal(cfg(CONFIG).architecture, 'amd64');
    const docker = { ...CONFIG, config: { Env: null, Cmd: null, Labels: null, Hostname: '' }, docker_version: '24.0.0' };
    const parsed = cfg(docker, MediaType.dockerConfig);
    assert.deepEqual(parsed.config, { Hostname: '' });
  });

  it('refuses what the OCI schema refuses', () => {
    throwsCode(() => cfg({ ...CONFIG, config: { Env: null } }), 'INVALID_MANIFEST', '/config/Env must be array');
    throwsCode(() => cfg({ ...CONFIG, architecture: undefined }), 'INVALID_MANIFEST', '/architecture is required');
    throwsCode(
      () => cfg({ ...CONFIG, rootfs: { type: 'tree', diff_ids: [] } }),
      'INVALID_MANIFEST',
      '/rootfs/type must be one of "layers"',
    );
    throwsCode(() => cfg({ ...CONFIG, created: 'yesterday' }), 'INVALID_MANIFEST', '/created must match format "date-time"');
    throwsCode(() => cfg({ ...CONFIG, created: '2023-02-29T00:00:00Z' }), 'INVALID_MANIFEST', '/created');
  });

  it('refuses bad diff_ids, empty os, other media types and corrupt bytes', () => {
    throwsCode(() => cfg({ ...CONFIG, rootfs: { type: 'layers', diff_ids: ['sha256:1'] } }), 'INVALID_MANIFEST', '/rootfs/diff_ids/0');
    throwsCode(() => cfg({ ...CONFIG, os: '' }), 'INVALID_MANIFEST', '/os must not be empty');
    throwsCode(() => cfg(CONFIG, 'application/vnd.cncf.helm.config.v1+json'), 'UNSUPPORTED_MEDIA_TYPE', 'not an image config');
    const { bytes, desc } = encode(CONFIG, MediaType.ociConfig);
    throwsCode(() => parseConfig(bytes, { ...desc, digest: digestOf('x') as Digest }, what), 'DIGEST_MISMATCH', 'config c is corrupt');
  });
});

describe('layout files', () => {
  it('oci-layout: 1.0.0 accepted, others refused by name', () => {
    assert.deepEqual(parseLayoutFile(enc.encode('{"imageLayoutVersion":"1.0.0"}'), 'oci:/x/oci-layout'), { imageLayoutVersion: '1.0.0' });
    throwsCode(
      () => parseLayoutFile(enc.encode('{"imageLayoutVersion":"2.0.0"}'), 'oci:/x/oci-layout'),
      'INVALID_LAYOUT',
      '"2.0.0"',
      '1.0.0',
      'oci:/x/oci-layout',
    );
    throwsCode(() => parseLayoutFile(enc.encode('{}'), 'oci-layout'), 'INVALID_LAYOUT', '/imageLayoutVersion is required');
    throwsCode(
      () => parseLayoutFile(enc.encode('{"imageLayoutVersion":1}'), 'oci-layout'),
      'INVALID_LAYOUT',
      '/imageLayoutVersion must be string',
    );
    throwsCode(() => parseLayoutFile(enc.encode('not json'), 'oci-layout'), 'INVALID_LAYOUT', 'not valid JSON');
  });

  it('index.json: valid accepted, problems are INVALID_LAYOUT', () => {
    const entry = { ...encode(ociManifest(), MediaType.ociManifest).desc, annotations: { 'org.opencontainers.image.ref.name': 'v1' } };
    const index = parseIndexJson(canonicalJsonBytes({ schemaVersion: 2, manifests: [entry] }), 'oci:/x/index.json');
    assert.equal(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], 'v1');
    const at = (doc: unknown) => () => parseIndexJson(canonicalJsonBytes(doc), 'oci:/x/index.json');
    throwsCode(at({ schemaVersion: 2 }), 'INVALID_LAYOUT', 'oci:/x/index.json is invalid: /manifests is required');
    throwsCode(at({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [] }), 'INVALID_LAYOUT', '/mediaType');
    throwsCode(
      at({ schemaVersion: 2, manifests: [{ ...entry, digest: `md5:${'a'.repeat(32)}` }] }),
      'INVALID_LAYOUT',
      '/manifests/0/digest',
    );
  });
});

describe('validateAgainstSchema', () => {
  it('validates a lone descriptor', () => {
    validateAgainstSchema('descriptor', LAYER, 'descriptor d');
    throwsCode(
      () => validateAgainstSchema('descriptor', { ...LAYER, size: '3' }, 'descriptor d'),
      'INVALID_MANIFEST',
      'descriptor d is invalid: /size must be integer',
    );
    throwsCode(() => validateAgainstSchema('manifest', 'text', 'manifest m'), 'INVALID_MANIFEST', '(top level) must be object');
  });
});
