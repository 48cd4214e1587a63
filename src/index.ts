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
export { type MirrorOptions, type MirrorOutcome, type MirrorReport, type MirrorSource, mirror } from './copy/mirror.js';
export { type BoundImageFinder, type BoundImageRef, type ImageCheck, type ResolvedImage } from './copy/mirror-plan.js';
export { type MirrorSet, parseMirrorSet } from './copy/mirror-set.js';
export { BOUND_OF_ANNOTATION, type MirrorTarget, parseMirrorTarget, registryDestination } from './copy/mirror-names.js';
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

/** The shared file tree, the deterministic tar writer and reader, flattening, pinned compression. */
export { type Content, type Entry, type EntryType, FileTree, makeEntry } from './fs/tree.js';
export { type TarWriteOptions, writeTar } from './fs/tar-writer.js';
export { readTar, type TarHeader } from './fs/tar-reader.js';
export { type FlattenOptions, flattenImage, flattenLayers, resolveImageManifest } from './fs/flatten.js';
export { type Compression, compressor } from './fs/compress.js';
export { type LayerResult, type WriteLayerOptions, writeLayer } from './fs/layer-writer.js';
/** Reproducible builds from a declarative spec; build --check; image diff. */
export { type BuildOptions, type BuildReport, buildImage, planBuild } from './build/build.js';
export { type BuildSpec, parseSpec, readSpec } from './build/spec.js';
export { type CheckReport, checkBuild } from './build/check.js';
export { type DiffReport, diffImages, formatDiff } from './build/diff.js';
/** Release payloads: compose, read, extract, and pinning binaries to a release. */
export { type ComposeOptions, type ComposeResult, composeRelease } from './release/compose.js';
export { openRelease, readPayload, type ReleaseChanges, releaseChanges, type ReleaseInfo, releaseInfo } from './release/read.js';
export { extractCommand, extractManifests } from './release/extract.js';
export { type PinOptions, type PinResult, pinFile } from './release/pin.js';
export { type ShowResult, showPinned } from './release/pin-show.js';
export { MARKERS, type MarkerKind } from './release/markers.js';
/** Simple signing (OpenPGP), signature stores, policy, release signatures, ConfigMaps, cosign. */
export { buildPayload, parsePayload, type SimpleSigningPayload } from './sign/simple-signing.js';
export { createSimpleSignature, loadSigningKeyFile, parseSigningKey } from './sign/openpgp-sign.js';
export { type Keyring, loadKeyringFile, parseKeyring } from './sign/keyring.js';
export { checkSimpleSignatures, type SimpleVerifyResult, verifySimpleSignatures } from './sign/verify-image.js';
export { readSignatures, type SignatureStoreLocation, writeSignature } from './sign/signature-store.js';
export {
  copyLookasideSignatures,
  gatherLookasideSignatures,
  type GatheredSignatures,
  placeLookasideSignatures,
} from './sign/lookaside-copy.js';
export { enforcePolicy, loadPolicyFile, parsePolicy, type Policy } from './sign/policy.js';
export { releaseSignatures, type ReleaseSignatureResult } from './sign/release-signatures.js';
export { signatureConfigMap, writeSignatureConfigMap } from './sign/configmap.js';
export { cosignSign, cosignVerify, generateCosignKeyPair, loadCosignPrivateKey, loadCosignPublicKey } from './sign/cosign/index.js';
/** Bound images of bootable images: read, pin, pull all-or-nothing. */
export { type BoundImage, readBoundImages } from './boot/bound-images/bound-images.js';
export { boundImagesOf } from './boot/bound-images/bound-images-of.js';
export { pinBoundImages } from './boot/bound-images/pin.js';
export { pullBoundImages } from './boot/bound-images/pull.js';
/** fs-verity digests and composefs images. */
export { FsVerityHasher, fsverityDigest, type VerityAlgorithm } from './verity/fsverity.js';
export { parseDump, writeDump } from './composefs/dump.js';
export { composefsImage } from './composefs/erofs-writer.js';
export { mkfsFromDump } from './composefs/mkfs.js';
export { erofsOf, imageComposefs, verityOf } from './composefs/image-digest.js';
export { composefsTree, makeBootable, readImageTree } from './composefs/image-tree.js';
export { exportComposefs } from './composefs/object-store.js';
/** UKIs sealed to their image's bootable composefs digest. */
export { checkBoot } from './boot/check.js';
export { prepareSeal, writeSeal } from './boot/seal.js';
export { appendLayer } from './boot/append-layer.js';
export { composefsKargs } from './boot/uki/cmdline.js';
export { PeReader, readPeFile } from './boot/uki/pe.js';
