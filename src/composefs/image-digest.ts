/**
 * The composefs digest of an image: the fs-verity digest of the EROFS image of its composefs tree
 * (image-tree.ts), computed with the repository's algorithm (bootc: SHA-512) and format version
 * (composefs-rs's default V1; V0 is C mkcomposefs's default and is raised to 1 when the tree holds a
 * whiteout, as both implementations do).
 */
import type { FileTree } from '../fs/tree.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { FsVerityHasher, type VerityAlgorithm } from '../verity/fsverity.js';
import { composefsImage, minimumFormatVersion } from './erofs-writer.js';
import { type ContentSink, composefsTree, type ImageTree, readImageTree, type Tap } from './image-tree.js';

/** 0 and 1: C mkcomposefs's formats (composefs-rs V0, V1); 2: composefs-rs's legacy V2 (erofs-v2.ts). */
export type FormatVersion = 0 | 1 | 2;

export interface ComposefsOptions {
  algorithm: VerityAlgorithm;
  formatVersion: FormatVersion;
  bootable: boolean;
  platform?: Platform;
  sink?: ContentSink;
  tap?: Tap;
}

export interface ErofsImage {
  /** The format version written (a V0 request becomes 1 when the tree holds a whiteout). */
  formatVersion: FormatVersion;
  bytes: Buffer;
  /** fs-verity digest (hex) of `bytes`. */
  digest: string;
}

export interface ImageComposefs extends ImageTree, ErofsImage {
  algorithm: VerityAlgorithm;
  bootable: boolean;
}

/** The fs-verity digest (hex) of bytes held in memory. */
export function verityOf(bytes: Uint8Array, algorithm: VerityAlgorithm): string {
  const hasher = new FsVerityHasher(algorithm);
  hasher.update(bytes);
  return hasher.digest().toString('hex');
}

/** The EROFS image of a composefs tree and its digest. */
export function erofsOf(tree: FileTree, formatVersion: FormatVersion, algorithm: VerityAlgorithm): ErofsImage {
  const version: FormatVersion = formatVersion === 0 ? minimumFormatVersion(tree) : formatVersion;
  const bytes = composefsImage(tree, { formatVersion: version });
  return { formatVersion: version, bytes, digest: verityOf(bytes, algorithm) };
}

/** Reads the image `desc` names and builds its composefs tree, EROFS image and digest. */
export async function imageComposefs(store: Store, desc: Descriptor, options: ComposefsOptions): Promise<ImageComposefs> {
  const image = await readImageTree(store, desc, {
    algorithm: options.algorithm,
    ...(options.platform !== undefined && { platform: options.platform }),
    ...(options.sink !== undefined && { sink: options.sink }),
    ...(options.tap !== undefined && { tap: options.tap }),
  });
  composefsTree(image, { bootable: options.bootable });
  return {
    ...image,
    ...erofsOf(image.tree, options.formatVersion, options.algorithm),
    algorithm: options.algorithm,
    bootable: options.bootable,
  };
}
