/**
 * Pure functions over a layout's index.json: finding images by tag or digest and recording new ones.
 * Shared by the layout store and the archive store, which both hold an OCI layout.
 */
import { LadingError } from '../../errors.js';
import { isDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { Annotation, type Descriptor, type ImageIndex } from '../../oci/types.js';

export const EMPTY_LAYOUT_INDEX: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };

export const OCI_LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';

export function tagsOf(index: ImageIndex): string[] {
  const tags = new Set<string>();
  for (const m of index.manifests) {
    const tag = m.annotations?.[Annotation.refName];
    if (tag !== undefined) tags.add(tag);
  }
  return [...tags].sort();
}

/**
 * Finds the image `ref` names in a layout index: a tag (its `ref.name` annotation), a digest among the
 * top-level entries, or, with no ref, the only image. Returns undefined for a digest not listed at the top
 * (the caller may still hold it as a blob, e.g. one platform of a multi-platform image).
 */
export function findInIndex(index: ImageIndex, ref: string | undefined, storeName: string): Descriptor | undefined {
  if (ref === undefined) {
    if (index.manifests.length === 1) return index.manifests[0];
    if (index.manifests.length === 0) throw new LadingError('NOT_FOUND', `${storeName} holds no images`);
    const tags = tagsOf(index);
    throw new LadingError(
      'AMBIGUOUS',
      `${storeName} holds ${index.manifests.length} images: name one as ${storeName}:TAG${tags.length ? ` (tags: ${list(tags)})` : ' or @DIGEST'}`,
    );
  }
  if (isDigest(ref)) return index.manifests.find((m) => m.digest === ref);
  const matches = index.manifests.filter((m) => m.annotations?.[Annotation.refName] === ref);
  const digests = new Set(matches.map((m) => m.digest));
  if (digests.size > 1) {
    throw new LadingError('AMBIGUOUS', `tag "${ref}" names ${digests.size} different images in ${storeName}: fix its index.json`);
  }
  if (matches[0] === undefined) {
    const tags = tagsOf(index);
    throw new LadingError(
      'NOT_FOUND',
      `tag "${ref}" not found in ${storeName}${tags.length ? ` (tags: ${list(tags)})` : ' (it has no tags)'}`,
    );
  }
  return matches[0];
}

/**
 * Records `desc` (with its annotations, e.g. where a mirrored image came from) in the index: under each tag (replacing what the tag named before), or untagged when no
 * tag is given (once per digest), the way skopeo records an `oci:DIR` destination without a tag.
 */
export function withImage(index: ImageIndex, desc: Descriptor, tags: readonly string[]): ImageIndex {
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.artifactType !== undefined) entry.artifactType = desc.artifactType;
  if (desc.platform !== undefined) entry.platform = desc.platform;
  const { [Annotation.refName]: _, ...annotations } = desc.annotations ?? {};
  if (Object.keys(annotations).length > 0) entry.annotations = annotations;
  let manifests = index.manifests;
  if (tags.length === 0) {
    const present = manifests.some((m) => m.digest === desc.digest && m.annotations?.[Annotation.refName] === undefined);
    if (!present) manifests = [...manifests, entry];
  } else {
    manifests = manifests.filter((m) => !tags.includes(m.annotations?.[Annotation.refName] ?? '\0'));
    for (const tag of tags) manifests.push({ ...entry, annotations: { ...annotations, [Annotation.refName]: tag } });
  }
  return { ...index, manifests };
}

function list(tags: string[]): string {
  return tags.length > 8 ? `${tags.slice(0, 8).join(', ')}, …` : tags.join(', ');
}

/**
 * Referrers in a layout: the top-level entries whose manifest names `subject`, described as the
 * referrers API would (artifactType from the manifest, or its config media type; its annotations).
 */
export async function referrersInIndex(
  index: ImageIndex,
  subject: string,
  read: (desc: Descriptor) => Promise<Uint8Array>,
): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  for (const entry of index.manifests) {
    if (seen.has(entry.digest) || entry.mediaType !== MediaType.ociManifest) continue;
    seen.add(entry.digest);
    let m: { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
    try {
      m = JSON.parse(Buffer.from(await read(entry)).toString('utf8')) as typeof m;
    } catch {
      continue; // fsck reports unreadable manifests; a referrer query is not the place
    }
    if (m.subject?.digest !== subject) continue;
    const artifactType = m.artifactType ?? m.config?.mediaType;
    out.push({
      mediaType: entry.mediaType,
      digest: entry.digest,
      size: entry.size,
      ...(artifactType !== undefined && { artifactType }),
      ...(m.annotations !== undefined && { annotations: m.annotations }),
    });
  }
  return out;
}
