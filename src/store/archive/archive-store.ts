/**
 * `oci-archive:FILE`: an OCI image layout inside a plain tar, the sneakernet format skopeo reads and
 * writes. Reading never unpacks: the tar is indexed by seeking (`tar-index.ts`) and each blob is a ranged,
 * digest-verified read of the file. Writing streams each blob into the tar as it arrives, into a temp file
 * beside the target that is renamed into place only when the archive is complete; an aborted or failed
 * write leaves the target as it was. Like skopeo, writing replaces the whole archive.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream, { type Header as TarHeaders } from 'tar-stream';
import { fsError, LadingError } from '../../errors.js';
import { canonicalJson } from '../../oci/canonical-json.js';
import { DigestVerifier, isDigest, parseDigest, verifiedStream, verifyBytes } from '../../oci/digest.js';
import { isManifestMediaType } from '../../oci/media-types.js';
import { parseIndexJson, parseLayoutFile } from '../../oci/parse.js';
import { type Descriptor, type ImageIndex, MAX_MANIFEST_BYTES } from '../../oci/types.js';
import { EMPTY_LAYOUT_INDEX, findInIndex, OCI_LAYOUT_FILE, referrersInIndex, tagsOf, withImage } from '../layout/index-json.js';
import { READ_CHUNK } from '../layout/layout-store.js';
import type { Store } from '../store.js';
import { ArchiveFile, PartWriter, partName } from './parts.js';
import { indexTar, type RandomAccess, type TarEntry } from './tar-index.js';

function blobEntryName(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `blobs/${algorithm}/${encoded}`;
}

function readOnly(name: string): LadingError {
  return new LadingError('USAGE', `${name} is opened for reading; an archive is written whole by copying into it`);
}

/** An oci-archive opened for reading. */
export class ArchiveReader implements Store {
  readonly name: string;

  private constructor(
    readonly file: string,
    private readonly fh: ArchiveFile,
    private readonly entries: Map<string, TarEntry>,
    private readonly index: ImageIndex,
  ) {
    this.name = `oci-archive:${file}`;
  }

  static async open(file: string): Promise<ArchiveReader> {
    const path = resolvePath(file);
    const name = `oci-archive:${path}`;
    const fh = await ArchiveFile.open(path, name);
    try {
      const entries = await indexTar(fh, name);
      const read = async (entryName: string, limit: number) => {
        const e = entries.get(entryName);
        if (e === undefined || e.type !== 'file') {
          throw new LadingError('INVALID_LAYOUT', `${name} is not an OCI image layout: it has no ${entryName}`);
        }
        if (e.size > limit) throw new LadingError('INVALID_LAYOUT', `${name}: ${entryName} is ${e.size} bytes, over the limit`);
        return readRange(fh, e);
      };
      parseLayoutFile(await read('oci-layout', 4096), `${name}/oci-layout`);
      const index = parseIndexJson(await read('index.json', MAX_MANIFEST_BYTES), `${name}/index.json`);
      return new ArchiveReader(path, fh, entries, index);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async resolve(ref: string | undefined): Promise<Descriptor> {
    const found = findInIndex(this.index, ref, this.name);
    if (found !== undefined) return found;
    const entry = this.blobEntry(ref as string);
    if (entry === undefined || entry.size > MAX_MANIFEST_BYTES) throw new LadingError('NOT_FOUND', `${ref} not found in ${this.name}`);
    const bytes = await readRange(this.fh, entry);
    verifyBytes(bytes, { digest: ref as string }, `manifest in ${this.name}`);
    const mediaType = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: string }).mediaType;
    if (mediaType === undefined || !isManifestMediaType(mediaType)) {
      throw new LadingError('NOT_FOUND', `${ref} in ${this.name} is a blob, not a manifest or index`);
    }
    return { mediaType, digest: ref as Descriptor['digest'], size: bytes.byteLength };
  }

  async fetchManifest(desc: Descriptor): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new LadingError('MANIFEST_TOO_LARGE', `manifest ${desc.digest} in ${this.name} is ${desc.size} bytes, over the 4 MiB limit`);
    }
    const entry = this.requireBlob(desc);
    const bytes = await readRange(this.fh, entry);
    verifyBytes(bytes, desc, `manifest in ${this.name}:`);
    return bytes;
  }

  async fetchBlob(desc: Descriptor): Promise<Readable> {
    const entry = this.requireBlob(desc);
    const what = `blob in ${this.name}:`;
    if (entry.size === 0) return verifiedStream(Readable.from([]), desc, what);
    const end = entry.offset + entry.size - 1;
    return verifiedStream(this.fh.stream(entry.offset, end, READ_CHUNK), desc, what);
  }

  async has(desc: Descriptor): Promise<boolean> {
    return this.blobEntry(desc.digest)?.size === desc.size;
  }

  async referrers(subject: Descriptor): Promise<Descriptor[]> {
    return referrersInIndex(await this.readIndex(), subject.digest, (d) => this.fetchManifest(d));
  }

  async tags(): Promise<string[]> {
    return tagsOf(this.index);
  }

  /** The layout's index.json as read from the archive. */
  async readIndex(): Promise<ImageIndex> {
    return this.index;
  }

  async pushBlob(): Promise<void> {
    throw readOnly(this.name);
  }

  async pushManifest(): Promise<void> {
    throw readOnly(this.name);
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  abort(): Promise<void> {
    return this.close();
  }

  private blobEntry(digest: string): TarEntry | undefined {
    if (!isDigest(digest)) return undefined;
    const e = this.entries.get(blobEntryName(digest));
    return e?.type === 'file' ? e : undefined;
  }

  private requireBlob(desc: Descriptor): TarEntry {
    const e = this.blobEntry(desc.digest);
    if (e === undefined) throw new LadingError('BLOB_UNKNOWN', `blob ${desc.digest} is missing from ${this.name}`, { digest: desc.digest });
    return e;
  }
}

/** An oci-archive being written. Pushes are serialized: a tar is one stream. */
export class ArchiveWriter implements Store {
  readonly name: string;
  private readonly tmp: string;
  private readonly pack = tarStream.pack();
  private readonly done: Promise<void>;
  private readonly written = new Set<string>();
  private readonly dirs = new Set<string>();
  private index: ImageIndex = EMPTY_LAYOUT_INDEX;
  private queue: Promise<unknown> = Promise.resolve();
  private failed: unknown;

  private readonly parts: PartWriter | undefined;

  private constructor(
    readonly file: string,
    splitBytes: number | undefined,
  ) {
    this.name = `oci-archive:${file}`;
    this.tmp = join(dirname(file), `.${basename(file)}.lading-${randomBytes(6).toString('hex')}`);
    this.parts = splitBytes === undefined ? undefined : new PartWriter(this.tmp, splitBytes);
    // flush: each file is fsynced as it is closed, before the rename that publishes it.
    const out = this.parts ?? createWriteStream(this.tmp, { flags: 'wx', flush: true });
    this.done = pipeline(this.pack, out);
    this.done.catch((e) => {
      this.failed ??= fsError(e, 'write', this.file);
    });
  }

  /** Starts writing FILE; with splitBytes, as FILE.part-0001, … of at most that many bytes each. */
  static async create(file: string, options: { splitBytes?: number } = {}): Promise<ArchiveWriter> {
    const w = new ArchiveWriter(resolvePath(file), options.splitBytes);
    await w.serial(() => w.addFile('oci-layout', Buffer.from(`${OCI_LAYOUT_FILE}\n`)));
    return w;
  }

  async resolve(ref: string | undefined): Promise<Descriptor> {
    const found = findInIndex(this.index, ref, this.name);
    if (found === undefined) throw new LadingError('NOT_FOUND', `${ref} not found in ${this.name}`);
    return found;
  }

  async fetchManifest(): Promise<Uint8Array> {
    throw new LadingError('USAGE', `${this.name} is being written and cannot be read yet`);
  }

  async fetchBlob(): Promise<Readable> {
    throw new LadingError('USAGE', `${this.name} is being written and cannot be read yet`);
  }

  async has(desc: Descriptor): Promise<boolean> {
    return this.written.has(desc.digest);
  }

  pushBlob(desc: Descriptor, content: Readable): Promise<void> {
    return this.serial(async () => {
      if (this.written.has(desc.digest)) {
        content.resume();
        return;
      }
      await this.addDirs(desc.digest);
      const entry = this.pack.entry(this.header(blobEntryName(desc.digest), desc.size));
      await pipeline(content, new DigestVerifier(desc.digest, desc.size, 'blob from source:'), entry);
      this.written.add(desc.digest);
    });
  }

  pushManifest(desc: Descriptor, bytes: Uint8Array, options: { tags?: readonly string[]; root?: boolean } = {}): Promise<void> {
    verifyBytes(bytes, desc, 'manifest');
    return this.serial(async () => {
      if (!this.written.has(desc.digest)) {
        await this.addDirs(desc.digest);
        await this.addFile(blobEntryName(desc.digest), Buffer.from(bytes));
        this.written.add(desc.digest);
      }
      const tags = options.tags ?? [];
      if (tags.length > 0 || options.root) this.index = withImage(this.index, desc, tags);
    });
  }

  async tags(): Promise<string[]> {
    return tagsOf(this.index);
  }

  /** Writes index.json and the end of the archive, syncs it, and renames it over the target. */
  async close(): Promise<void> {
    await this.serial(() => this.addFile('index.json', Buffer.from(`${canonicalJson(this.index)}\n`)));
    this.pack.finalize();
    try {
      await this.done;
      // The new archive replaces the old one whole, whichever form (one file or parts) either has.
      const old = await oldForms(this.file);
      if (this.parts === undefined) {
        await rename(this.tmp, this.file);
      } else {
        for (const [i, path] of this.parts.paths.entries()) await rename(path, partName(this.file, i + 1));
      }
      const kept = new Set(this.parts === undefined ? [this.file] : this.parts.paths.map((_, i) => partName(this.file, i + 1)));
      for (const path of old) if (!kept.has(path)) await rm(path, { force: true });
      const dir = await open(dirname(this.file), 'r');
      await dir.sync().finally(() => dir.close());
    } catch (e) {
      await this.removeTemp();
      throw fsError(e, 'write', this.file);
    }
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await this.removeTemp();
  }

  private async removeTemp(): Promise<void> {
    await rm(this.tmp, { force: true });
    for (const path of this.parts?.paths ?? []) await rm(path, { force: true });
  }

  /** Runs `fn` after every earlier push; after any failure the archive is unusable and every push fails. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.failed !== undefined) throw this.failed;
      try {
        return await fn();
      } catch (e) {
        this.failed ??= e;
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private header(name: string, size: number, type: 'file' | 'directory' = 'file'): TarHeaders {
    // Fixed metadata so the same content gives the same archive bytes.
    return {
      name,
      size,
      type,
      mode: type === 'file' ? 0o644 : 0o755,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      linkname: '',
      devmajor: 0,
      devminor: 0,
    };
  }

  private addFile(name: string, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pack.entry(this.header(name, bytes.length), bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  private async addDirs(digest: string): Promise<void> {
    for (const dir of ['blobs/', `blobs/${parseDigest(digest).algorithm}/`]) {
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await new Promise<void>((resolve, reject) =>
        this.pack.entry(this.header(dir, 0, 'directory'), (err) => (err ? reject(err) : resolve())),
      );
    }
  }
}

/** The files an archive at `file` occupies now: the file itself and any parts. */
async function oldForms(file: string): Promise<string[]> {
  const prefix = `${basename(file)}.part-`;
  const names = await readdir(dirname(file)).catch(() => [] as string[]);
  return names.filter((n) => n === basename(file) || n.startsWith(prefix)).map((n) => join(dirname(file), n));
}

async function readRange(fh: RandomAccess, entry: TarEntry): Promise<Uint8Array> {
  const buf = Buffer.alloc(entry.size);
  const { bytesRead } = await fh.read(buf, 0, entry.size, entry.offset);
  if (bytesRead !== entry.size) throw new LadingError('INVALID_ARCHIVE', `truncated entry ${entry.name}`);
  return buf;
}
