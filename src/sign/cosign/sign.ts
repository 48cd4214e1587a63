/**
 * Signing an image the way `cosign sign --key cosign.key --tlog-upload=false` does: the simple-signing
 * payload, an ECDSA P-256 / SHA-256 signature over it (ASN.1 DER, base64 in the layer annotation), and
 * the signature appended as a layer to the image's `sha256-<hex>.sig` manifest, keeping the signatures
 * already there. Optionally the same signature is also pushed as an OCI 1.1 referrer; the store decides
 * how a referrer is found (a layout lists it in index.json; a registry store uses the referrers API or
 * maintains the `sha256-<hex>` tag-schema index).
 *
 * Appending is read-modify-write of one tag, and so racy between concurrent signers (as with cosign).
 */
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { Readable } from 'node:stream';
import { isLadingError, LadingError } from '../../errors.js';
import { type Digest, digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { parseManifest } from '../../oci/parse.js';
import type { Descriptor, ImageManifest } from '../../oci/types.js';
import { streamToBytes } from '../../store/stream-bytes.js';
import type { Store } from '../../store/store.js';
import { requireP256 } from './key-file.js';
import { cosignPayload } from './payload.js';
import {
  appendedSignatureManifest,
  MAX_SIGNATURE_LAYERS,
  referrerSignatureManifest,
  SIGNATURE_ANNOTATION,
  signatureConfig,
  signatureLayer,
  signatureTag,
} from './signature-manifest.js';
import { verifyPayloadSignature } from './verify.js';

/** Configs are a few hundred bytes; refuse to buffer a hostile one. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface CosignSignOptions {
  store: Store;
  /** The manifest or index to sign (its digest is what the payload names). */
  image: Descriptor;
  /** `critical.identity.docker-reference`: cosign puts the repository here (`registry/ns/repo`). */
  identity: string;
  /** An ECDSA P-256 private key (loadCosignPrivateKey). */
  key: KeyObject;
  /** Also push the signature as an OCI 1.1 referrer of the image. */
  referrer?: boolean;
  /** `optional` members of the payload (cosign's `-a key=value`). */
  annotations?: Readonly<Record<string, unknown>>;
}

export interface CosignSignResult {
  /** The `.sig` manifest the tag names after signing. */
  signatureManifest: Descriptor;
  /** `sha256-<hex>.sig` */
  tag: string;
  /** The signature's layer (payload digest, signature annotation). */
  layer: Descriptor;
  /**
   * False when the tag already held this payload signed by this key: as cosign does, no duplicate is
   * added and nothing is written.
   */
  appended: boolean;
  /** The referrer manifest, when one was pushed. */
  referrer?: Descriptor;
}

export async function cosignSign(options: CosignSignOptions): Promise<CosignSignResult> {
  const { store, image, key } = options;
  if (key.type !== 'private') throw new LadingError('KEY', 'signing needs the cosign private key, not a public key');
  requireP256(key, 'signing key');
  const tag = signatureTag(image.digest);
  const payload = cosignPayload(options.identity, image.digest, options.annotations);
  const signature = sign('sha256', payload, key).toString('base64');
  const layer = signatureLayer(payload, signature);

  const existing = await readSignatureManifest(store, tag);
  if (existing !== undefined) {
    if (existing.manifest.layers.length >= MAX_SIGNATURE_LAYERS) {
      throw new LadingError(
        'SIGNATURE',
        `${store.name}:${tag} already holds ${existing.manifest.layers.length} signatures, cosign's limit: remove old ones before adding more`,
        { tag },
      );
    }
    if (alreadySigned(existing.manifest, layer.digest, payload, createPublicKey(key))) {
      return { signatureManifest: existing.descriptor, tag, layer, appended: false };
    }
  }

  await pushSmallBlob(store, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, payload);
  const configMediaType = existing?.manifest.config.mediaType ?? MediaType.ociConfig;
  const config = await pushSmallBlob(store, configMediaType, signatureConfig(existing?.config, [layer.digest]));
  const manifestBytes = appendedSignatureManifest(existing?.manifest, config, layer);
  const signatureManifest: Descriptor = {
    mediaType: existing?.descriptor.mediaType ?? MediaType.ociManifest,
    digest: digestOf(manifestBytes),
    size: manifestBytes.byteLength,
  };
  await store.pushManifest(signatureManifest, manifestBytes, { tags: [tag], root: true });

  const result: CosignSignResult = { signatureManifest, tag, layer, appended: true };
  if (options.referrer) {
    const refConfig = await pushSmallBlob(store, MediaType.ociConfig, signatureConfig(undefined, [layer.digest]));
    const bytes = referrerSignatureManifest(image, refConfig, layer);
    const referrer: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
    await store.pushManifest(referrer, bytes, { root: true });
    result.referrer = referrer;
  }
  return result;
}

export interface SignatureManifest {
  descriptor: Descriptor;
  manifest: ImageManifest;
  /** The parsed config, or undefined when it is not a JSON object (it is then rebuilt from scratch). */
  config: Record<string, unknown> | undefined;
}

/** The manifest `tag` names in `store`, or undefined when there is no such tag. */
export async function readSignatureManifest(store: Store, tag: string): Promise<SignatureManifest | undefined> {
  let descriptor: Descriptor;
  try {
    descriptor = await store.resolve(tag);
  } catch (e) {
    if (isLadingError(e, 'NOT_FOUND')) return undefined;
    throw e;
  }
  const what = `signature manifest ${store.name}:${tag}`;
  const parsed = parseManifest(await store.fetchManifest(descriptor), descriptor, what);
  if (parsed.kind !== 'manifest') {
    throw new LadingError('SIGNATURE', `${what} is an index, not a cosign signature manifest: refusing to touch it`, { tag });
  }
  const cfgBytes = await streamToBytes(await store.fetchBlob(parsed.manifest.config), MAX_CONFIG_BYTES, `config of ${what}`);
  let config: Record<string, unknown> | undefined;
  try {
    const doc: unknown = JSON.parse(Buffer.from(cfgBytes).toString('utf8'));
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) config = doc as Record<string, unknown>;
  } catch {
    config = undefined;
  }
  return { descriptor: parsed.descriptor, manifest: parsed.manifest, config };
}

/** Cosign's duplicate rule: the same payload already signed by the same key. */
function alreadySigned(manifest: ImageManifest, payloadDigest: Digest, payload: Uint8Array, publicKey: KeyObject): boolean {
  return manifest.layers.some((l) => {
    const sig = l.annotations?.[SIGNATURE_ANNOTATION];
    return l.digest === payloadDigest && sig !== undefined && verifyPayloadSignature(payload, sig, publicKey);
  });
}

async function pushSmallBlob(store: Store, mediaTypeOrDesc: string | Descriptor, bytes: Uint8Array): Promise<Descriptor> {
  const desc: Descriptor =
    typeof mediaTypeOrDesc === 'string' ? { mediaType: mediaTypeOrDesc, digest: digestOf(bytes), size: bytes.byteLength } : mediaTypeOrDesc;
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}
