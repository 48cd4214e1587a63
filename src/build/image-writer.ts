/**
 * Writes small images from files held in memory: the quickstart's demo image, test fixtures. Layers are
 * uncompressed tars with fixed metadata (mtime 0, root-owned), configs and manifests canonical JSON, so
 * the same files always give the same digests. (Declarative, compressed, reproducible builds of real
 * images are `src/build`'s next job; this is the small core they will grow from.)
 */
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';

export interface LayerSpec {
  /** Path inside the image (no leading slash) to file content. Parent directories are added. */
  files: Record<string, string | Uint8Array>;
}

export interface ImageSpec {
  layers: LayerSpec[];
  platform?: Platform;
  config?: ImageConfig['config'];
  annotations?: Record<string, string>;
}

/** A deterministic uncompressed tar of `files`, directories first in lexical order. */
export async function layerTar(files: LayerSpec['files']): Promise<Buffer> {
  const pack = tarStream.pack();
  const dirs = new Set<string>();
  for (const path of Object.keys(files)) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
  }
  const entries = [...[...dirs].map((d) => [d, undefined] as const), ...Object.entries(files)].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, content] of entries) {
    const common = { name, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
    if (content === undefined) pack.entry({ ...common, type: 'directory', mode: 0o755 });
    else pack.entry({ ...common, type: 'file', mode: 0o644 }, typeof content === 'string' ? Buffer.from(content) : content);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

async function pushBytes(store: Store, mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}

/** Writes an image into `store` (blobs, then the manifest) and returns its manifest descriptor. */
export async function writeImage(store: Store, spec: ImageSpec, tags: readonly string[] = []): Promise<Descriptor> {
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: Descriptor[] = [];
  const diffIds: Descriptor['digest'][] = [];
  for (const layer of spec.layers) {
    const tar = await layerTar(layer.files);
    layers.push(await pushBytes(store, MediaType.ociLayer, tar));
    diffIds.push(digestOf(tar));
  }
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined && { variant: platform.variant }),
    config: spec.config ?? {},
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const configDesc = await pushBytes(store, MediaType.ociConfig, canonicalJsonBytes(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers,
    ...(spec.annotations && { annotations: spec.annotations }),
  };
  const bytes = canonicalJsonBytes(manifest);
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, tags.length ? { tags, root: true } : {});
  return { ...desc, platform };
}

/** Writes an index over manifests already in `store` (each descriptor carrying its platform). */
export async function writeIndex(store: Store, manifests: Descriptor[], tags: readonly string[] = []): Promise<Descriptor> {
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const bytes = canonicalJsonBytes(index);
  const desc: Descriptor = { mediaType: MediaType.ociIndex, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, { tags, root: true });
  return desc;
}
