/** Test helpers: component images built from file trees (any entry type, whiteouts), in any store. */
import { Readable } from 'node:stream';
import { writeLayer } from '../../src/fs/layer-writer.js';
import { type Entry, FileTree, makeEntry } from '../../src/fs/tree.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../../src/oci/types.js';
import type { Store } from '../../src/store/store.js';

export type LayerFiles = Record<string, string | Buffer | { symlink: string } | { hardlink: string } | { dir: true }>;

export function tree(files: LayerFiles): FileTree {
  const t = new FileTree();
  for (const [path, v] of Object.entries(files)) {
    let e: Entry;
    if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const data = typeof v === 'string' ? Buffer.from(v) : v;
      e = makeEntry(path, 'file', { mode: 0o755, size: data.length, content: { kind: 'bytes', data } });
    } else if ('symlink' in v) e = makeEntry(path, 'symlink', { linkTarget: v.symlink });
    else if ('hardlink' in v) e = makeEntry(path, 'hardlink', { linkTarget: v.hardlink });
    else e = makeEntry(path, 'directory');
    t.set(e);
  }
  return t;
}

async function pushJson(store: Store, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = canonicalJsonBytes(value);
  const desc = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
  if (!(await store.has(desc))) await store.pushBlob(desc, Readable.from([Buffer.from(bytes)]));
  return desc;
}

/** An image whose layers are `layers` (bottom first); gzip layers unless `compression` says otherwise. */
export async function image(
  store: Store,
  layers: LayerFiles[],
  options: { platform?: Platform; tags?: string[]; compression?: 'gzip' | 'none' | 'zstd' } = {},
): Promise<Descriptor> {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const written = [];
  for (const files of layers)
    written.push(await writeLayer(store, tree(files), { compression: options.compression ?? 'gzip', cacheDir: false }));
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: written.map((l) => l.diffId) },
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: await pushJson(store, MediaType.ociConfig, config),
    layers: written.map((l) => l.descriptor),
  };
  const bytes = canonicalJsonBytes(manifest);
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, options.tags?.length ? { tags: options.tags, root: true } : {});
  return { ...desc, platform };
}

export async function index(store: Store, manifests: Descriptor[], tags: string[]): Promise<Descriptor> {
  const idx: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const bytes = canonicalJsonBytes(idx);
  const desc: Descriptor = { mediaType: MediaType.ociIndex, digest: digestOf(bytes), size: bytes.byteLength };
  await store.pushManifest(desc, bytes, { tags, root: true });
  return desc;
}
