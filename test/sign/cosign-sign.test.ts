/**
 * Cosign key signatures in OCI layouts and a real docker-registry, checked against independent peers:
 * openssl verifies Lading's ECDSA signatures with the `.pub`; Lading verifies signatures openssl made
 * over a payload typed by hand into a `.sig` manifest built by hand; a verifier written here applies
 * containers/image's `sigstoreSigned` payload rules (its own strict JSON reader, openssl for the
 * signature) to Lading's payloads; skopeo lists and reads the `.sig` tag. Plus appending, OCI 1.1
 * referrers, and the bad inputs: a tampered payload, another key, another digest inside, extra critical
 * fields, non-P-256 keys, no signatures at all.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { isLadingError } from '../../src/errors.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../../src/oci/types.js';
import {
  COSIGN_SIG_ARTIFACT_TYPE,
  cosignPayload,
  cosignSign,
  cosignVerify,
  generateCosignKeyPair,
  loadCosignPrivateKey,
  loadCosignPublicKey,
  parseCosignPayload,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  signatureTag,
} from '../../src/sign/cosign/index.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import type { Store } from '../../src/store/store.js';
import { startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { ok, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const ZERO = '0001-01-01T00:00:00Z';

interface TestKey {
  priv: KeyObject;
  pub: KeyObject;
  pubPem: string;
}

async function newKey(password = 'pw'): Promise<TestKey> {
  const { privatePem, publicPem } = await generateCosignKeyPair(password);
  return { priv: await loadCosignPrivateKey(privatePem, password), pub: loadCosignPublicKey(publicPem), pubPem: publicPem };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

async function blobBytes(store: Store, desc: Descriptor): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.fetchBlob(desc)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function manifestOf(store: Store, ref: string): Promise<{ desc: Descriptor; manifest: ImageManifest }> {
  const desc = await store.resolve(ref);
  return { desc, manifest: JSON.parse(Buffer.from(await store.fetchManifest(desc)).toString('utf8')) as ImageManifest };
}

/** openssl's verdict on a base64 DER signature over `payload` with a PEM public key. */
async function opensslVerifies(dir: string, pubPem: string, payload: Uint8Array, base64Signature: string): Promise<boolean> {
  const tag = randomBytes(4).toString('hex');
  await writeFile(join(dir, `${tag}.pub`), pubPem);
  await writeFile(join(dir, `${tag}.payload`), payload);
  await writeFile(join(dir, `${tag}.sig`), Buffer.from(base64Signature, 'base64'));
  const r = await run('openssl', [
    'dgst',
    '-sha256',
    '-verify',
    join(dir, `${tag}.pub`),
    '-signature',
    join(dir, `${tag}.sig`),
    join(dir, `${tag}.payload`),
  ]);
  return r.code === 0 && r.stdout.trim() === 'Verified OK';
}

// --- A verifier applying containers/image's sigstoreSigned rules, written independently of src/ -------

/** Strict JSON: objects become Maps, a repeated key is an error (containers/image's paranoid decoding). */
function paranoidParse(text: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
  };
  const take = (re: RegExp): string => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (m === null) throw new Error(`bad JSON at ${i}`);
    i += m[0].length;
    return m[0];
  };
  // JSON.parse then refuses raw control characters and bad escapes inside the string.
  const str = (): string => JSON.parse(take(/"(?:[^"\\]|\\.)*"/y)) as string;
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const m = new Map<string, unknown>();
      ws();
      if (text[i] === '}') {
        i++;
        return m;
      }
      for (;;) {
        ws();
        const k = str();
        if (m.has(k)) throw new Error(`duplicate key ${k}`);
        ws();
        take(/:/y);
        m.set(k, value());
        ws();
        if (take(/[,}]/y) === '}') return m;
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (take(/[,\]]/y) === ']') return a;
      }
    }
    if (c === '"') return str();
    const lit = take(/true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y);
    return JSON.parse(lit) as unknown;
  };
  const v = value();
  ws();
  if (i !== text.length) throw new Error('trailing data');
  return v;
}

function exactFields(v: unknown, fields: string[]): Map<string, unknown> {
  if (!(v instanceof Map)) throw new Error('not an object');
  const keys = [...v.keys()].sort();
  if (keys.join(',') !== [...fields].sort().join(',')) throw new Error(`fields ${keys.join(',')} instead of ${fields.join(',')}`);
  return v;
}

/**
 * containers/image's checks for one sigstore signature (signature/sigstore, prSigstoreSigned): the
 * signature over the payload by the key (openssl here), then the payload rules, the manifest digest and
 * the identity (matchRepository: the same repository).
 */
async function containersAccepts(
  dir: string,
  pubPem: string,
  payload: Uint8Array,
  base64Signature: string,
  imageDigest: string,
  repository: string,
): Promise<string> {
  if (!(await opensslVerifies(dir, pubPem, payload, base64Signature))) return 'cryptographic signature verification failed';
  try {
    const top = exactFields(paranoidParse(new TextDecoder('utf-8', { fatal: true }).decode(payload)), ['critical', 'optional']);
    const optional = top.get('optional');
    if (optional !== null) {
      if (!(optional instanceof Map)) return 'optional is not an object';
      if (optional.has('creator') && typeof optional.get('creator') !== 'string') return 'creator is not a string';
      if (optional.has('timestamp') && !Number.isInteger(optional.get('timestamp'))) return 'timestamp is not an integer';
    }
    const critical = exactFields(top.get('critical'), ['type', 'image', 'identity']);
    if (critical.get('type') !== 'cosign container image signature') return 'unrecognized signature type';
    const digest = exactFields(critical.get('image'), ['docker-manifest-digest']).get('docker-manifest-digest');
    const ref = exactFields(critical.get('identity'), ['docker-reference']).get('docker-reference');
    if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) return 'bad digest';
    if (digest !== imageDigest) return 'digest mismatch';
    if (typeof ref !== 'string' || ref.split(/[:@]/)[0] !== repository) return 'identity mismatch';
    return 'accepted';
  } catch (e) {
    return `rejected: ${(e as Error).message}`;
  }
}

// --- Helpers building signature manifests by hand ----------------------------------------------------

async function pushBytes(store: Store, mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}

/** A `.sig` manifest made without cosignSign: each layer a payload with the given signature annotation. */
async function pushSigManifest(
  store: Store,
  tag: string,
  layers: { payload: Uint8Array; signature?: string; mediaType?: string }[],
): Promise<Descriptor> {
  const descs: Descriptor[] = [];
  for (const l of layers) {
    const d = await pushBytes(store, l.mediaType ?? SIMPLE_SIGNING_MEDIA_TYPE, l.payload);
    descs.push(l.signature === undefined ? d : { ...d, annotations: { [SIGNATURE_ANNOTATION]: l.signature } });
  }
  const config = await pushBytes(
    store,
    MediaType.ociConfig,
    Buffer.from('{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'),
  );
  const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: descs });
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, { tags: [tag], root: true });
  return desc;
}

/** The payload cosign writes, typed out here rather than produced by Lading. */
function handPayload(identity: string, digest: string, optional = 'null'): Buffer {
  return Buffer.from(
    `{"critical":{"identity":{"docker-reference":"${identity}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":${optional}}`,
  );
}

async function layoutWithImage(dir: string, content = 'hello'): Promise<{ store: LayoutStore; image: Descriptor }> {
  const store = await LayoutStore.open(dir, 'write');
  const image = await writeImage(store, { layers: [{ files: { 'etc/motd': `${content}\n` } }] }, ['v1']);
  return { store, image: { mediaType: image.mediaType, digest: image.digest, size: image.size } };
}

const IDENTITY = 'registry.example/release/app';

describe('cosign payload', () => {
  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;

  it('is byte for byte what cosign writes, with "optional":null or sorted annotations', () => {
    assert.equal(Buffer.from(cosignPayload(IDENTITY, digest)).toString('utf8'), handPayload(IDENTITY, digest).toString('utf8'));
    const annotated = cosignPayload(IDENTITY, digest, { timestamp: 1700000000, creator: 'lading', 'a<b': 'x&y' });
    assert.equal(
      Buffer.from(annotated).toString('utf8'),
      handPayload(IDENTITY, digest, '{"a\\u003cb":"x\\u0026y","creator":"lading","timestamp":1700000000}').toString('utf8'),
    );
    assert.deepEqual(parseCosignPayload(annotated), {
      dockerReference: IDENTITY,
      digest,
      optional: { 'a<b': 'x&y', creator: 'lading', timestamp: 1700000000 },
      creator: 'lading',
      timestamp: 1700000000,
    });
  });

  it('refuses annotations containers/image would refuse, and identities or digests that do not parse', () => {
    assert.throws(() => cosignPayload(IDENTITY, digest, { creator: 7 }), /"creator" must be a string/);
    assert.throws(() => cosignPayload(IDENTITY, digest, { timestamp: 1.5 }), /"timestamp" must be an integer/);
    assert.throws(() => cosignPayload('Not A Reference!', digest), /invalid reference/);
    assert.throws(() => cosignPayload(IDENTITY, 'sha256:abc'), /invalid sha256 digest/);
  });

  it('rejects what containers/image rejects, as the test verifier does', async () => {
    const dir = await tempDir();
    const key = await newKey();
    const cases: [string, string, RegExp][] = [
      [
        'extra critical field',
        `{"critical":{"identity":{"docker-reference":"${IDENTITY}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature","extra":1},"optional":null}`,
        /critical has the unknown field "extra"/,
      ],
      [
        'wrong type',
        handPayload(IDENTITY, digest).toString().replace('cosign container image signature', 'atomic container signature'),
        /unrecognized signature type "atomic container signature"/,
      ],
      [
        'duplicate digest key',
        handPayload(IDENTITY, digest)
          .toString()
          .replace('"docker-manifest-digest":', `"docker-manifest-digest":"sha256:${'f'.repeat(64)}","docker-manifest-digest":`),
        /duplicate key/,
      ],
      [
        'missing optional',
        `{"critical":{"identity":{"docker-reference":"${IDENTITY}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"}}`,
        /the payload lacks the field "optional"/,
      ],
      [
        'extra top-level field',
        handPayload(IDENTITY, digest).toString().replace(/}$/, ',"more":true}'),
        /the payload has the unknown field "more"/,
      ],
      [
        'extra image field',
        handPayload(IDENTITY, digest).toString().replace(`"${digest}"`, `"${digest}","x":"y"`),
        /critical.image has the unknown field "x"/,
      ],
      ['timestamp not an integer', handPayload(IDENTITY, digest, '{"timestamp":1.5}').toString(), /optional.timestamp is not an integer/],
      ['creator not a string', handPayload(IDENTITY, digest, '{"creator":1}').toString(), /optional.creator is not a string/],
      ['optional an array', handPayload(IDENTITY, digest, '[]').toString(), /optional is neither null nor an object/],
      ['bad digest', handPayload(IDENTITY, 'sha256:xyz').toString(), /docker-manifest-digest: invalid sha256 digest "sha256:xyz"/],
      ['bad reference', handPayload('UPPER/Case', digest).toString(), /docker-reference: invalid reference/],
      ['not JSON', '{"critical":', /not valid JSON/],
    ];
    for (const [name, text, pattern] of cases) {
      const bytes = Buffer.from(text);
      assert.throws(() => parseCosignPayload(bytes), pattern, name);
      const signature = sign('sha256', bytes, key.priv).toString('base64');
      assert.notEqual(await containersAccepts(dir, key.pubPem, bytes, signature, digest, IDENTITY), 'accepted', `test verifier on ${name}`);
    }
    const good = cosignPayload(IDENTITY, digest, { creator: 'x' });
    assert.equal(
      await containersAccepts(dir, key.pubPem, good, sign('sha256', good, key.priv).toString('base64'), digest, IDENTITY),
      'accepted',
    );
  });
});

describe('cosign signatures in an OCI layout', () => {
  it('signs into sha256-<hex>.sig as cosign lays it out; openssl, the containers/image rules, skopeo and cosignVerify agree', async () => {
    const dir = await tempDir();
    const { store, image } = await layoutWithImage(join(dir, 'layout'));
    const key = await newKey();
    const result = await cosignSign({ store, image, identity: IDENTITY, key: key.priv });
    const tag = `sha256-${image.digest.slice(7)}.sig`;
    assert.equal(result.tag, tag);
    assert.equal(result.appended, true);
    assert.deepEqual(await store.tags(), [tag, 'v1']);

    const { desc, manifest } = await manifestOf(store, tag);
    assert.equal(desc.digest, result.signatureManifest.digest);
    assert.equal(manifest.mediaType, MediaType.ociManifest);
    assert.equal(manifest.config.mediaType, MediaType.ociConfig);
    assert.equal(manifest.layers.length, 1);
    const layer = manifest.layers[0] as Descriptor;
    assert.equal(layer.mediaType, 'application/vnd.dev.cosign.simplesigning.v1+json');
    const signature = layer.annotations?.['dev.cosignproject.cosign/signature'] as string;
    assert.match(signature, /^[A-Za-z0-9+/]+=*$/);
    const payload = await blobBytes(store, layer);
    assert.equal(payload.toString('utf8'), handPayload(IDENTITY, image.digest).toString('utf8'));
    // The config is go-containerregistry's, as cosign's mutate.Append leaves it.
    assert.equal(
      (await blobBytes(store, manifest.config)).toString('utf8'),
      `{"architecture":"","created":"${ZERO}","history":[{"created":"${ZERO}"}],"os":"","rootfs":{"type":"layers","diff_ids":["${layer.digest}"]},"config":{}}`,
    );

    assert.equal(await opensslVerifies(dir, key.pubPem, payload, signature), true);
    assert.equal(await containersAccepts(dir, key.pubPem, payload, signature, image.digest, IDENTITY), 'accepted');
    const raw = await ok('skopeo', 'inspect', '--raw', `oci:${join(dir, 'layout')}:${tag}`);
    assert.equal(digestOf(Buffer.from(raw)), desc.digest);

    const verified = await cosignVerify({ store, image, publicKey: key.pub, identity: `${IDENTITY}:v1` });
    assert.equal(verified.length, 1);
    assert.equal(verified[0]?.identity, IDENTITY);
    assert.equal(verified[0]?.source, 'tag');
    assert.deepEqual(verified[0]?.payload, JSON.parse(payload.toString('utf8')));
    await store.close();
  });

  it('appends a second signature and keeps the first; signing the same payload with the same key again adds nothing', async () => {
    const dir = await tempDir();
    const { store, image } = await layoutWithImage(dir);
    const [k1, k2] = [await newKey(), await newKey()];
    const first = await cosignSign({ store, image, identity: IDENTITY, key: k1.priv });
    const before = await manifestOf(store, first.tag);
    const second = await cosignSign({ store, image, identity: 'mirror.example/release/app', key: k2.priv, annotations: { creator: 'ci' } });
    assert.equal(second.appended, true);
    const afterSecond = await manifestOf(store, first.tag);
    assert.equal(afterSecond.manifest.layers.length, 2);
    assert.deepEqual(afterSecond.manifest.layers[0], before.manifest.layers[0]);
    const l1 = (afterSecond.manifest.layers[0] as Descriptor).digest;
    const l2 = (afterSecond.manifest.layers[1] as Descriptor).digest;
    assert.equal(
      (await blobBytes(store, afterSecond.manifest.config)).toString('utf8'),
      `{"architecture":"","created":"${ZERO}","history":[{"created":"${ZERO}"},{"created":"${ZERO}"}],"os":"","rootfs":{"type":"layers","diff_ids":["${l1}","${l2}"]},"config":{}}`,
    );
    assert.deepEqual(
      (await cosignVerify({ store, image, publicKey: k1.pub })).map((v) => v.identity),
      [IDENTITY],
    );
    assert.deepEqual(
      (await cosignVerify({ store, image, publicKey: k2.pub })).map((v) => v.identity),
      ['mirror.example/release/app'],
    );

    const again = await cosignSign({ store, image, identity: IDENTITY, key: k1.priv });
    assert.equal(again.appended, false);
    assert.equal(again.signatureManifest.digest, afterSecond.desc.digest);
    assert.equal((await store.resolve(first.tag)).digest, afterSecond.desc.digest);
    await store.close();
  });

  it('pushes an OCI 1.1 referrer when asked, which verification finds without the .sig tag', async () => {
    const dir = await tempDir();
    const { store, image } = await layoutWithImage(dir);
    const key = await newKey();
    const result = await cosignSign({ store, image, identity: IDENTITY, key: key.priv, referrer: true });
    assert.ok(result.referrer);
    const refs = await store.referrers(image);
    assert.deepEqual(
      refs.map((r) => [r.digest, r.artifactType]),
      [[result.referrer.digest, COSIGN_SIG_ARTIFACT_TYPE]],
    );
    const referrer = JSON.parse(Buffer.from(await store.fetchManifest(result.referrer)).toString('utf8')) as ImageManifest;
    assert.equal(referrer.artifactType, COSIGN_SIG_ARTIFACT_TYPE);
    assert.equal(referrer.config.mediaType, COSIGN_SIG_ARTIFACT_TYPE);
    assert.deepEqual(referrer.subject, { mediaType: image.mediaType, digest: image.digest, size: image.size });
    assert.deepEqual(referrer.layers, [result.layer]);
    await store.close();

    // Drop the .sig tag from index.json: the referrer alone must carry the signature.
    const indexPath = join(dir, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as ImageIndex;
    index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== result.tag);
    await writeFile(indexPath, JSON.stringify(index));
    const reopened = await LayoutStore.open(dir, 'read');
    const verified = await cosignVerify({ store: reopened, image, publicKey: key.pub });
    assert.deepEqual(
      verified.map((v) => [v.source, v.manifest]),
      [['referrer', result.referrer.digest]],
    );
    await reopened.close();
  });

  it('verifies a signature openssl made with its own key over a payload and manifest built by hand', async () => {
    const dir = await tempDir();
    const { store, image } = await layoutWithImage(join(dir, 'layout'));
    await ok('openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'k.pem'));
    await ok('openssl', 'ec', '-in', join(dir, 'k.pem'), '-pubout', '-out', join(dir, 'k.pub'));
    const payload = handPayload(IDENTITY, image.digest, '{"creator":"openssl"}');
    await writeFile(join(dir, 'payload'), payload);
    await ok('openssl', 'dgst', '-sha256', '-sign', join(dir, 'k.pem'), '-out', join(dir, 'sig.der'), join(dir, 'payload'));
    const signature = (await readFile(join(dir, 'sig.der'))).toString('base64');
    await pushSigManifest(store, signatureTag(image.digest), [{ payload, signature }]);
    const verified = await cosignVerify({ store, image, publicKey: loadCosignPublicKey(await readFile(join(dir, 'k.pub'), 'utf8')) });
    assert.deepEqual(
      verified.map((v) => [v.identity, v.claims.creator]),
      [[IDENTITY, 'openssl']],
    );
    // Lading appends to a .sig manifest it did not write, keeping openssl's layer.
    const key = await newKey();
    await cosignSign({ store, image, identity: IDENTITY, key: key.priv });
    const { manifest } = await manifestOf(store, signatureTag(image.digest));
    assert.equal(manifest.layers[0]?.annotations?.[SIGNATURE_ANNOTATION], signature);
    assert.equal(manifest.layers.length, 2);
    assert.equal(
      (await cosignVerify({ store, image, publicKey: loadCosignPublicKey(await readFile(join(dir, 'k.pub'), 'utf8')) })).length,
      1,
    );
    await store.close();
  });

  describe('bad input', () => {
    let dir: string;
    let store: LayoutStore;
    let image: Descriptor;
    let key: TestKey;
    let name: string;
    let tag: string;

    /** Replaces the image's .sig tag with these layers, then expects verification to fail with `reason`. */
    async function failsWith(
      layers: Parameters<typeof pushSigManifest>[2],
      reason: RegExp,
      options: { identity?: string; publicKey?: KeyObject } = {},
    ) {
      await pushSigManifest(store, tag, layers);
      const index = await readFile(join(dir, 'index.json'));
      await rejectsWith(
        cosignVerify({ store, image, publicKey: options.publicKey ?? key.pub, ...(options.identity && { identity: options.identity }) }),
        'SIGNATURE',
        reason,
      );
      assert.deepEqual(await readFile(join(dir, 'index.json')), index, 'verification writes nothing');
    }

    before(async () => {
      // tempDir() cleans up after the hook that calls it: this directory must outlive the hook.
      dir = await mkdtemp(join(tmpdir(), 'lading-cosign-bad-'));
      ({ store, image } = await layoutWithImage(dir, 'bad-input'));
      key = await newKey();
      name = `oci:${dir}@${image.digest}`;
      tag = signatureTag(image.digest);
    });
    after(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('no signatures at all: the error names the image and the missing tag', async () => {
      await rejectsWith(
        cosignVerify({ store, image, publicKey: key.pub }),
        'SIGNATURE',
        new RegExp(`^no valid cosign signature for ${escape(name)}: there is no ${tag} tag; no cosign signature referrers$`),
      );
    });

    it('a signature by another key', async () => {
      const other = await newKey();
      const payload = cosignPayload(IDENTITY, image.digest);
      await failsWith(
        [{ payload, signature: sign('sha256', payload, other.priv).toString('base64') }],
        new RegExp(`^no valid cosign signature for ${escape(name)}: ${tag}: the signature does not verify with the given public key`),
      );
    });

    it('a tampered payload (the signed bytes with another identity)', async () => {
      const payload = cosignPayload(IDENTITY, image.digest);
      const signature = sign('sha256', payload, key.priv).toString('base64');
      const tampered = Buffer.from(payload.toString().replace(IDENTITY, 'evil.example/release/app'));
      await failsWith([{ payload: tampered, signature }], /the signature does not verify with the given public key/);
    });

    it('another digest inside a properly signed payload', async () => {
      const other = `sha256:${'e'.repeat(64)}`;
      const payload = cosignPayload(IDENTITY, other);
      await failsWith(
        [{ payload, signature: sign('sha256', payload, key.priv).toString('base64') }],
        new RegExp(`${tag}: the payload signs ${other}, not this image`),
      );
    });

    it('an extra critical field, and the wrong type, in properly signed payloads (one reason per layer)', async () => {
      const extra = Buffer.from(handPayload(IDENTITY, image.digest).toString().replace('"type":', '"extra":{},"type":'));
      const atomic = Buffer.from(
        handPayload(IDENTITY, image.digest).toString().replace('cosign container image signature', 'atomic container signature'),
      );
      await failsWith(
        [
          { payload: extra, signature: sign('sha256', extra, key.priv).toString('base64') },
          { payload: atomic, signature: sign('sha256', atomic, key.priv).toString('base64') },
        ],
        new RegExp(
          `${tag} layer 1: critical has the unknown field "extra"; ${tag} layer 2: unrecognized signature type "atomic container signature"`,
        ),
      );
    });

    it('an identity from another repository when one is asked for', async () => {
      const payload = cosignPayload('other.example/app', image.digest);
      await failsWith(
        [{ payload, signature: sign('sha256', payload, key.priv).toString('base64') }],
        /names other\.example\/app, not repository registry\.example\/release\/app/,
        {
          identity: `${IDENTITY}:v1`,
        },
      );
    });

    it('layers without a signature, of another media type, or with a signature that is not base64', async () => {
      const payload = cosignPayload(IDENTITY, image.digest);
      await failsWith(
        [{ payload }, { payload, signature: 'x', mediaType: 'application/octet-stream' }, { payload, signature: '!!notbase64!!' }],
        /layer 1: it has no dev\.cosignproject\.cosign\/signature annotation; .*layer 2: its media type is application\/octet-stream, not application\/vnd\.dev\.cosign\.simplesigning\.v1\+json; .*layer 3: its signature annotation is not valid base64/,
      );
    });

    it('a P-384 key: refused for verifying and for signing, and signing writes nothing', async () => {
      const keyDir = await tempDir();
      await ok('openssl', 'ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', join(keyDir, 'p384.pem'));
      const p384 = createPrivateKey(await readFile(join(keyDir, 'p384.pem')));
      await rejectsWith(
        cosignVerify({ store, image, publicKey: createPublicKey(p384) }),
        'KEY',
        /ECDSA on curve secp384r1: Lading signs and verifies cosign signatures with ECDSA P-256 keys only/,
      );
      const index = await readFile(join(dir, 'index.json'));
      const blobs = await readdir(join(dir, 'blobs', 'sha256'));
      await rejectsWith(cosignSign({ store, image, identity: IDENTITY, key: p384 }), 'KEY', /ECDSA on curve secp384r1/);
      await rejectsWith(
        cosignSign({ store, image, identity: IDENTITY, key: key.pub }),
        'KEY',
        /needs the cosign private key, not a public key/,
      );
      assert.deepEqual(await readFile(join(dir, 'index.json')), index);
      assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), blobs);
    });
  });
});

describe('cosign signatures in a registry (docker-registry 2.8)', () => {
  let reg: RegistryInstance;
  let client: RegistryClient;
  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient();
  });
  after(async () => {
    await client.close();
    await reg.stop();
  });

  it('keygen → sign (with referrer) → append → verify; skopeo lists and reads the .sig tag', async () => {
    const dir = await tempDir();
    const repo = 'release/app';
    const push = new RegistryStore(client, reg.host, repo, 'push');
    const written = await writeImage(push, { layers: [{ files: { 'etc/motd': 'registry\n' } }] }, ['v1']);
    const image: Descriptor = { mediaType: written.mediaType, digest: written.digest, size: written.size };
    const [k1, k2] = [await newKey(), await newKey()];
    const identity = `${reg.host}/${repo}`;
    const first = await cosignSign({ store: push, image, identity, key: k1.priv, referrer: true });
    const second = await cosignSign({ store: new RegistryStore(client, reg.host, repo, 'push'), image, identity, key: k2.priv });
    assert.equal(second.tag, first.tag);

    const tags = JSON.parse(await ok('skopeo', 'list-tags', '--tls-verify=false', `docker://${identity}`)) as { Tags: string[] };
    const hex = image.digest.slice(7);
    assert.deepEqual(tags.Tags.sort(), [`sha256-${hex}`, `sha256-${hex}.sig`, 'v1']);
    const raw = await ok('skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${identity}:sha256-${hex}.sig`);
    assert.equal(digestOf(Buffer.from(raw)), second.signatureManifest.digest);
    const sig = JSON.parse(raw) as ImageManifest;
    assert.deepEqual(
      sig.layers.map((l) => l.annotations?.[SIGNATURE_ANNOTATION]),
      [first.layer.annotations?.[SIGNATURE_ANNOTATION], second.layer.annotations?.[SIGNATURE_ANNOTATION]],
    );
    const inspected = JSON.parse(await ok('skopeo', 'inspect', '--tls-verify=false', `docker://${identity}:sha256-${hex}.sig`)) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(inspected.Digest, second.signatureManifest.digest);
    assert.deepEqual(inspected.Layers, [first.layer.digest, second.layer.digest]);

    // openssl verifies the stored signature over the stored payload, read back through the registry.
    const read = new RegistryStore(client, reg.host, repo, 'pull');
    const payload = await blobBytes(read, first.layer);
    assert.equal(await opensslVerifies(dir, k1.pubPem, payload, first.layer.annotations?.[SIGNATURE_ANNOTATION] as string), true);

    const v1 = await cosignVerify({ store: read, image, publicKey: k1.pub, identity });
    assert.deepEqual(
      v1.map((v) => [v.identity, v.source]),
      [[identity, 'tag']],
      'the referrer copy of the same signature is not counted twice',
    );
    const v2 = await cosignVerify({ store: new RegistryStore(client, reg.host, repo, 'pull'), image, publicKey: k2.pub });
    assert.deepEqual(
      v2.map((v) => v.source),
      ['tag'],
    );

    // Without the .sig manifest, key 1's signature is still found as a referrer (tag-schema fallback).
    await push.deleteManifest(second.signatureManifest.digest);
    const fresh = new RegistryStore(new RegistryClient(), reg.host, repo, 'pull');
    const viaReferrer = await cosignVerify({ store: fresh, image, publicKey: k1.pub });
    assert.deepEqual(
      viaReferrer.map((v) => [v.source, v.manifest]),
      [['referrer', first.referrer?.digest]],
    );
    await rejectsWith(
      cosignVerify({ store: fresh, image, publicKey: k2.pub }),
      'SIGNATURE',
      new RegExp(
        `^no valid cosign signature for docker://${escape(identity)}@${image.digest}: there is no sha256-${hex}\\.sig tag; referrer sha256:[0-9a-f]{64}: the signature does not verify`,
      ),
    );
    await fresh.close();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
