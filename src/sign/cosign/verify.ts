/**
 * Verifying cosign key signatures the way containers/image's `sigstoreSigned` requirement does (cosign
 * itself checks less: it ignores the identity and accepts loose JSON). Signatures are read from the
 * image's `sha256-<hex>.sig` tag and, where the store can list them, from OCI 1.1 referrers whose
 * artifactType is cosign's. Each layer is one signature: its ECDSA signature over the payload must verify
 * with the public key, the payload must pass the strict payload rules (payload.ts), it must name this
 * image's digest, and, when an identity is asked for, the same repository. One signature that passes is
 * enough (as in containers/image); when none does, the error says why each one failed.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { LadingError } from '../../errors.js';
import { type Digest, digestOf, parseDigest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/parse.js';
import { parseImageReference, repositoryOf } from '../../oci/reference.js';
import type { Descriptor } from '../../oci/types.js';
import { streamToBytes } from '../../store/stream-bytes.js';
import type { ReferrerSource, Store } from '../../store/store.js';
import { decodeBase64Strict, requireP256 } from './key-file.js';
import { type CosignPayloadClaims, parseCosignPayload } from './payload.js';
import {
  COSIGN_SIG_ARTIFACT_TYPE,
  MAX_SIGNATURE_LAYERS,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  signatureTag,
} from './signature-manifest.js';

/** containers/image's limit for one signature (iolimits.MaxSignatureBodySize). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
/** Referrer manifests examined per image, at most. */
const MAX_REFERRERS = 1000;
/** How many failure reasons an error message lists before summarizing. */
const REASONS_SHOWN = 6;

export interface CosignVerifyOptions {
  store: Store;
  /** The manifest or index whose signatures are checked. */
  image: Descriptor;
  /**
   * When given, each signature's `docker-reference` must name the same repository as this reference
   * (containers/image's `matchRepository`: tags and digests are ignored, Docker Hub names normalized).
   * Stricter identity rules are the caller's, on the returned `identity`.
   */
  identity?: string;
  /** An ECDSA P-256 public key (loadCosignPublicKey); a private key is reduced to its public half. */
  publicKey: KeyObject;
}

export interface VerifiedCosignSignature {
  /** The signed `critical.identity.docker-reference`. */
  identity: string;
  /** The payload JSON, as signed. */
  payload: unknown;
  claims: CosignPayloadClaims;
  /** Where the signature was found. */
  source: 'tag' | 'referrer';
  /** The manifest holding it and its layer (the payload blob). */
  manifest: Digest;
  layer: Digest;
  /** The base64 signature from the layer annotation. */
  signature: string;
}

/** True when `base64Signature` is a valid ECDSA-SHA256 DER signature of `payload` by `publicKey`. */
export function verifyPayloadSignature(payload: Uint8Array, base64Signature: string, publicKey: KeyObject): boolean {
  const sig = decodeBase64Strict(base64Signature);
  if (sig === undefined) return false;
  try {
    return verify('sha256', payload, publicKey, sig);
  } catch {
    return false; // malformed DER
  }
}

export async function cosignVerify(options: CosignVerifyOptions): Promise<VerifiedCosignSignature[]> {
  const { store, image } = options;
  const publicKey = options.publicKey.type === 'private' ? createPublicKey(options.publicKey) : options.publicKey;
  requireP256(publicKey, 'verification key');
  const wantRepository = options.identity === undefined ? undefined : repositoryOf(parseImageReference(options.identity));
  const tag = signatureTag(image.digest);
  const imageName = `${store.name}@${image.digest}`;
  const reasons: string[] = [];
  /** No referrers: worth saying only when there is no signature anywhere. */
  const absent: string[] = [];

  const sources: { source: 'tag' | 'referrer'; desc: Descriptor; label: string }[] = [];
  try {
    sources.push({ source: 'tag', desc: await store.resolve(tag), label: tag });
  } catch (e) {
    if (!(e instanceof LadingError && e.code === 'NOT_FOUND')) throw e;
    reasons.push(`there is no ${tag} tag`);
  }
  if (hasReferrers(store)) {
    try {
      const found = (await store.referrers(image)).filter((r) => r.artifactType === COSIGN_SIG_ARTIFACT_TYPE);
      for (const desc of found.slice(0, MAX_REFERRERS)) sources.push({ source: 'referrer', desc, label: `referrer ${desc.digest}` });
      if (found.length === 0) absent.push('no cosign signature referrers');
    } catch (e) {
      reasons.push(`listing referrers failed: ${(e as Error).message}`);
    }
  }

  let imageBytes: Promise<Uint8Array> | undefined;
  const matchesImage = async (signed: Digest): Promise<boolean> => {
    if (signed === image.digest) return true;
    const { algorithm } = parseDigest(signed);
    if (algorithm === parseDigest(image.digest).algorithm) return false;
    // The same manifest named with another algorithm, which containers/image also accepts.
    imageBytes ??= store.fetchManifest(image);
    return digestOf(await imageBytes, algorithm) === signed;
  };

  const verified: VerifiedCosignSignature[] = [];
  const seen = new Set<string>();
  for (const { source, desc, label } of sources) {
    let layers: Descriptor[];
    try {
      const parsed = parseManifest(await store.fetchManifest(desc), desc, `${label} in ${store.name}`);
      if (parsed.kind !== 'manifest') throw new LadingError('SIGNATURE', 'it is an index, not a signature manifest');
      layers = parsed.manifest.layers;
    } catch (e) {
      reasons.push(`${label}: ${(e as Error).message}`);
      continue;
    }
    if (layers.length === 0) reasons.push(`${label} holds no signatures`);
    for (const [i, layer] of layers.slice(0, MAX_SIGNATURE_LAYERS).entries()) {
      const where = layers.length === 1 ? label : `${label} layer ${i + 1}`;
      try {
        const found = await checkLayer(store, layer, publicKey);
        if (!(await matchesImage(found.claims.digest))) {
          throw new LadingError('SIGNATURE', `the payload signs ${found.claims.digest}, not this image`);
        }
        if (wantRepository !== undefined && repositoryOf(parseImageReference(found.claims.dockerReference)) !== wantRepository) {
          throw new LadingError('SIGNATURE', `the payload names ${found.claims.dockerReference}, not repository ${wantRepository}`);
        }
        const key = `${layer.digest}\0${found.signature}`;
        if (seen.has(key)) continue;
        seen.add(key);
        verified.push({ ...found, identity: found.claims.dockerReference, source, manifest: desc.digest, layer: layer.digest });
      } catch (e) {
        reasons.push(`${where}: ${(e as Error).message}`);
      }
    }
  }
  if (verified.length > 0) return verified;
  if (sources.length === 0) reasons.push(...absent);
  const shown = reasons.slice(0, REASONS_SHOWN).join('; ');
  const more = reasons.length > REASONS_SHOWN ? `; and ${reasons.length - REASONS_SHOWN} more` : '';
  throw new LadingError('SIGNATURE', `no valid cosign signature for ${imageName}: ${shown}${more}`, { image: imageName, tag });
}

/** One signature layer: its signature over the payload, then the payload rules. */
async function checkLayer(
  store: Store,
  layer: Descriptor,
  publicKey: KeyObject,
): Promise<{ claims: CosignPayloadClaims; payload: unknown; signature: string }> {
  if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
    throw new LadingError('SIGNATURE', `its media type is ${layer.mediaType}, not ${SIMPLE_SIGNING_MEDIA_TYPE}`);
  }
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
  if (signature === undefined) throw new LadingError('SIGNATURE', `it has no ${SIGNATURE_ANNOTATION} annotation`);
  if (decodeBase64Strict(signature) === undefined) throw new LadingError('SIGNATURE', 'its signature annotation is not valid base64');
  if (layer.size > MAX_PAYLOAD_BYTES) {
    throw new LadingError('SIGNATURE', `its payload is ${layer.size} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  }
  const payload = await streamToBytes(await store.fetchBlob(layer), MAX_PAYLOAD_BYTES, `payload ${layer.digest}`);
  if (!verifyPayloadSignature(payload, signature, publicKey)) {
    throw new LadingError('SIGNATURE', 'the signature does not verify with the given public key');
  }
  const claims = parseCosignPayload(payload);
  return { claims, payload: JSON.parse(Buffer.from(payload).toString('utf8')) as unknown, signature };
}

function hasReferrers(s: Store): s is Store & ReferrerSource {
  return typeof (s as Partial<ReferrerSource>).referrers === 'function';
}
