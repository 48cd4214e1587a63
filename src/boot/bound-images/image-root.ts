/**
 * An image's root filesystem as a RootView, straight from its layers (flattened in memory, nothing
 * extracted to disk). Only unit files (`*.image`, `*.container`, up to 1 MiB) keep their bytes while
 * the layers stream past, so a multi-gigabyte OS image costs its metadata; any other file a declaration
 * needs (an `AuthFile=`) is read back from its layer when asked for.
 */
import { LadingError } from '../../errors.js';
import { flattenLayers, resolveImageManifest } from '../../fs/flatten.js';
import { openLayerStream } from '../../fs/layer-stream.js';
import type { Entry, FileTree } from '../../fs/tree.js';
import type { Descriptor, ImageManifest, Platform } from '../../oci/types.js';
import type { Store } from '../../store/store.js';
import { TreeRootView } from './root-view.js';
import { MAX_UNIT_FILE_BYTES } from './unit-file.js';

export interface ImageRoot {
  /** The image manifest (for an index: the one chosen for the platform). */
  descriptor: Descriptor;
  manifest: ImageManifest;
  tree: FileTree;
  view: TreeRootView;
}

/** Flattens the image `desc` names (an index: its image for `platform`, default this machine's). */
export async function openImageRoot(store: Store, desc: Descriptor, platform?: Platform): Promise<ImageRoot> {
  const { descriptor, manifest } = await resolveImageManifest(store, desc, platform);
  return imageRoot(store, descriptor, manifest);
}

/** Flattens an image manifest already read. */
export async function imageRoot(store: Store, descriptor: Descriptor, manifest: ImageManifest): Promise<ImageRoot> {
  const tree = await flattenLayers(store, manifest.layers, {
    onFile: async (header, content) => {
      if (header.size > MAX_UNIT_FILE_BYTES || !isUnitFile(header.path)) return;
      return { content: { kind: 'bytes', data: await readAll(content(), header.size) } };
    },
  });
  const layers = new Map(manifest.layers.map((l) => [l.digest as string, l]));
  const load = async (entry: Entry): Promise<Uint8Array | undefined> => {
    if (entry.content?.kind !== 'layer') return undefined;
    const layer = layers.get(entry.content.layer);
    return layer === undefined ? undefined : readLayerRange(store, layer, entry.content.offset, entry.size);
  };
  return { descriptor, manifest, tree, view: new TreeRootView(tree, `image ${descriptor.digest} in ${store.name}`, load) };
}

function isUnitFile(path: string): boolean {
  return path.endsWith('.image') || path.endsWith('.container');
}

async function readAll(content: AsyncIterable<unknown>, size: number): Promise<Uint8Array> {
  const out = Buffer.alloc(size);
  let pos = 0;
  for await (const chunk of content) {
    const b = chunk as Buffer;
    if (pos + b.length > size) throw new LadingError('INVALID_ARCHIVE', `a file's content is longer than its ${size}-byte header says`);
    b.copy(out, pos);
    pos += b.length;
  }
  if (pos !== size) throw new LadingError('INVALID_ARCHIVE', `a file's content is ${pos} bytes, not ${size}`);
  return out;
}

/**
 * `size` bytes at `offset` of a layer's uncompressed tar. The whole layer is read, so the blob's digest
 * is checked before the bytes are trusted.
 */
async function readLayerRange(store: Store, layer: Descriptor, offset: number, size: number): Promise<Uint8Array> {
  const out = Buffer.alloc(size);
  let pos = 0;
  let filled = 0;
  for await (const chunk of await openLayerStream(store, layer)) {
    const b = chunk as Buffer;
    const from = Math.max(offset, pos);
    const to = Math.min(offset + size, pos + b.length);
    if (to > from) {
      b.copy(out, from - offset, from - pos, to - pos);
      filled += to - from;
    }
    pos += b.length;
  }
  if (filled !== size)
    throw new LadingError('INVALID_ARCHIVE', `layer ${layer.digest} in ${store.name} ends before the file at offset ${offset}`);
  return out;
}
