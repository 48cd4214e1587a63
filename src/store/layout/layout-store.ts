/**
 * The OCI image layout store (image-spec `image-layout.md`): Lading's embedded default, the format
 * skopeo, umoci, oras and crane all read, and what a disconnected site carries on a disk.
 *
 * Crash safety: a blob is streamed to a temp file inside the layout (same filesystem, so the final
 * rename is atomic), verified against its digest while it is written, fsynced, and only then renamed to
 * `blobs/<alg>/<hex>`. index.json is replaced by rename under the layout lock. A `kill -9` at any moment
 * leaves at worst a stray temp file (removed by gc), never a blob whose bytes do not match its name.
 *
 * Nothing is written until the first push, so a copy that fails before writing leaves no trace.
 */
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { copyFile, type FileHandle, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError, LadingError } from '../../errors.js';
import { canonicalJson } from '../../oci/canonical-json.js';
import { DigestVerifier, digestMismatch, isDigest, parseDigest, sizeMismatch, verifyBytes } from '../../oci/digest.js';
import { digestFile, openVerifiedFile } from '../../oci/verified-file.js';
import { isManifestMediaType } from '../../oci/media-types.js';
import { parseIndexJson, parseLayoutFile } from '../../oci/parse.js';
import { type Descriptor, type ImageIndex, MAX_MANIFEST_BYTES } from '../../oci/types.js';
import type { LocalBlobSink, LocalBlobSource, Store } from '../store.js';
import { EMPTY_LAYOUT_INDEX, findInIndex, OCI_LAYOUT_FILE, referrersInIndex, tagsOf, withImage } from './index-json.js';
import { acquireWriterLease, liveWriters, PRIVATE_DIR, withLayoutLock } from './lock.js';
import { reachable } from './reachable.js';

/** Read in large chunks: per-chunk overhead dominates hashing speed with the 64 KiB default. */
export const READ_CHUNK = 1024 * 1024;

export class LayoutStore implements Store, LocalBlobSource, LocalBlobSink {
  readonly name: string;
  private lease: { release: () => Promise<void> } | undefined;
  private initializing: Promise<void> | undefined;
  /** Blobs this store put in the layout (for abort), and whether it created the layout itself. */
  private readonly added = new Set<string>();
  private createdLayout = false;
  private dirExisted = true;
  private initialized = false;

  private constructor(readonly dir: string) {
    this.name = `oci:${dir}`;
  }

  /**
   * Opens a layout. For reading it must exist and be valid. For writing it may not exist yet (or be an
   * empty directory); it is then created at the first push.
   */
  static async open(dir: string, mode: 'read' | 'write'): Promise<LayoutStore> {
    const store = new LayoutStore(resolvePath(dir));
    const entries = await readdir(store.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' && mode === 'write') return undefined;
      if (e.code === 'ENOENT') throw new LadingError('NOT_FOUND', `${store.name}: no such directory`);
      throw fsError(e, 'read', store.dir);
    });
    store.dirExisted = entries !== undefined;
    // A directory holding only our private folder is a layout whose creation was interrupted.
    const visible = entries?.filter((e) => e !== PRIVATE_DIR);
    if (visible === undefined || (visible.length === 0 && mode === 'write')) return store;
    if (!visible.includes('oci-layout')) {
      throw new LadingError(
        'INVALID_LAYOUT',
        mode === 'write'
          ? `refusing to write into ${store.dir}: it is not empty and has no oci-layout file, so it is not an OCI layout`
          : `${store.name} is not an OCI image layout: it has no oci-layout file`,
      );
    }
    parseLayoutFile(await store.readSmall('oci-layout', 4096), `${store.name}/oci-layout`);
    await store.readIndex();
    store.initialized = true;
    return store;
  }

  blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, encoded);
  }

  async resolve(ref: string | undefined): Promise<Descriptor> {
    const index = await this.readIndex();
    const found = findInIndex(index, ref, this.name);
    if (found !== undefined) return found;
    // A digest not listed in index.json may still be a manifest blob (one platform of an index).
    const digest = ref as string;
    const bytes = await this.readBlobIfPresent(digest, MAX_MANIFEST_BYTES);
    if (bytes === undefined) throw new LadingError('NOT_FOUND', `${digest} not found in ${this.name}`);
    verifyBytes(bytes, { digest }, `manifest in ${this.name}`);
    const mediaType = mediaTypeField(bytes);
    if (mediaType === undefined || !isManifestMediaType(mediaType)) {
      throw new LadingError('NOT_FOUND', `${digest} in ${this.name} is a blob, not a manifest or index`);
    }
    return { mediaType, digest: digest as Descriptor['digest'], size: bytes.byteLength };
  }

  async fetchManifest(desc: Descriptor): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) throw manifestTooLarge(desc, this.name);
    const bytes = await this.readBlobIfPresent(desc.digest, MAX_MANIFEST_BYTES);
    if (bytes === undefined) throw blobUnknown(desc, this.name);
    verifyBytes(bytes, desc, `manifest in ${this.name}:`);
    return bytes;
  }

  async fetchBlob(desc: Descriptor): Promise<Readable> {
    const path = await this.localBlobPath(desc);
    if (path === undefined) throw blobUnknown(desc, this.name);
    return openVerifiedFile(path, desc, `blob in ${this.name}:`, READ_CHUNK);
  }

  async localBlobPath(desc: Descriptor): Promise<string | undefined> {
    const path = this.blobPath(desc.digest);
    const st = await stat(path).catch(() => undefined);
    return st?.isFile() ? path : undefined;
  }

  async has(desc: Descriptor): Promise<boolean> {
    const st = await stat(this.blobPath(desc.digest)).catch(() => undefined);
    return st?.isFile() === true && st.size === desc.size;
  }

  async pushBlob(desc: Descriptor, content: Readable): Promise<void> {
    const { path: tmp, fh } = await this.createTemp(desc.digest);
    try {
      // flush: fsync before close, so the rename below never publishes bytes still only in the page cache.
      const file = createWriteStream('', { fd: fh, flush: true, highWaterMark: READ_CHUNK });
      // A stream that verifies itself (any store's fetchBlob) is not hashed twice: it errors instead of
      // ending on a mismatch, and nothing is committed unless the pipeline ends cleanly.
      const verifying = content instanceof DigestVerifier && content.expectedDigest === desc.digest && content.expectedSize === desc.size;
      await (verifying
        ? pipeline(content, file)
        : pipeline(content, new DigestVerifier(desc.digest, desc.size, 'blob from source:'), file));
      await this.commitBlob(tmp, desc.digest);
    } catch (e) {
      await rm(tmp, { force: true });
      throw fsError(e, 'write', tmp);
    }
  }

  /**
   * Takes a blob from a local file by hard link when both are on one filesystem (no bytes copied), or
   * by copy (a reflink where the filesystem supports it) otherwise. Either way the result is re-hashed
   * before it gets its name, so a corrupt source is refused exactly as a streamed one would be.
   */
  async pushBlobFromFile(desc: Descriptor, source: string): Promise<'linked' | 'copied'> {
    const tmp = await this.tempPath(desc.digest);
    let how = 'linked' as 'linked' | 'copied';
    try {
      await this.inTempDir(() => link(source, tmp)).catch(async (e: NodeJS.ErrnoException) => {
        if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'].includes(e.code ?? '')) throw e;
        how = 'copied';
        await copyFile(source, tmp, constants.COPYFILE_FICLONE);
      });
      const actual = await digestFile(tmp, parseDigest(desc.digest).algorithm);
      if (actual.size !== desc.size) throw sizeMismatch(`blob in ${source}:`, desc.size, actual.size);
      if (actual.digest !== desc.digest) throw digestMismatch(`blob in ${source}:`, desc.digest, actual.digest);
      if (how === 'copied') {
        const fh = await open(tmp, 'r+');
        await fh.sync();
        await fh.close();
      }
      await this.commitBlob(tmp, desc.digest);
      return how;
    } catch (e) {
      await rm(tmp, { force: true });
      throw fsError(e, 'write', tmp);
    }
  }

  async pushManifest(desc: Descriptor, bytes: Uint8Array, options: { tags?: readonly string[]; root?: boolean } = {}): Promise<void> {
    verifyBytes(bytes, desc, 'manifest');
    if (!(await this.has(desc))) {
      const { path: tmp, fh } = await this.createTemp(desc.digest);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
        await fh.close();
        await this.commitBlob(tmp, desc.digest);
      } catch (e) {
        await rm(tmp, { force: true });
        throw fsError(e, 'write', tmp);
      }
    }
    const tags = options.tags ?? [];
    if (tags.length > 0 || options.root) await this.updateIndex((index) => withImage(index, desc, tags));
  }

  async referrers(subject: Descriptor): Promise<Descriptor[]> {
    return referrersInIndex(await this.readIndex(), subject.digest, (d) => this.fetchManifest(d));
  }

  async tags(): Promise<string[]> {
    return tagsOf(await this.readIndex());
  }

  /** Reads index.json, validated. A layout being created has an empty one. */
  async readIndex(): Promise<ImageIndex> {
    if (!this.initialized && !(await exists(join(this.dir, 'index.json')))) return EMPTY_LAYOUT_INDEX;
    return parseIndexJson(await this.readSmall('index.json', MAX_MANIFEST_BYTES), `${this.name}/index.json`);
  }

  /** Replaces index.json atomically under the layout lock, re-reading it first so concurrent writers merge. */
  async updateIndex(change: (index: ImageIndex) => ImageIndex): Promise<void> {
    await this.init();
    await withLayoutLock(this.dir, async () => {
      const next = change(await this.readIndex());
      // Blob renames become durable before the index that references them does (power loss, not just kill -9).
      for (const alg of await readdir(join(this.dir, 'blobs')).catch(() => [] as string[])) await syncDir(join(this.dir, 'blobs', alg));
      const { path: tmp, fh } = await this.createTemp('index.json');
      try {
        await fh.writeFile(`${canonicalJson(next)}\n`);
        await fh.sync();
        await fh.close();
        await rename(tmp, join(this.dir, 'index.json'));
        await syncDir(this.dir);
      } catch (e) {
        await rm(tmp, { force: true });
        throw fsError(e, 'write', join(this.dir, 'index.json'));
      }
    });
  }

  async close(): Promise<void> {
    await this.initializing?.catch(() => undefined);
    await this.lease?.release();
    this.lease = undefined;
    this.initializing = undefined;
    // Leave no trace of our private directory when no other writer is using it.
    if ((await liveWriters(this.dir)).length > 0) return;
    for (const sub of ['tmp', 'writers', '']) await rmdirIfEmpty(join(this.dir, PRIVATE_DIR, sub));
  }

  /**
   * Undoes an unfinished write: a layout this store created is removed again, and in an existing layout
   * the blobs this store added that nothing references are deleted, so a failed copy changes nothing on
   * disk. While another process is writing the layout, everything is left for gc instead.
   */
  async abort(): Promise<void> {
    await this.initializing?.catch(() => undefined);
    if (this.lease !== undefined) {
      await withLayoutLock(this.dir, async () => {
        if ((await liveWriters(this.dir)).length > 0) return;
        if (this.createdLayout) {
          for (const name of ['blobs', 'index.json', 'oci-layout']) await rm(join(this.dir, name), { recursive: true, force: true });
          return;
        }
        const keep = await reachable(this, await this.readIndex());
        for (const digest of this.added) if (!keep.blobs.has(digest)) await rm(this.blobPath(digest), { force: true });
      });
    }
    await this.close();
    if (this.createdLayout && !this.dirExisted) await rmdir(this.dir).catch(() => undefined);
  }

  /** Creates the layout on first write and registers this process as a writer (gc waits for writers). */
  private init(): Promise<void> {
    // Memoized: parallel pushes share one initialization and one writer lease.
    this.initializing ??= this.createAndLease().catch((e) => {
      this.initializing = undefined;
      throw e;
    });
    return this.initializing;
  }

  private async createAndLease(): Promise<void> {
    try {
      if (!this.initialized) {
        this.createdLayout = true;
        await mkdir(join(this.dir, 'blobs'), { recursive: true });
        await writeIfAbsent(join(this.dir, 'oci-layout'), `${OCI_LAYOUT_FILE}\n`);
        await writeIfAbsent(join(this.dir, 'index.json'), `${canonicalJson(EMPTY_LAYOUT_INDEX)}\n`);
        this.initialized = true;
      }
      await mkdir(join(this.dir, PRIVATE_DIR, 'tmp'), { recursive: true });
    } catch (e) {
      throw fsError(e, 'create layout', this.dir);
    }
    this.lease = await acquireWriterLease(this.dir);
  }

  /** A new, unused name in the layout's private temp directory (same filesystem as blobs/, so rename is atomic). */
  private async tempPath(hint: string): Promise<string> {
    await this.init();
    const name = `${hint.replace(/^sha\d+:/, '').slice(0, 16)}-${randomBytes(6).toString('hex')}`;
    return join(this.dir, PRIVATE_DIR, 'tmp', name);
  }

  private async createTemp(hint: string): Promise<{ path: string; fh: FileHandle }> {
    const path = await this.tempPath(hint);
    return { path, fh: await this.inTempDir(() => open(path, 'wx')) };
  }

  /**
   * Runs an operation that creates a file in the temp directory. Another process closing its store may
   * remove that directory when it looks idle, so a missing directory is re-created and the call retried.
   */
  private async inTempDir<T>(create: () => Promise<T>): Promise<T> {
    const dir = join(this.dir, PRIVATE_DIR, 'tmp');
    for (let attempt = 0; ; attempt++) {
      try {
        return await create();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 3) throw fsError(e, 'create a file in', dir);
        await mkdir(dir, { recursive: true });
      }
    }
  }

  private async commitBlob(tmp: string, digest: string): Promise<void> {
    const final = this.blobPath(digest);
    await mkdir(join(final, '..'), { recursive: true });
    if (!(await exists(final))) this.added.add(digest);
    await rename(tmp, final);
    // rename(2) does nothing when both names are links to one file; drop the temp name then.
    await unlink(tmp).catch(() => undefined);
  }

  private async readSmall(file: string, limit: number): Promise<Uint8Array> {
    const path = join(this.dir, file);
    const st = await stat(path).catch((e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LadingError('INVALID_LAYOUT', `${this.name} is not a valid OCI image layout: ${file} is missing`);
      }
      throw fsError(e, 'read', path);
    });
    if (st.size > limit) throw new LadingError('INVALID_LAYOUT', `${path} is ${st.size} bytes, over the ${limit}-byte limit`);
    return readFile(path);
  }

  private async readBlobIfPresent(digest: string, limit: number): Promise<Uint8Array | undefined> {
    if (!isDigest(digest)) return undefined;
    const path = this.blobPath(digest);
    const st = await stat(path).catch(() => undefined);
    if (st === undefined || !st.isFile()) return undefined;
    if (st.size > limit) {
      throw new LadingError('MANIFEST_TOO_LARGE', `manifest ${digest} in ${this.name} is ${st.size} bytes, over the 4 MiB limit`);
    }
    return readFile(path);
  }
}

function blobUnknown(desc: Descriptor, storeName: string): LadingError {
  return new LadingError('BLOB_UNKNOWN', `blob ${desc.digest} is missing from ${storeName}`, { digest: desc.digest });
}

function manifestTooLarge(desc: Descriptor, storeName: string): LadingError {
  return new LadingError('MANIFEST_TOO_LARGE', `manifest ${desc.digest} in ${storeName} is ${desc.size} bytes, over the 4 MiB limit`);
}

function mediaTypeField(bytes: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown };
    return typeof v.mediaType === 'string' ? v.mediaType : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeIfAbsent(path: string, content: string): Promise<void> {
  try {
    const fh = await open(path, 'wx');
    await fh.writeFile(content);
    await fh.sync();
    await fh.close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  await fh.sync().finally(() => fh.close());
}

async function rmdirIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined);
}
