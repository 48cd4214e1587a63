/**
 * A layer blob as its uncompressed tar stream, whatever compression its media type names. The
 * compressed bytes come from `store.fetchBlob`, which checks them against the descriptor, so a reader
 * of the tar fails (at the end at the latest) when the blob is not what the manifest names.
 *
 * gzip is read with node:zlib (decompression is exact whatever the zlib version; only compressed bytes
 * vary), zstd with fzstd's streaming decoder (pure JS: Node 20 has no zstd).
 */
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { LadingError } from '../errors.js';
import { MediaType } from '../oci/media-types.js';
import type { Descriptor } from '../oci/types.js';
import { type FileHasher, openVerifiedFileAt, type VerifiedFile } from '../oci/verified-file.js';
import { isLocalBlobSource, type Store } from '../store/store.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

const BY_MEDIA_TYPE: Record<string, LayerCompression> = {
  [MediaType.ociLayer]: 'none',
  [MediaType.ociLayerGzip]: 'gzip',
  [MediaType.ociLayerZstd]: 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  [MediaType.dockerLayerGzip]: 'gzip',
  [MediaType.dockerForeignLayerGzip]: 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
};

/** The compression a layer media type names; UNSUPPORTED_MEDIA_TYPE for anything that is not a layer. */
export function layerCompression(mediaType: string): LayerCompression {
  const kind = BY_MEDIA_TYPE[mediaType];
  if (kind === undefined) {
    throw new LadingError(
      'UNSUPPORTED_MEDIA_TYPE',
      `"${mediaType}" is not a layer media type Lading can read: expected an OCI or Docker tar layer (uncompressed, gzip or zstd)`,
      { mediaType },
    );
  }
  return kind;
}

/** Whether `mediaType` is a layer stored as a plain tar (what can be read in place). Never throws. */
export function isUncompressedLayer(mediaType: string): boolean {
  return BY_MEDIA_TYPE[mediaType] === 'none';
}

/** The layer's uncompressed tar stream; it errors instead of ending if the blob does not match `desc`. */
export async function openLayerStream(store: Store, desc: Descriptor): Promise<Readable> {
  const kind = layerCompression(desc.mediaType);
  const blob = await store.fetchBlob(desc);
  return decompressStream(blob, kind);
}

/**
 * A layer to read: its tar stream, or, for an uncompressed layer the store keeps as a local file, the
 * file itself, so a reader can take headers in place and skip content it does not want (a worker
 * checks the file's digest meanwhile; the reader's drain waits for that check).
 */
export type LayerInput = { stream: Readable } | { file: VerifiedFile };

export async function openLayerInput(store: Store, desc: Descriptor, hasher?: FileHasher): Promise<LayerInput> {
  if (layerCompression(desc.mediaType) === 'none' && isLocalBlobSource(store)) {
    const path = await store.localBlobPath(desc);
    const file = path === undefined ? undefined : await openVerifiedFileAt(path, desc, `blob in ${store.name}:`, hasher);
    if (file !== undefined) return { file };
  }
  return { stream: await openLayerStream(store, desc) };
}

/** `source` decompressed; errors in either direction are carried through (pipeline). */
export function decompressStream(source: Readable, kind: LayerCompression): Readable {
  if (kind === 'none') return source;
  const decoder = kind === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : new ZstdDecoder();
  return pipeline(source, decoder, () => undefined);
}

/** A decoder's error (zlib's "unexpected end of file") as a LadingError naming the layer; others pass. */
export function layerReadError(err: unknown, what: string): unknown {
  if (err instanceof LadingError || !(err instanceof Error)) return err;
  return new LadingError('INVALID_ARCHIVE', `${what} cannot be read: ${err.message}`, {}, { cause: err });
}

/** fzstd's push decoder as a Transform; concatenated frames (parallel zstd output) are read in turn. */
class ZstdDecoder extends Transform {
  private readonly decoder: Decompress;
  private sawData = false;

  constructor() {
    super();
    this.decoder = new Decompress((data) => {
      if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      if (chunk.length > 0) this.sawData = true;
      this.decoder.push(chunk, false);
      done();
    } catch (e) {
      done(new LadingError('INVALID_ARCHIVE', `invalid zstd data: ${(e as Error).message}`));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (!this.sawData) throw new Error('no data');
      this.decoder.push(new Uint8Array(0), true);
      done();
    } catch (e) {
      done(new LadingError('INVALID_ARCHIVE', `invalid zstd data: the stream is truncated or corrupt (${(e as Error).message})`));
    }
  }
}
