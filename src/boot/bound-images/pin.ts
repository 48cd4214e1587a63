/**
 * Pinning bound images: every declaration that names a tag is rewritten to `repo@sha256:<hex>` (the
 * digest the tag names now), in one new layer on top of the image. bootc never pulls an image again
 * once it is present, so a floating tag freezes at whatever was pulled first; a digest makes an update
 * change exactly when a bound image does.
 *
 * Reproducible: the layer holds only the rewritten unit files, with their directories, each keeping the
 * metadata it had in the image; the config and manifest are canonical JSON with no timestamps added. So
 * pinning the same image to the same digests gives the same image digest, and pinning an image whose
 * declarations all carry digests gives the image back unchanged. An index is pinned platform by
 * platform and gets a new index.
 */
import { isLadingError, LadingError } from '../../errors.js';
import { CopySession } from '../../copy/copy-session.js';
import type { Compression } from '../../fs/compress.js';
import { FileTree, makeEntry, parentOf } from '../../fs/tree.js';
import { canonicalJsonBytes } from '../../oci/canonical-json.js';
import { digestOf } from '../../oci/digest.js';
import { isIndexMediaType } from '../../oci/media-types.js';
import { parseManifest } from '../../oci/parse.js';
import { formatReference, type ImageReference, repositoryOf } from '../../oci/reference.js';
import type { Descriptor, ImageManifest } from '../../oci/types.js';
import type { Store } from '../../store/store.js';
import { appendLayer } from '../append-layer.js';
import { type BoundImage, readBoundImages } from './bound-images.js';
import { imageRoot } from './image-root.js';
import type { RootView } from './root-view.js';
import { replaceAssignment } from './unit-file.js';

export interface PinOptions {
  /** The digest a reference's tag names now (e.g. asked of its registry). */
  resolveDigest: (ref: ImageReference, image: BoundImage) => Promise<string>;
  /** Tags for the pinned image in the destination. */
  tags?: readonly string[];
  /** Compression of the new layer (default gzip; a Docker manifest always gets gzip). */
  compression?: Compression;
  /** The host's root, for `AuthFile=` paths the image does not hold. */
  hostRoot?: RootView;
}

export interface PinChange {
  source: string;
  file: string;
  from: string;
  to: string;
  /** The platform's image this change is in (for an index). */
  manifest: string;
}

export interface PinResult {
  /** The pinned image (or the original, when nothing needed pinning). */
  descriptor: Descriptor;
  original: Descriptor;
  changes: PinChange[];
  /** Declarations already pinned by digest, left as they are. */
  alreadyPinned: { source: string; image: string }[];
}

const HISTORY_BY = 'lading bound-images pin';

/** Pins the image `srcRef` names in `src` and writes the result into `dst`. */
export async function pinBoundImages(src: Store, srcRef: string | undefined, dst: Store, options: PinOptions): Promise<PinResult> {
  const original = await src.resolve(srcRef);
  const result: PinResult = { descriptor: original, original, changes: [], alreadyPinned: [] };
  const digests = new Map<string, Promise<string>>();
  const resolveOnce = (b: BoundImage): Promise<string> => {
    const key = formatReference(b.reference);
    let p = digests.get(key);
    if (p === undefined) {
      p = options.resolveDigest(b.reference, b).catch((e: unknown) => {
        if (!isLadingError(e)) throw e;
        throw new LadingError(
          e.code,
          `cannot pin bound image ${b.image} (${b.source}): ${e.message}`,
          { ...e.context, image: b.image },
          { cause: e },
        );
      });
      digests.set(key, p);
    }
    return p;
  };
  const bytes = await src.fetchManifest(original);
  const parsed = parseManifest(bytes, original, `manifest ${original.digest} in ${src.name}`);
  const tags = options.tags ?? [];
  const copyUnchanged = async () => {
    await new CopySession({ referrers: false }).copy(src, original.digest, dst, { platforms: 'all', tags });
  };

  if (parsed.kind === 'manifest') {
    const pinned = await pinManifest(src, dst, original, parsed.manifest, bytes, options, resolveOnce, result);
    if (pinned === undefined) {
      await copyUnchanged();
      return result;
    }
    await dst.pushManifest(pinned.descriptor, pinned.bytes, { tags, root: true });
    result.descriptor = pinned.descriptor;
    return result;
  }

  const manifests: Descriptor[] = [];
  let changed = false;
  for (const child of parsed.index.manifests) {
    const childBytes = isIndexMediaType(child.mediaType) || child.platform?.os === 'unknown' ? undefined : await src.fetchManifest(child);
    const childParsed = childBytes === undefined ? undefined : parseManifest(childBytes, child, `manifest ${child.digest} in ${src.name}`);
    const pinned =
      childParsed?.kind === 'manifest'
        ? await pinManifest(src, dst, child, childParsed.manifest, childBytes!, options, resolveOnce, result)
        : undefined;
    if (pinned === undefined) {
      manifests.push(child);
      continue;
    }
    changed = true;
    await dst.pushManifest(pinned.descriptor, pinned.bytes);
    manifests.push({ ...child, mediaType: pinned.descriptor.mediaType, digest: pinned.descriptor.digest, size: pinned.descriptor.size });
  }
  if (!changed) {
    await copyUnchanged();
    return result;
  }
  // The children left as they were must be in the destination too.
  const session = new CopySession({ referrers: false });
  for (const m of manifests) if (!(await dst.has(m))) await session.copy(src, m.digest, dst, { platforms: 'all' }).catch(rethrow);
  const indexDoc = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  const indexBytes = canonicalJsonBytes({ ...indexDoc, manifests });
  const descriptor: Descriptor = { mediaType: original.mediaType, digest: digestOf(indexBytes), size: indexBytes.byteLength };
  await dst.pushManifest(descriptor, indexBytes, { tags, root: true });
  result.descriptor = descriptor;
  return result;
}

function rethrow(e: unknown): never {
  throw e;
}

/** One image manifest: its pinned manifest (blobs already in `dst`), or undefined when nothing changes. */
async function pinManifest(
  src: Store,
  dst: Store,
  desc: Descriptor,
  manifest: ImageManifest,
  manifestBytes: Uint8Array,
  options: PinOptions,
  resolveOnce: (b: BoundImage) => Promise<string>,
  result: PinResult,
): Promise<{ descriptor: Descriptor; bytes: Uint8Array } | undefined> {
  const root = await imageRoot(src, desc, manifest);
  const images = await readBoundImages(root.view, options.hostRoot === undefined ? {} : { hostRoot: options.hostRoot });
  const texts = new Map<string, string>();
  const done = new Set<string>();
  for (const b of images) {
    if (b.reference.digest !== undefined) {
      result.alreadyPinned.push({ source: b.source, image: b.image });
      continue;
    }
    const to = `${repositoryOf(b.reference)}@${await resolveOnce(b)}`;
    result.changes.push({ source: b.source, file: b.file, from: b.image, to, manifest: desc.digest });
    const path = b.file.slice(1);
    const key = `${path}\0${b.assignment.firstLine}`;
    if (done.has(key)) continue; // two entries linking to one file
    done.add(key);
    const text = texts.get(path) ?? Buffer.from(await root.view.readFile(path, Number.MAX_SAFE_INTEGER)).toString('utf8');
    texts.set(path, replaceAssignment(text, b.assignment, `Image=${to.replaceAll('%', '%%')}`));
  }
  if (texts.size === 0) return undefined;

  // The new layer: the rewritten files and their directories, with the metadata the image gave them.
  const layerTree = new FileTree({ ...root.tree.root });
  for (const [path, text] of [...texts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const dirs: string[] = [];
    for (let p = parentOf(path); p !== ''; p = parentOf(p)) dirs.unshift(p);
    for (const d of dirs) layerTree.set({ ...root.tree.get(d)!, path: d });
    const before = fileEntry(root.tree, path);
    const data = Buffer.from(text, 'utf8');
    layerTree.set(
      makeEntry(path, 'file', {
        mode: before.mode,
        uid: before.uid,
        gid: before.gid,
        mtime: before.mtime,
        mtimeNsec: before.mtimeNsec,
        xattrs: before.xattrs,
        size: data.byteLength,
        content: { kind: 'bytes', data },
      }),
    );
  }
  const pins = result.changes.filter((c) => c.manifest === desc.digest).map((c) => c.to);
  const appended = await appendLayer(src, dst, desc, manifest, manifestBytes, layerTree, {
    compression: options.compression ?? 'gzip',
    history: { created_by: HISTORY_BY, comment: `bound images pinned: ${[...new Set(pins)].join(' ')}` },
  });
  return { descriptor: appended.descriptor, bytes: appended.bytes };
}

/** A file's own metadata (a hard link's is the file it links to). */
function fileEntry(tree: FileTree, path: string) {
  let e = tree.get(path)!;
  for (let i = 0; e.type === 'hardlink' && i < 40; i++) e = tree.get(e.linkTarget ?? '') ?? e;
  return e;
}
