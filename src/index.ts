/**
 * Lading as a library. Every CLI command is a typed function here, taking an options object and
 * returning data; the CLI only parses arguments, calls these, and prints.
 */

/** Writing small images from in-memory files. */
export { type ImageSpec, type LayerSpec, layerTar, writeImage, writeIndex } from './build/image-writer.js';
/** Registries: the distribution client behind the Store interface, credentials, retries. */
export { RegistryClient, type RegistryClientOptions } from './store/registry/client.js';
export { RegistryStore } from './store/registry/registry-store.js';
export { type Credential, type CredentialOptions, credentialSource, lookupCredential } from './store/registry/credentials.js';
export { DEFAULT_RETRY, type RetryPolicy } from './store/registry/retry.js';

/** Copying images between stores, and mirroring many. */
export { type CopyOptions, copyImage } from './copy/copy-image.js';
export { type CopyResult, CopySession, type ImageCopyOptions, type SessionOptions } from './copy/copy-session.js';
export { type MirrorOptions, type MirrorReport, type MirrorSource, mirror } from './copy/mirror.js';
export { type MirrorSet, parseMirrorSet } from './copy/mirror-set.js';
export { type MirrorTarget, parseMirrorTarget, registryDestination } from './copy/mirror-names.js';
export { imageDigestMirrorSet, mappingList } from './copy/mirror-outputs.js';
export type { ProgressEvent, ProgressListener } from './copy/progress.js';
/** Errors: a stable code, a one-line message a person can act on, and context. */
export { type ErrorCode, isLadingError, LadingError } from './errors.js';
/** The canonical JSON writer for everything Lading creates. */
export { canonicalJson, canonicalJsonBytes } from './oci/canonical-json.js';
/** Digests and the one streaming verifier every byte passes through. */
export {
  asDigest,
  type Digest,
  type DigestAlgorithm,
  DigestVerifier,
  digestOf,
  digestStream,
  isDigest,
  parseDigest,
  verifiedStream,
  verifyBytes,
} from './oci/digest.js';
/** Media types, the OCI data model, and the validated parsers that turn bytes into it. */
export { EMPTY_DESCRIPTOR, isIndexMediaType, isManifestMediaType, MediaType, manifestKind } from './oci/media-types.js';
export { parseConfig, parseIndexJson, parseLayoutFile, parseManifest } from './oci/parse.js';
export { formatPlatform, hostPlatform, parsePlatform, platformMatches } from './oci/platform.js';
/** Docker image references, normalized as the docker CLI and containers/image do. */
export {
  familiarString,
  formatReference,
  type ImageReference,
  parseImageReference,
  repositoryOf,
  withDefaultTag,
} from './oci/reference.js';
export { validateAgainstSchema } from './oci/schema.js';
export type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform } from './oci/types.js';
export { Annotation, MAX_MANIFEST_BYTES } from './oci/types.js';
export { ArchiveReader, ArchiveWriter } from './store/archive/archive-store.js';
export { type ImageSummary, inspectImage, readConfig } from './store/inspect.js';
export { type FsckReport, fsckLayout } from './store/layout/fsck.js';
export { type GcReport, gcLayout } from './store/layout/gc.js';
export { LayoutStore } from './store/layout/layout-store.js';
/** The Store interface and its implementations. */
export type { Store } from './store/store.js';
export { formatTransportRef, openStore, parseTransportRef, refWithinStore, type TransportRef } from './store/transport.js';
