/**
 * The OCI shapes cosign stores signatures in (sigstore/cosign `specs/SIGNATURE_SPEC.md`, `pkg/oci`):
 *
 * - the legacy tag scheme: `<alg>-<hex>.sig` names an image manifest with one layer per signature, the
 *   payload as the layer blob (`application/vnd.dev.cosign.simplesigning.v1+json`) and the base64 ECDSA
 *   signature in the layer annotation `dev.cosignproject.cosign/signature`. Cosign builds it with
 *   go-containerregistry's `mutate.Append` on an empty image, so its config is a ggcr ConfigFile that
 *   gains, per signature, the payload digest in `rootfs.diff_ids` and a `{"created":"0001-01-01T00:00:00Z"}`
 *   history entry; `created` stays the zero time unless the signer records a creation time. The config is
 *   written here in ggcr's field order so a tag Lading appended to looks like one cosign appended to.
 * - the OCI 1.1 referrer (`cosign sign --registry-referrers-mode=oci-1-1`): the same manifest for the one
 *   new signature, with `artifactType` and `config.mediaType` set to
 *   `application/vnd.dev.cosign.artifact.sig.v1+json` and a `subject` naming the image.
 *
 * Manifests themselves are Lading's canonical JSON (their digest is all anyone checks).
 */
import { LadingError } from '../../errors.js';
import { canonicalJson, canonicalJsonBytes } from '../../oci/canonical-json.js';
import { type Digest, digestOf, parseDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Descriptor, ImageManifest } from '../../oci/types.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIG_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
/** Cosign refuses to grow a signature manifest past this many layers (`pkg/oci/mutate`). */
export const MAX_SIGNATURE_LAYERS = 1000;
/** Go's zero time.Time, which ggcr writes for an unset `created`. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** `sha256-<hex>.sig`: the tag cosign stores an image's signatures under. */
export function signatureTag(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  if (algorithm !== 'sha256') {
    // `sha512-<128 hex>.sig` is 139 characters, over the 128 a tag may have.
    throw new LadingError('USAGE', `cosign signature tags exist for sha256 digests only, not ${digest.slice(0, 20)}…`);
  }
  return `${algorithm}-${encoded}.sig`;
}

/** The signature layer's descriptor: the payload blob with its signature as an annotation. */
export function signatureLayer(payload: Uint8Array, base64Signature: string): Descriptor {
  return {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: digestOf(payload),
    size: payload.byteLength,
    annotations: { [SIGNATURE_ANNOTATION]: base64Signature },
  };
}

/**
 * The config after appending layers whose diff IDs are `added`, as ggcr's mutate.Append computes it from
 * `base` (the existing config, or undefined for an empty image). Fields ggcr's ConfigFile does not know
 * are dropped, as ggcr drops them.
 */
export function signatureConfig(base: Record<string, unknown> | undefined, added: readonly Digest[]): Uint8Array {
  const b = base ?? {};
  const rootfs = isObject(b.rootfs) ? b.rootfs : {};
  const diffIds = [...stringsOf(rootfs.diff_ids), ...added];
  const history = [...(Array.isArray(b.history) ? b.history.filter(isObject) : []), ...added.map(() => ({}))];
  const parts: string[] = [`"architecture":${str(b.architecture)}`];
  optionalString(parts, 'author', b.author);
  optionalString(parts, 'container', b.container);
  parts.push(`"created":${str(typeof b.created === 'string' ? b.created : GO_ZERO_TIME)}`);
  optionalString(parts, 'docker_version', b.docker_version);
  parts.push(`"history":[${history.map(historyEntry).join(',')}]`);
  parts.push(`"os":${str(b.os)}`);
  parts.push(
    `"rootfs":{"type":${str(typeof rootfs.type === 'string' ? rootfs.type : 'layers')},"diff_ids":[${diffIds.map(str).join(',')}]}`,
  );
  parts.push(`"config":${isObject(b.config) ? canonicalJson(b.config) : '{}'}`);
  optionalString(parts, 'os.version', b['os.version']);
  optionalString(parts, 'variant', b.variant);
  const features = stringsOf(b['os.features']);
  if (features.length > 0) parts.push(`"os.features":[${features.map(str).join(',')}]`);
  return new TextEncoder().encode(`{${parts.join(',')}}`);
}

/** ggcr's History struct: author, created (always: Go does not omit a struct), created_by, comment, empty_layer. */
function historyEntry(h: Record<string, unknown>): string {
  const parts: string[] = [];
  optionalString(parts, 'author', h.author);
  parts.push(`"created":${str(typeof h.created === 'string' ? h.created : GO_ZERO_TIME)}`);
  optionalString(parts, 'created_by', h.created_by);
  optionalString(parts, 'comment', h.comment);
  if (h.empty_layer === true) parts.push('"empty_layer":true');
  return `{${parts.join(',')}}`;
}

/**
 * The `.sig` manifest with `layer` appended to `existing` (whose other members are kept), or a new one.
 */
export function appendedSignatureManifest(existing: ImageManifest | undefined, config: Descriptor, layer: Descriptor): Uint8Array {
  const manifest: ImageManifest = existing
    ? { ...existing, config: { ...existing.config, digest: config.digest, size: config.size }, layers: [...existing.layers, layer] }
    : { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] };
  return canonicalJsonBytes(manifest);
}

/** The OCI 1.1 referrer form of one signature. */
export function referrerSignatureManifest(subject: Descriptor, config: Descriptor, layer: Descriptor): Uint8Array {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: COSIGN_SIG_ARTIFACT_TYPE,
    config: { ...config, mediaType: COSIGN_SIG_ARTIFACT_TYPE },
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  return canonicalJsonBytes(manifest);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringsOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** A JSON string escaped as Go escapes it (non-strings become ""). */
function str(v: unknown): string {
  return canonicalJson(typeof v === 'string' ? v : '');
}

function optionalString(parts: string[], key: string, v: unknown): void {
  if (typeof v === 'string' && v !== '') parts.push(`${JSON.stringify(key)}:${str(v)}`);
}
