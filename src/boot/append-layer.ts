/**
 * One new layer on top of an image manifest, written into a store: the base layers copied (linked
 * between local layouts), the layer written from a FileTree by the deterministic layer writer, the
 * config with the layer's diff_id (and a history entry when the config keeps history) and the manifest,
 * both canonical JSON with nothing time-dependent added. Pinning bound images and sealing a UKI both
 * add their files this way, so the same inputs always give the same image digest.
 */
import { Readable } from 'node:stream';
import { type BlobAction, type TransferContext, transferBlob } from '../copy/blob-transfer.js';
import type { Compression } from '../fs/compress.js';
import { writeLayer } from '../fs/layer-writer.js';
import type { FileTree } from '../fs/tree.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { Descriptor, ImageManifest } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { streamToBytes } from '../store/stream-bytes.js';

export interface AppendLayerOptions {
  /** The new layer's compression (default gzip; a Docker manifest always gets gzip). */
  compression?: Compression;
  /** Appended to the config's history, when the config has a history. */
  history?: { created_by: string; comment?: string };
  /** Annotations for the new manifest and its config descriptor, given the new config's bytes. */
  annotate?: (config: Uint8Array) => { manifest?: Record<string, string>; config?: Record<string, string> };
}

export interface AppendedImage {
  /** The new manifest (not yet pushed: the caller pushes it with its tags). */
  descriptor: Descriptor;
  bytes: Uint8Array;
  layer: Descriptor;
  config: Descriptor;
}

/** Writes `layerTree` as a layer on top of `manifest` (read from `src` as `manifestBytes`) into `dst`. */
export async function appendLayer(
  src: Store,
  dst: Store,
  desc: Descriptor,
  manifest: ImageManifest,
  manifestBytes: Uint8Array,
  layerTree: FileTree,
  options: AppendLayerOptions = {},
): Promise<AppendedImage> {
  const docker = desc.mediaType === MediaType.dockerManifest;
  const layer = await writeLayer(dst, layerTree, { compression: docker ? 'gzip' : (options.compression ?? 'gzip'), cacheDir: false });
  const layerDesc: Descriptor = { ...layer.descriptor, mediaType: docker ? MediaType.dockerLayerGzip : layer.descriptor.mediaType };

  const ctx: TransferContext = { link: true, signal: new AbortController().signal, emit: () => undefined, mountSources: () => [] };
  const moved: Promise<BlobAction>[] = manifest.layers.map((l) => transferBlob(src, dst, l, ctx));
  await Promise.all(moved);

  const configBytes = await streamToBytes(await src.fetchBlob(manifest.config), 4 * 1024 * 1024, `config ${manifest.config.digest}`);
  const config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as Record<string, unknown> & {
    rootfs: { diff_ids: string[] };
    history?: unknown[];
  };
  config.rootfs = { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids, layer.diffId] };
  if (Array.isArray(config.history) && options.history !== undefined) config.history = [...config.history, options.history];
  const newConfig = canonicalJsonBytes(config);
  const configDesc: Descriptor = { mediaType: manifest.config.mediaType, digest: digestOf(newConfig), size: newConfig.byteLength };
  if (!(await dst.has(configDesc))) await dst.pushBlob(configDesc, Readable.from([Buffer.from(newConfig)]));

  const notes = options.annotate?.(newConfig) ?? {};
  const doc = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as Record<string, unknown> & {
    layers: Descriptor[];
    config: Descriptor;
    annotations?: Record<string, string>;
  };
  const configNotes = notes.config === undefined ? doc.config.annotations : { ...(doc.config.annotations ?? {}), ...notes.config };
  const out: Record<string, unknown> = {
    ...doc,
    config: { ...doc.config, ...configDesc, ...(configNotes !== undefined && { annotations: configNotes }) },
    layers: [...doc.layers, layerDesc],
  };
  if (notes.manifest !== undefined) out.annotations = { ...(doc.annotations ?? {}), ...notes.manifest };
  const bytes = canonicalJsonBytes(out);
  return {
    descriptor: { mediaType: desc.mediaType, digest: digestOf(bytes), size: bytes.byteLength },
    bytes,
    layer: layerDesc,
    config: configDesc,
  };
}
