/**
 * Layers applied bottom-up into one FileTree, in memory, never extracted to disk: what bound images,
 * composefs and releases read an image as.
 *
 * Whiteouts follow image-spec `layer.md` exactly, whatever the order of entries inside a layer:
 * - `.wh.<name>` removes `<name>` (and everything under it) as the LOWER layers left it; entries the
 *   same layer adds at or under that path stay, before or after the whiteout;
 * - `.wh..wh..opq` removes every lower-layer child of its directory; the same layer's children stay;
 * - other `.wh..wh.*` names (aufs metadata) are skipped with everything under them, as Docker does;
 *   no whiteout file ever appears in the result.
 * Replacing a directory by a directory merges (the upper metadata wins); anything else replaces the
 * whole path.
 *
 * Path safety: '..' is refused by the reader; an entry whose parent path passes through a symlink is
 * refused (following it could leave the root); a hardlink must name an entry that already exists (not a
 * directory). When the entry holding a hardlinked file's content is removed or replaced by a later
 * layer, its other names keep the content, as they would on a real filesystem: the first remaining name
 * becomes the file and the others link to it.
 */
import { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageManifest, Platform } from '../oci/types.js';
import type { Store } from '../store/store.js';
import type { FileHasher, VerifiedFile } from '../oci/verified-file.js';
import { type Bytes, FileByteSource } from './byte-source.js';
import { layerReadError, openLayerInput } from './layer-stream.js';
import { readTarEntries, type TarHeader } from './tar-reader.js';
import { baseName, compareNames, type Content, type Entry, FileTree, makeEntry, parentOf } from './tree.js';

export interface FlattenOptions {
  /**
   * Called for every regular file with its content stream, made on demand (read it or not): may
   * replace the entry's content and set its fs-verity digest (composefs computes digests while it
   * streams).
   */
  onFile?: (
    header: TarHeader,
    content: () => Readable,
    layer: Descriptor,
    /** Set when the layer is read in place from a local file: the content is at `header.offset` in it. */
    file?: VerifiedFile,
  ) => Promise<Partial<Pick<Entry, 'content' | 'verity'>> | void>;
  /** Files of at most this many bytes are held in memory (`{kind:'bytes'}`) instead of referenced. */
  keepBytesUpTo?: number;
  /**
   * Where given, layers read in place from local files are left open and added here for the caller
   * to close, so `onFile` may hand their descriptor to work that outlives the flatten; and their
   * checks are not waited for (the next layer is parsed while workers still hash this one): the
   * caller must await every file's `verified` before it trusts the tree or anything made from it.
   */
  openFiles?: VerifiedFile[];
  /** Hashes layers read in place (default: the shared hashing workers of src/oci/file-digest-pool.ts). */
  hasher?: FileHasher;
}

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';
/** aufs metadata (`.wh..wh.plnk/`, `.wh..wh.aufs`): skipped with everything under it, as Docker does. */
const AUFS = '.wh..wh.';

/**
 * Applies `layers` (bottom first) into a new tree. Each layer's bytes are checked against its
 * descriptor: before the next layer is read, or, with `openFiles`, by the caller (see there).
 */
export async function flattenLayers(store: Store, layers: readonly Descriptor[], options: FlattenOptions = {}): Promise<FileTree> {
  const applier = new LayerApplier(new FileTree(), options);
  for (const layer of layers) {
    const input = await openLayerInput(store, layer, options.hasher);
    let failed = false;
    try {
      if ('stream' in input) await applier.apply(input.stream, layer);
      else {
        const { file } = input;
        // At the end of the tar the hasher hears that no more ranges come (it may wait for that).
        const atEnd = () => {
          file.readerDone();
          return options.openFiles === undefined ? file.verified : Promise.resolve();
        };
        await applier.apply(new FileByteSource(file.fd, file.size, atEnd), layer, file);
      }
    } catch (e) {
      failed = true;
      throw layerReadError(e, `layer ${layer.digest} in ${store.name}`);
    } finally {
      if ('file' in input) {
        if (options.openFiles === undefined) await input.file.close(failed);
        else options.openFiles.push(input.file);
      }
    }
  }
  return applier.tree;
}

/**
 * The image manifest `desc` names: itself, or, for an index, the entry for `platform` (default: this
 * machine's platform; an index with a single image and no platforms gives that image).
 */
export async function resolveImageManifest(
  store: Store,
  desc: Descriptor,
  platform?: Platform,
): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
  const parsed = parseManifest(await store.fetchManifest(desc), desc, `manifest ${desc.digest} in ${store.name}`);
  if (parsed.kind === 'manifest') return { descriptor: desc, manifest: parsed.manifest };
  const want = platform ?? hostPlatform();
  const entries = parsed.index.manifests;
  const match =
    entries.find((d) => d.platform !== undefined && platformMatches(want, d.platform)) ??
    (platform === undefined && entries.length === 1 && entries[0]!.platform === undefined ? entries[0] : undefined);
  if (match === undefined) {
    const have = entries.filter((d) => d.platform !== undefined).map((d) => formatPlatform(d.platform!));
    throw new LadingError(
      'NO_MATCHING_PLATFORM',
      `${store.name}@${desc.digest} has no image for ${formatPlatform(want)} (it has: ${have.join(', ') || 'none'}): pass one of those platforms`,
      { platform: formatPlatform(want) },
    );
  }
  return resolveImageManifest(store, match, platform ?? want);
}

/** Resolves `manifestDesc` (an index goes to `platform`'s image) and flattens its layers. */
export async function flattenImage(
  store: Store,
  manifestDesc: Descriptor,
  platform?: Platform,
  options: FlattenOptions = {},
): Promise<FileTree> {
  const { manifest } = await resolveImageManifest(store, manifestDesc, platform);
  return flattenLayers(store, manifest.layers, options);
}

/**
 * Applies tar layers one after another onto a tree; keeps what must survive between layers (which
 * names share a hardlinked file). Use flattenLayers unless the tar streams come from somewhere else.
 */
export class LayerApplier {
  /** Hardlink groups: the path holding the content -> the paths linking to it, and back. */
  private readonly linksOf = new Map<string, Set<string>>();
  private readonly holderOf = new Map<string, string>();

  constructor(
    readonly tree: FileTree,
    private readonly options: FlattenOptions = {},
  ) {}

  /** Applies one uncompressed layer tar; `layer` names it in content references and messages. */
  async apply(input: Readable | Bytes, layer: Descriptor, file?: VerifiedFile): Promise<void> {
    const added = new Set<string>();
    const touched = new Set<string>();
    await readTarEntries(input, async (h, content) => {
      const where = `${h.rawName} in layer ${layer.digest}`;
      this.checkParents(h.path, where);
      const base = baseName(h.path);
      if (h.path.includes(AUFS) && h.path.split('/').some((part) => part.startsWith(AUFS) && part !== OPAQUE)) return;
      if (h.path !== '' && base.startsWith(WHITEOUT)) {
        const dir = parentOf(h.path);
        if (base === OPAQUE) this.removeLower(dir, true, added, touched);
        else {
          const name = base.slice(WHITEOUT.length);
          if (name !== '' && name !== '.') this.removeLower(dir === '' ? name : `${dir}/${name}`, false, added, touched);
        }
        return;
      }
      const entry = await this.entryFor(h, content, layer, where, file, input instanceof FileByteSource ? input : undefined);
      this.replace(entry);
      added.add(entry.path);
      for (let p = entry.path; p !== '';) {
        p = parentOf(p);
        if (touched.has(p)) break;
        touched.add(p);
      }
    });
  }

  private async entryFor(
    h: TarHeader,
    content: () => Readable,
    layer: Descriptor,
    where: string,
    file?: VerifiedFile,
    source?: FileByteSource,
  ): Promise<Entry> {
    if (h.path === '' && h.type !== 'directory') throw new LadingError('UNSAFE_PATH', `${where}: the root entry is not a directory`);
    const fields: Partial<Omit<Entry, 'path' | 'type'>> = {
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
      mtimeNsec: h.mtimeNsec,
      xattrs: h.xattrs,
    };
    if (h.rdev !== undefined) fields.rdev = h.rdev;
    if (h.type === 'symlink') fields.linkTarget = h.linkTarget ?? '';
    if (h.type === 'hardlink') fields.linkTarget = this.hardlinkHolder(h, where);
    if (h.type === 'file') {
      fields.size = h.size;
      let data: Content = { kind: 'layer', layer: layer.digest, offset: h.offset };
      let stream = content;
      const keep = this.options.keepBytesUpTo;
      if (keep !== undefined && h.size <= keep) {
        // Read in place, the bytes are taken straight from the file: no stream for a few bytes.
        const bytes = source === undefined ? await readAll(content(), h.size) : readRange(source, h.offset, h.size);
        data = { kind: 'bytes', data: bytes };
        stream = () => Readable.from([bytes]);
      }
      fields.content = data;
      const extra = await this.options.onFile?.(h, stream, layer, file);
      if (extra?.content !== undefined) fields.content = extra.content;
      if (extra?.verity !== undefined) fields.verity = extra.verity;
    }
    return makeEntry(h.path, h.type, fields);
  }

  /** Where a hardlink's content lives: its target, or the target's own holder when that is a link too. */
  private hardlinkHolder(h: TarHeader, where: string): string {
    const target = h.linkTarget ?? '';
    const existing = target === '' || target === h.path ? undefined : this.tree.get(target);
    if (existing === undefined) {
      throw new LadingError('UNSAFE_PATH', `${where}: hardlink to ${target || '(nothing)'}, which no earlier entry created`, {
        path: h.path,
      });
    }
    if (existing.type === 'directory') {
      throw new LadingError('UNSAFE_PATH', `${where}: hardlink to the directory ${target}`, { path: h.path });
    }
    return existing.type === 'hardlink' ? (this.holderOf.get(target) ?? existing.linkTarget ?? target) : target;
  }

  /** Refuses a path whose parent passes through a symlink (the tree's own check refuses other non-directories). */
  private checkParents(path: string, where: string): void {
    // A directory can only be in the tree under directories: when the parent is one, all are.
    const slash = path.lastIndexOf('/');
    if (slash < 0 || this.tree.get(path.slice(0, slash))?.type === 'directory') return;
    let i = path.indexOf('/');
    while (i >= 0) {
      const prefix = path.slice(0, i);
      const e = this.tree.get(prefix);
      if (e === undefined || e.type !== 'directory') {
        if (e?.type === 'symlink') {
          throw new LadingError(
            'UNSAFE_PATH',
            `${where}: ${prefix} is a symlink, and Lading does not follow symlinks while applying layers`,
            {
              path,
            },
          );
        }
        return;
      }
      i = path.indexOf('/', i + 1);
    }
  }

  private replace(entry: Entry): void {
    const existing = this.tree.get(entry.path);
    if (existing !== undefined && entry.path !== '' && !(existing.type === 'directory' && entry.type === 'directory')) {
      this.removeSubtree(entry.path);
    }
    this.tree.set(entry);
    if (entry.type === 'hardlink') {
      const holder = entry.linkTarget!;
      this.holderOf.set(entry.path, holder);
      let group = this.linksOf.get(holder);
      if (group === undefined) this.linksOf.set(holder, (group = new Set()));
      group.add(entry.path);
    }
  }

  /**
   * Removes what the lower layers put at `path` (with `keepSelf`, only under it): everything this layer
   * did not add itself. Without same-layer entries there, that is the whole subtree.
   */
  private removeLower(path: string, keepSelf: boolean, added: Set<string>, touched: Set<string>): void {
    const entry = this.tree.get(path);
    if (entry === undefined) return;
    if (!keepSelf && !added.has(path) && !touched.has(path)) {
      this.removeSubtree(path);
      return;
    }
    if (entry.type !== 'directory') return;
    for (const name of this.tree.children(path) ?? []) {
      this.removeLower(path === '' ? name : `${path}/${name}`, false, added, touched);
    }
  }

  private removeSubtree(path: string): void {
    if (this.holderOf.size > 0) {
      const removed = new Set<string>();
      for (const e of this.tree.walk(path)) removed.add(e.path);
      for (const p of removed) {
        const holder = this.holderOf.get(p);
        if (holder === undefined) continue;
        this.holderOf.delete(p);
        this.linksOf.get(holder)?.delete(p);
      }
      for (const p of removed) {
        const group = this.linksOf.get(p);
        if (group === undefined) continue;
        this.linksOf.delete(p);
        if (group.size > 0) this.promote(p, [...group]);
      }
    }
    this.tree.delete(path);
  }

  /** The content at `holder` is going away: its first remaining link (in tar order) becomes the file. */
  private promote(holder: string, links: string[]): void {
    const content = this.tree.get(holder)!;
    links.sort(walkOrder);
    const [first, ...rest] = links as [string, ...string[]];
    this.tree.set({ ...content, path: first });
    this.holderOf.delete(first);
    if (rest.length > 0) this.linksOf.set(first, new Set(rest));
    for (const l of rest) {
      this.tree.set({ ...this.tree.get(l)!, linkTarget: first });
      this.holderOf.set(l, first);
    }
  }
}

/** The order of FileTree.walk: component by component, names by bytes. */
function walkOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareNames(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

function readRange(source: FileByteSource, offset: number, size: number): Uint8Array {
  const out = source.readAt(offset, size);
  if (out.length !== size) throw new LadingError('INVALID_ARCHIVE', `a file's content is ${out.length} bytes, not ${size}`);
  return out;
}

async function readAll(content: Readable, size: number): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for await (const chunk of content) {
    const b = chunk as Buffer;
    b.copy(out, pos);
    pos += b.length;
  }
  if (pos !== size) throw new LadingError('INVALID_ARCHIVE', `a file's content is ${pos} bytes, not ${size}`);
  return out;
}
