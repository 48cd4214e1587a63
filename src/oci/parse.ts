/**
 * The only place bytes become manifests, indexes, configs and layout files. Every parse checks the bytes
 * against the digest and size that named them, then the OCI schema (schema.ts), then the rules a schema
 * cannot express: digest algorithms Lading can verify, sizes that are safe integers, embedded `data` that
 * matches its descriptor, `artifactType` on empty-config manifests, `subject` pointing at a manifest.
 *
 * Docker v2 schema 2 manifests and lists are checked against the OCI manifest and index schemas: those
 * constrain `mediaType` only by the RFC 6838 pattern (no enum), so the Docker media types pass as they are.
 *
 * Index entries may carry any media type: image-spec says an unknown one "MUST be ignored", not refused.
 * They are kept in the parsed index; walkers act only on entries where isManifestMediaType() is true and
 * treat the rest as plain blobs.
 *
 * `what` names the object in messages and should say which and where: `manifest sha256:… in oci:/x`.
 */
import { type ErrorCode, isLadingError, LadingError } from '../errors.js';
import { digestOf, parseDigest, verifyBytes } from './digest.js';
import { isManifestMediaType, MediaType, manifestKind } from './media-types.js';
import { validateAgainstSchema } from './schema.js';
import { type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, MAX_MANIFEST_BYTES, type Manifest } from './types.js';

type InvalidCode = 'INVALID_MANIFEST' | 'INVALID_LAYOUT';

/**
 * Parses a manifest or index fetched by `descriptor`. The returned descriptor is `descriptor` with its
 * media type filled in from the JSON when the descriptor had none ('' counts as none).
 */
export function parseManifest(bytes: Uint8Array, descriptor: Descriptor, what: string): Manifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new LadingError(
      'MANIFEST_TOO_LARGE',
      `${what} is ${bytes.byteLength} bytes, over the 4 MiB (${MAX_MANIFEST_BYTES} bytes) limit for manifests`,
      { size: String(bytes.byteLength) },
    );
  }
  verify(bytes, descriptor, what);
  const doc = decodeObject(bytes, what, 'INVALID_MANIFEST');

  const declared = descriptor.mediaType === '' ? undefined : descriptor.mediaType;
  const embedded = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (declared !== undefined && embedded !== undefined && declared !== embedded) {
    throw new LadingError('INVALID_MANIFEST', `${what} is invalid: its mediaType is "${embedded}" but it was referenced as "${declared}"`);
  }
  const mediaType = declared ?? embedded;
  let kind: Manifest['kind'];
  try {
    kind = manifestKind(mediaType);
  } catch (e) {
    throw isLadingError(e) ? new LadingError(e.code, `${what}: ${e.message}`, e.context, { cause: e }) : e;
  }
  const resolved: Descriptor = mediaType === descriptor.mediaType ? descriptor : { ...descriptor, mediaType: mediaType ?? '' };

  validateAgainstSchema(kind, doc, what);
  const check = new Checker(what, 'INVALID_MANIFEST');
  check.schemaVersion(doc);
  if (kind === 'index') {
    const index = doc as unknown as ImageIndex;
    index.manifests.forEach((d, i) => {
      check.descriptor(d, `/manifests/${i}`);
    });
    if (index.subject !== undefined) check.subject(index.subject);
    return { kind, descriptor: resolved, bytes, index };
  }
  const manifest = doc as unknown as ImageManifest;
  check.descriptor(manifest.config, '/config');
  manifest.layers.forEach((d, i) => {
    check.descriptor(d, `/layers/${i}`);
  });
  if (manifest.subject !== undefined) check.subject(manifest.subject);
  if (manifest.config.mediaType === MediaType.ociEmpty && manifest.artifactType === undefined) {
    check.fail('/artifactType', `is required when config.mediaType is ${MediaType.ociEmpty}`);
  }
  return { kind, descriptor: resolved, bytes, manifest };
}

/**
 * Parses an image config (OCI or Docker media type; anything else is UNSUPPORTED_MEDIA_TYPE). `null`
 * members of `config` (Go writes nil slices and maps as null: Docker configs often hold `"Env": null`)
 * are dropped from the returned value; a Docker config is schema-checked without them, an OCI one with.
 * Callers bound the size of what they read; this does not.
 */
export function parseConfig(bytes: Uint8Array, descriptor: Descriptor, what: string): ImageConfig {
  if (descriptor.mediaType !== MediaType.ociConfig && descriptor.mediaType !== MediaType.dockerConfig) {
    throw new LadingError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${what} has media type "${descriptor.mediaType}", not an image config (${MediaType.ociConfig} or ${MediaType.dockerConfig})`,
    );
  }
  verify(bytes, descriptor, what);
  const doc = decodeObject(bytes, what, 'INVALID_MANIFEST');
  const inner = doc.config;
  const stripped =
    typeof inner === 'object' && inner !== null && !Array.isArray(inner)
      ? { ...doc, config: Object.fromEntries(Object.entries(inner).filter(([, v]) => v !== null)) }
      : doc;
  validateAgainstSchema('config', descriptor.mediaType === MediaType.dockerConfig ? stripped : doc, what);
  const config = stripped as unknown as ImageConfig;
  const check = new Checker(what, 'INVALID_MANIFEST');
  if (config.architecture === '') check.fail('/architecture', 'must not be empty');
  if (config.os === '') check.fail('/os', 'must not be empty');
  config.rootfs.diff_ids.forEach((d, i) => {
    check.digest(d, `/rootfs/diff_ids/${i}`);
  });
  return config;
}

/** Parses an `oci-layout` file; Lading reads image layout version 1.0.0 only. */
export function parseLayoutFile(bytes: Uint8Array, what: string): { imageLayoutVersion: '1.0.0' } {
  const doc = decodeObject(bytes, what, 'INVALID_LAYOUT');
  const version = doc.imageLayoutVersion;
  if (typeof version === 'string' && version !== '1.0.0') {
    throw new LadingError(
      'INVALID_LAYOUT',
      `${what} says imageLayoutVersion "${version}": Lading reads only OCI image layout version 1.0.0`,
      { version },
    );
  }
  validateAgainstSchema('layout', doc, what);
  return { imageLayoutVersion: '1.0.0' };
}

/**
 * Parses a layout's index.json: an OCI image index with no digest to check against. Problems are
 * INVALID_LAYOUT. A `mediaType`, when present, must be the OCI index type.
 */
export function parseIndexJson(bytes: Uint8Array, what: string): ImageIndex {
  const doc = decodeObject(bytes, what, 'INVALID_LAYOUT');
  validateAgainstSchema('index', doc, what, 'INVALID_LAYOUT');
  const check = new Checker(what, 'INVALID_LAYOUT');
  if (doc.mediaType !== undefined && doc.mediaType !== MediaType.ociIndex) {
    check.fail('/mediaType', `must be ${MediaType.ociIndex}`);
  }
  check.schemaVersion(doc);
  const index = doc as unknown as ImageIndex;
  index.manifests.forEach((d, i) => {
    check.descriptor(d, `/manifests/${i}`);
  });
  if (index.subject !== undefined) check.subject(index.subject);
  return index;
}

/** verifyBytes, with messages that start from `what` (which already names the digest). */
function verify(bytes: Uint8Array, descriptor: Descriptor, what: string): void {
  try {
    verifyBytes(bytes, descriptor, what);
  } catch (e) {
    if (isLadingError(e, 'DIGEST_MISMATCH')) {
      throw new LadingError(e.code, `${what} is corrupt: its content hashes to ${e.context.actual}`, e.context, { cause: e });
    }
    if (isLadingError(e, 'SIZE_MISMATCH')) {
      const { expected, actual } = e.context;
      throw new LadingError(e.code, `${what} has the wrong length: expected ${expected} bytes, got ${actual}`, e.context, {
        cause: e,
      });
    }
    throw e;
  }
}

/** Strict UTF-8 (no BOM, as Go's decoder) and JSON; the result must be a JSON object. */
function decodeObject(bytes: Uint8Array, what: string, code: InvalidCode): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch (e) {
    throw new LadingError(code, `${what} is not valid JSON: ${(e as Error).message}`, {}, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LadingError(code, `${what} is invalid: (top level) must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The checks after the schema, all reporting `<what> is invalid: <pointer> <complaint>`. */
class Checker {
  constructor(
    private readonly what: string,
    private readonly code: ErrorCode,
  ) {}

  fail(pointer: string, complaint: string, cause?: unknown): never {
    throw new LadingError(this.code, `${this.what} is invalid: ${pointer} ${complaint}`, { pointer }, { cause });
  }

  schemaVersion(doc: Record<string, unknown>): void {
    if (doc.schemaVersion !== 2) this.fail('/schemaVersion', 'must be 2');
  }

  digest(value: string, pointer: string): void {
    try {
      parseDigest(value);
    } catch (e) {
      if (!isLadingError(e)) throw e;
      this.fail(pointer, `is not a digest Lading can verify: ${e.message}`, e);
    }
  }

  descriptor(d: Descriptor, pointer: string): void {
    this.digest(d.digest, `${pointer}/digest`);
    if (!Number.isSafeInteger(d.size) || d.size < 0) {
      this.fail(`${pointer}/size`, 'must be a non-negative integer below 2^53');
    }
    if (d.data === undefined) return;
    if (!BASE64.test(d.data)) this.fail(`${pointer}/data`, 'must be padded standard base64');
    const decoded = Buffer.from(d.data, 'base64');
    if (decoded.byteLength !== d.size) {
      this.fail(`${pointer}/data`, `decodes to ${decoded.byteLength} bytes but size is ${d.size}`);
    }
    const actual = digestOf(decoded, parseDigest(d.digest).algorithm);
    if (actual !== d.digest) this.fail(`${pointer}/data`, `hashes to ${actual}, not ${d.digest}`);
  }

  subject(d: Descriptor): void {
    this.descriptor(d, '/subject');
    if (!isManifestMediaType(d.mediaType)) {
      this.fail('/subject/mediaType', `"${d.mediaType}" is not a manifest or index media type`);
    }
  }
}
