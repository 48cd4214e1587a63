/**
 * Media types Lading understands. Docker v2 schema 2 manifests and lists are read and copied as they are
 * (never converted: conversion changes the digest a signature covers); Docker schema 1 is refused.
 */
import { LadingError } from '../errors.js';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The empty descriptor of image-spec v1.1: the two-byte blob `{}`. */
export const EMPTY_DESCRIPTOR = {
  mediaType: MediaType.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const;

export type ManifestKind = 'index' | 'manifest';

const KINDS: Record<string, ManifestKind> = {
  [MediaType.ociIndex]: 'index',
  [MediaType.dockerManifestList]: 'index',
  [MediaType.ociManifest]: 'manifest',
  [MediaType.dockerManifest]: 'manifest',
};

/** True for media types naming a manifest or an index (the things a tag can point at). */
export function isManifestMediaType(mediaType: string): boolean {
  return mediaType in KINDS;
}

export function isIndexMediaType(mediaType: string): boolean {
  return KINDS[mediaType] === 'index';
}

/** Classifies a manifest media type, refusing schema 1 and anything unknown with a message that says why. */
export function manifestKind(mediaType: string | undefined): ManifestKind {
  if (mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed) {
    throw new LadingError(
      'UNSUPPORTED_MEDIA_TYPE',
      'Docker schema 1 manifests are not supported (deprecated since 2017): rebuild or re-push the image with a v2 schema 2 or OCI manifest',
    );
  }
  const kind = mediaType === undefined ? undefined : KINDS[mediaType];
  if (kind === undefined) {
    throw new LadingError(
      'UNSUPPORTED_MEDIA_TYPE',
      `unsupported manifest media type "${mediaType ?? '(none)'}": expected an OCI or Docker v2 manifest or index`,
    );
  }
  return kind;
}
