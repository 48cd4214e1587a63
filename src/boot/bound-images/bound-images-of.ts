/**
 * The bound images of an image in a store, for callers that move images (the mirror planner): every
 * image a bootable image declares, read from its flattened layers, across the platforms of an index.
 *
 * Flattening reads every layer, so by default only images that say they are bootable (the
 * `containers.bootc` or `ostree.bootable` label bootc base images carry, and images built on them
 * inherit) are read; an application image in a mirror set costs one small config read.
 */
import { streamToBytes } from '../../store/stream-bytes.js';
import { isIndexMediaType } from '../../oci/media-types.js';
import { parseConfig, parseManifest } from '../../oci/parse.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../../oci/types.js';
import type { Store } from '../../store/store.js';
import { type BoundImage, readBoundImages } from './bound-images.js';
import { imageRoot } from './image-root.js';
import type { RootView } from './root-view.js';

/** Labels that mark a bootc-bootable image. */
export const BOOTABLE_LABELS = ['containers.bootc', 'ostree.bootable'] as const;

export interface BoundImagesOfOptions {
  /** Read images without a bootable label too (default false: they declare none that bootc reads). */
  anyImage?: boolean;
  /** The host's root, for `AuthFile=` paths the image does not hold (default /). */
  hostRoot?: RootView;
  /** Look `AuthFile=` up (default true; see ScanOptions.authFiles). */
  authFiles?: boolean;
}

/**
 * The bound images `desc` declares (for an index: those of every platform's image, each image once,
 * first platform first). Throws INVALID_BOUND_IMAGE when a declaration is broken.
 */
export async function boundImagesOf(store: Store, desc: Descriptor, options: BoundImagesOfOptions = {}): Promise<BoundImage[]> {
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  if (parsed.kind === 'manifest') return ofManifest(store, desc, parsed.manifest, options);
  const seen = new Set<string>();
  const out: BoundImage[] = [];
  for (const child of parsed.index.manifests) {
    // Attestations and other artifacts in an index carry platform unknown/unknown.
    if (child.platform?.os === 'unknown' || isIndexMediaType(child.mediaType)) continue;
    for (const b of await boundImagesOf(store, child, options)) {
      const key = `${b.source}\0${b.image}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(b);
    }
  }
  return out;
}

async function ofManifest(store: Store, desc: Descriptor, manifest: ImageManifest, options: BoundImagesOfOptions): Promise<BoundImage[]> {
  if (options.anyImage !== true && !isBootable(await readConfig(store, manifest.config))) return [];
  const root = await imageRoot(store, desc, manifest);
  return readBoundImages(root.view, {
    ...(options.hostRoot !== undefined && { hostRoot: options.hostRoot }),
    ...(options.authFiles !== undefined && { authFiles: options.authFiles }),
  });
}

/** True when the config carries a bootable label. */
export function isBootable(config: ImageConfig): boolean {
  const labels = config.config?.Labels ?? {};
  return BOOTABLE_LABELS.some((l) => labels[l] !== undefined && labels[l] !== '' && labels[l] !== '0' && labels[l] !== 'false');
}

export async function readConfig(store: Store, desc: Descriptor): Promise<ImageConfig> {
  const bytes = await streamToBytes(await store.fetchBlob(desc), 4 * 1024 * 1024, `config ${desc.digest} in ${store.name}`);
  return parseConfig(bytes, desc, `config ${desc.digest} in ${store.name}`);
}
