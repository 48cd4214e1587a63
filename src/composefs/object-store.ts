/**
 * `lading composefs export`: an image's composefs EROFS image (`DIR/image.erofs`) and its object store
 * (`DIR/objects/XX/<rest of the hex digest>`, the layout of a composefs repository and of
 * `mkcomposefs --digest-store`), written while the layers stream once.
 *
 * Each external file is written to a temp file in `objects/` as it is hashed, then renamed to the name
 * its digest gives, so an object is never seen half-written and its name is the fs-verity digest of
 * exactly the bytes it holds. An object already present is re-hashed and reused when it matches (a
 * damaged one is replaced). Objects this run created for files that the final tree does not hold (files
 * replaced or whited out by a later layer, or emptied from /boot) are removed at the end. Objects are
 * not fsync'ed one by one (30k fsyncs cost more than the whole export); the image is written last,
 * atomically, so an interrupted export leaves no image.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError, LadingError } from '../errors.js';
import type { FileTree } from '../fs/tree.js';
import type { Descriptor } from '../oci/types.js';
import type { Store } from '../store/store.js';
import { FsVerityHasher, fsverityDigest, type VerityAlgorithm } from '../verity/fsverity.js';
import { objectPath } from './dump.js';
import { type ComposefsOptions, type ImageComposefs, imageComposefs } from './image-digest.js';
import type { ContentSink } from './image-tree.js';
import { writeFileAtomically } from './mkfs.js';

export interface ExportStats {
  /** Objects written by this run. */
  written: number;
  /** Objects already present with the right content. */
  reused: number;
  /** Objects present with the wrong content, replaced. */
  repaired: number;
  /** Objects this run wrote for files the final tree does not hold, removed again. */
  dropped: number;
}

/** An `objects/` directory being filled. */
export class ObjectStoreWriter {
  readonly stats: ExportStats = { written: 0, reused: 0, repaired: 0, dropped: 0 };
  private readonly dirs = new Set<string>();
  private readonly created = new Set<string>();
  /** Objects this run found already present and correct. */
  private readonly found = new Set<string>();

  constructor(
    readonly root: string,
    readonly algorithm: VerityAlgorithm,
  ) {}

  /** The sink that stores each external file while it is hashed. */
  get sink(): ContentSink {
    return async (chunks) => ({ digest: Promise.resolve(await this.store(chunks)) });
  }

  private async ensureDir(name: string): Promise<void> {
    if (this.dirs.has(name)) return;
    const path = join(this.root, name);
    try {
      await mkdir(path, { recursive: true });
    } catch (e) {
      throw fsError(e, 'create', path);
    }
    this.dirs.add(name);
  }

  private async store(chunks: AsyncIterable<Uint8Array>): Promise<string> {
    await this.ensureDir('');
    const tmp = join(this.root, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    const hasher = new FsVerityHasher(this.algorithm);
    let fh;
    try {
      fh = await open(tmp, 'wx', 0o644);
    } catch (e) {
      throw fsError(e, 'create', tmp);
    }
    try {
      for await (const chunk of chunks) {
        hasher.update(chunk);
        await fh.write(chunk);
      }
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw fsError(e, 'write', tmp);
    }
    const digest = hasher.digest().toString('hex');
    const name = objectPath(digest);
    const target = join(this.root, name);
    try {
      if (this.created.has(name) || this.found.has(name)) {
        // The same content again (another file of this image): already stored by this run.
        await rm(tmp, { force: true });
        return digest;
      }
      await this.ensureDir(digest.slice(0, 2));
      const existing = await lstat(target).catch(() => undefined);
      let repair = false;
      if (existing?.isFile()) {
        if ((await fsverityDigest(target, this.algorithm)).toString('hex') === digest) {
          await rm(tmp, { force: true });
          this.found.add(name);
          this.stats.reused++;
          return digest;
        }
        repair = true;
      } else if (existing !== undefined) {
        throw new LadingError('IO', `${target} is in the way of an object: it is not a regular file; remove it`, { path: target });
      }
      await rename(tmp, target);
      if (repair) {
        this.found.add(name);
        this.stats.repaired++;
      } else {
        this.created.add(name);
        this.stats.written++;
      }
    } catch (e) {
      await rm(tmp, { force: true });
      throw fsError(e, 'store the object', target);
    }
    return digest;
  }

  /** Removes the objects this run created that `tree` does not reference. */
  async dropUnreferenced(tree: FileTree): Promise<void> {
    const wanted = new Set<string>();
    for (const e of tree.walk()) if (e.type === 'file' && e.verity !== undefined) wanted.add(objectPath(e.verity));
    for (const name of this.created) {
      if (wanted.has(name)) continue;
      await this.remove(name);
      this.stats.dropped++;
      this.stats.written--;
    }
  }

  /** Removes every object this run created (a failed export leaves the store as it found it). */
  async abort(): Promise<void> {
    for (const name of this.created) await this.remove(name);
    this.created.clear();
  }

  private async remove(name: string): Promise<void> {
    await rm(join(this.root, name), { force: true });
    // An XX directory this run emptied goes too (rmdir refuses a non-empty one).
    await rmdir(join(this.root, name.slice(0, 2))).catch(() => undefined);
  }
}

export interface ExportResult extends ImageComposefs {
  image: string;
  objects: string;
  stats: ExportStats;
}

/** Writes the composefs image and object store of the image `desc` names into `dir`. */
export async function exportComposefs(
  store: Store,
  desc: Descriptor,
  dir: string,
  options: Omit<ComposefsOptions, 'sink'>,
): Promise<ExportResult> {
  const existing = await lstat(dir).catch(() => undefined);
  if (existing !== undefined && !existing.isDirectory()) {
    throw new LadingError('USAGE', `--to ${dir} exists and is not a directory: name a directory (it is created if missing)`);
  }
  const objects = new ObjectStoreWriter(join(dir, 'objects'), options.algorithm);
  const image = join(dir, 'image.erofs');
  try {
    const result = await imageComposefs(store, desc, { ...options, sink: objects.sink });
    await objects.dropUnreferenced(result.tree);
    await writeFileAtomically(image, result.bytes);
    return { ...result, image, objects: objects.root, stats: objects.stats };
  } catch (e) {
    await objects.abort();
    // A directory this export created is removed again; one that was there keeps what it had.
    if (existing === undefined) await rm(dir, { recursive: true, force: true });
    else await rmdir(objects.root).catch(() => undefined);
    throw e;
  }
}
