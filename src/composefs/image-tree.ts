/**
 * An OCI image as the composefs file tree composefs-rs builds from it (`cfsctl oci compute-id`,
 * `create_filesystem` + `transform_for_oci`, and with `bootable` bootc's `transform_for_boot`), so the
 * digest Lading computes is the one a sealed UKI names:
 *
 * - the layers are flattened in memory with whiteouts applied (src/fs/flatten.ts), each regular file
 *   hashed (fs-verity, the repository's algorithm) while its layer streams past: nothing is extracted;
 * - files of at most 64 bytes (INLINE_CONTENT_MAX_V0) are held inside the image; larger ones are
 *   external, named by their fs-verity digest (`xx/yyyy…`);
 * - mtimes keep whole seconds only (composefs-rs truncates the nanoseconds);
 * - the root directory takes its mode, owner, mtime and xattrs from /usr (OCI leaves `/` undefined);
 * - /run is emptied, its mtime set to /usr's;
 * - xattrs are filtered to the allowlist (`security.capability`);
 * - bootable: /boot and /sysroot are emptied with /usr's mtime (the UKI in /boot names the digest, so
 *   it cannot be inside it), then SELinux labels are set from the image's own policy, or stripped.
 *
 * Where composefs-rs refuses an image (no /usr; /run not a directory; --bootable without /boot or
 * /sysroot) Lading refuses it too, rather than print a digest no other tool would agree with.
 *
 * One known difference: whiteouts follow image-spec exactly (flatten.ts), where composefs-rs applies
 * them in tar order (its issue #8): the two disagree only on a layer that puts a whiteout after a file
 * it adds at the same path, or children before their directory's opaque marker.
 */
import { LadingError } from '../errors.js';
import { flattenLayers, resolveImageManifest } from '../fs/flatten.js';
import { isUncompressedLayer } from '../fs/layer-stream.js';
import type { TarHeader } from '../fs/tar-reader.js';
import type { Entry, FileTree } from '../fs/tree.js';
import type { Descriptor, ImageManifest, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import type { VerityAlgorithm } from '../verity/fsverity.js';
import type { VerifiedFile } from '../oci/verified-file.js';
import { verityPool } from '../verity/verity-pool.js';
import { POLICY_PATH, type ReadEntry, selabel } from './selabel.js';
import { clearDirectoryKeepingLinks } from './tree-links.js';

/** composefs-rs `INLINE_CONTENT_MAX_V0` (and C mkcomposefs's): larger files live in the object store. */
export const INLINE_MAX = 64;

/** xattrs composefs-rs keeps from an OCI image (`CONTAINER_XATTR_ALLOWLIST`). */
const XATTR_ALLOWLIST = new Set(['security.capability']);

/**
 * Consumes one external file's bytes; resolves once it has them, with its fs-verity digest (hex) to
 * come (hashing may still be running on another thread). Export also stores the bytes.
 */
export type ContentSink = (content: AsyncIterable<Uint8Array>, header: TarHeader) => Promise<{ digest: Promise<string> }>;

/** Something that wants to see the bytes of some files as they stream past (a UKI's PE sections). */
export type Tap = (header: TarHeader, layer: Descriptor) => ((chunk: Uint8Array) => void) | undefined;

export interface ReadImageOptions {
  algorithm: VerityAlgorithm;
  /** For an index: the image for this platform (default: this machine's). */
  platform?: Platform;
  /** Where external files' bytes go (default: hashed and dropped). */
  sink?: ContentSink;
  tap?: Tap;
}

export interface ImageTree {
  /** The image manifest read (for an index: the platform's). */
  descriptor: Descriptor;
  manifest: ImageManifest;
  /** The merged tree, before the composefs transformations (see composefsTree). */
  tree: FileTree;
  /** The bytes of a regular file: inline ones, and the SELinux policy files (kept while streaming). */
  read: ReadEntry;
}

/** Policy files larger than this are refused (a real file_contexts is a few hundred KiB). */
const MAX_KEPT = 64 * 1024 * 1024;

/** Values by where a file's bytes are in the image (layer digest, offset): no key string per file. */
class ByPlace<T> {
  private readonly layers = new Map<string, Map<number, T>>();

  set(layer: string, offset: number, value: T): void {
    let byOffset = this.layers.get(layer);
    if (byOffset === undefined) this.layers.set(layer, (byOffset = new Map()));
    byOffset.set(offset, value);
  }

  get(layer: string, offset: number): T | undefined {
    return this.layers.get(layer)?.get(offset);
  }
}

/** Yields `content`'s chunks, showing each to `see` first. */
async function* observed(content: AsyncIterable<unknown>, see: (chunk: Uint8Array) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of content) {
    see(chunk as Uint8Array);
    yield chunk as Uint8Array;
  }
}

/** Flattens the image `desc` names, every external file hashed (and sunk) as its layer streams. */
export async function readImageTree(store: Store, desc: Descriptor, options: ReadImageOptions): Promise<ImageTree> {
  const { descriptor, manifest } = await resolveImageManifest(store, desc, options.platform);
  const pool = options.sink === undefined ? verityPool(options.algorithm) : undefined;
  const sink: ContentSink = options.sink ?? ((chunks, header) => pool!.submit(chunks, header.size));
  const tap = options.tap;
  const kept = new Map<string, Uint8Array>();
  // Digests arrive after the layers are read (hashed on another core): by where the bytes were.
  const digests = new ByPlace<Promise<string>>();
  // Layers read in place stay open until every range of them is hashed.
  const openFiles: VerifiedFile[] = [];
  // The uncompressed layers are the ones read in place, where the workers can share out the work.
  pool?.planLayers(
    manifest.layers.flatMap((l) => {
      const algorithm = l.digest.slice(0, l.digest.indexOf(':'));
      return isUncompressedLayer(l.mediaType) && (algorithm === 'sha256' || algorithm === 'sha512') ? [{ size: l.size, algorithm }] : [];
    }),
  );
  let tree: FileTree;
  let failed = true;
  try {
    tree = await flattenLayers(store, manifest.layers, {
      keepBytesUpTo: INLINE_MAX,
      openFiles,
      // The layers' own digests are checked by the verity workers too: no third kind of thread.
      ...(pool !== undefined && { hasher: (fd, algorithm, start, length) => pool.hashFile(fd, algorithm, start, length) }),
      onFile: async (header, content, layer, file) => {
        const watch = tap?.(header, layer);
        const keep = header.size > INLINE_MAX && POLICY_PATH.test(header.path);
        if (keep && header.size > MAX_KEPT) {
          throw new LadingError('UNSUPPORTED_TREE', `/${header.path} is ${header.size} bytes: too large for an SELinux policy file`);
        }
        if (pool !== undefined && file !== undefined && watch === undefined && !keep && header.size > INLINE_MAX) {
          // The bytes lie in a local file: the pool's workers read them there, the main thread never does.
          digests.set(layer.digest, header.offset, pool.submitRange(file.fd, header.offset, header.size).digest);
          return;
        }
        if (header.size <= INLINE_MAX && watch === undefined) return; // held inline: flatten kept the bytes
        const parts: Buffer[] = [];
        let chunks: AsyncIterable<Uint8Array> = content() as AsyncIterable<Uint8Array>;
        if (watch !== undefined || keep) {
          chunks = observed(chunks, (chunk) => {
            watch?.(chunk);
            if (keep) parts.push(Buffer.from(chunk));
          });
        }
        if (header.size <= INLINE_MAX) {
          for await (const _ of chunks);
          return;
        }
        const { digest } = await sink(chunks, header);
        digests.set(layer.digest, header.offset, digest);
        if (keep) kept.set(`${layer.digest}@${header.offset}`, Buffer.concat(parts));
      },
    });
    // Layers read in place were not waited for (see flattenLayers' openFiles): their checks now.
    const hashed = pool?.close();
    hashed?.catch(() => undefined); // awaited below, after the checks: a failed check is the error to report
    await Promise.all(openFiles.map((f) => f.verified));
    await hashed;
    failed = false;
  } catch (e) {
    await pool?.abort();
    throw e;
  } finally {
    await Promise.all(openFiles.map((f) => f.close(failed)));
  }
  for (const e of tree.walk()) {
    if (e.type !== 'file' || e.content?.kind !== 'layer') continue;
    const digest = digests.get(e.content.layer, e.content.offset);
    if (digest !== undefined) e.verity = await digest;
  }
  const read: ReadEntry = (e) => {
    if (e.content?.kind === 'bytes') return e.content.data;
    if (e.content?.kind === 'layer') return kept.get(`${e.content.layer}@${e.content.offset}`);
    return undefined;
  };
  return { descriptor, manifest, tree, read };
}

export interface ComposefsTreeOptions {
  /** Empty /boot and /sysroot and apply the image's SELinux policy (the tree a sealed UKI names). */
  bootable: boolean;
}

function directory(tree: FileTree, path: string, why: string): Entry {
  const e = tree.get(path);
  if (e?.type !== 'directory') {
    throw new LadingError(
      'UNSUPPORTED_TREE',
      `the image has ${e === undefined ? 'no' : `a ${e.type} at`} /${path}${e === undefined ? ' directory' : ', not a directory'}: ${why}`,
      { path: `/${path}` },
    );
  }
  return e;
}

/** Empties `path` (a directory) and gives it /usr's mtime. */
function emptyWithUsrMtime(tree: FileTree, path: string, usr: Entry): void {
  const dir = tree.get(path)!;
  tree.set({ ...dir, mtime: usr.mtime, mtimeNsec: usr.mtimeNsec });
  clearDirectoryKeepingLinks(tree, path);
}

/**
 * Applies composefs-rs's transformations to a merged image tree, in its order (mutates `tree`).
 * Call it once; `bootable` may be applied later with `makeBootable` (seal computes both digests).
 */
export function composefsTree(image: ImageTree, options: ComposefsTreeOptions): FileTree {
  const tree = image.tree;
  for (const e of tree.walk()) {
    e.mtimeNsec = 0;
    if (e.xattrs.size > 0) for (const key of [...e.xattrs.keys()]) if (!XATTR_ALLOWLIST.has(key)) e.xattrs.delete(key);
  }
  const usr = directory(tree, 'usr', "composefs-rs copies the root directory's metadata from /usr, and refuses images without it");
  tree.set({
    ...tree.root,
    mode: usr.mode,
    uid: usr.uid,
    gid: usr.gid,
    mtime: usr.mtime,
    mtimeNsec: usr.mtimeNsec,
    xattrs: new Map(usr.xattrs),
  });
  if (tree.has('run')) {
    directory(tree, 'run', 'composefs-rs empties /run and refuses an image where it is something else');
    emptyWithUsrMtime(tree, 'run', usr);
  }
  if (options.bootable) makeBootable(image);
  return tree;
}

/** bootc's `transform_for_boot` on a tree composefsTree already transformed. */
export function makeBootable(image: ImageTree): FileTree {
  const tree = image.tree;
  const usr = tree.get('usr')!;
  for (const d of ['boot', 'sysroot']) {
    directory(
      tree,
      d,
      'a bootable image needs /boot and /sysroot directories (composefs-rs empties them, and refuses images without them)',
    );
  }
  for (const d of ['boot', 'sysroot']) emptyWithUsrMtime(tree, d, usr);
  selabel(tree, image.read);
  return tree;
}
