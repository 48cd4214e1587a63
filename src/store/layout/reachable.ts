/**
 * The graph of a layout as index.json roots it: every manifest, index, config and layer reachable from
 * it, with what references each. fsck reports what is broken in it; gc keeps exactly what is in it.
 */
import { isLadingError } from '../../errors.js';
import { isManifestMediaType } from '../../oci/media-types.js';
import { parseManifest } from '../../oci/parse.js';
import type { Descriptor, ImageIndex } from '../../oci/types.js';
import type { LayoutStore } from './layout-store.js';

export interface Problem {
  digest: string;
  kind: 'missing' | 'invalid' | 'corrupt' | 'wrong-size' | 'stray';
  message: string;
}

export interface Reachable {
  /** Every digest reachable from index.json, with one descriptor that names it and who names it. */
  blobs: Map<string, { descriptor: Descriptor; from: string }>;
  problems: Problem[];
}

export async function reachable(store: LayoutStore, index: ImageIndex): Promise<Reachable> {
  const blobs = new Map<string, { descriptor: Descriptor; from: string }>();
  const problems: Problem[] = [];

  const visit = async (desc: Descriptor, from: string): Promise<void> => {
    if (blobs.has(desc.digest)) return;
    blobs.set(desc.digest, { descriptor: desc, from });
    const present = await store.localBlobPath(desc);
    if (present === undefined) {
      // Layers with urls (foreign/non-distributable) may legitimately live elsewhere.
      if (!desc.urls?.length)
        problems.push({ digest: desc.digest, kind: 'missing', message: `blob ${desc.digest} is missing (referenced by ${from})` });
      return;
    }
    if (!isManifestMediaType(desc.mediaType)) return;
    let parsed: ReturnType<typeof parseManifest>;
    try {
      parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest}`);
    } catch (e) {
      if (!isLadingError(e)) throw e;
      problems.push({ digest: desc.digest, kind: 'invalid', message: e.message });
      return;
    }
    const children = parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
    for (const child of children) await visit(child, `${parsed.kind} ${desc.digest}`);
  };

  for (const root of index.manifests) await visit(root, 'index.json');
  return { blobs, problems };
}
