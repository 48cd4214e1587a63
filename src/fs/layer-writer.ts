/**
 * A FileTree into a store as one layer blob: the deterministic tar, its diff_id and the compressed
 * digest computed in one streaming pass, the compressed bytes spooled to a temp file (the digest must
 * be known before a store accepts a blob) and pushed from there (a layout hard-links it).
 *
 * The layer cache makes a rebuild with nothing changed cheap: compressing is the expensive step, and the
 * same tar compressed by the same compressor gives the same bytes, so compressed blobs are kept by
 * (diff_id, compressor id). With a cache, the tar is first streamed through sha256 alone (reading the
 * files, no compression); on a hit the blob already in the store, or the cached copy, is used as it is.
 *
 * Cache layout (`$XDG_CACHE_HOME/lading/layers`, else `~/.cache/lading/layers`):
 *   entries/<sha256 of "diffId\ncompressorId">.json  {diffId, compressor, mediaType, digest, size}
 *   blobs/sha256/<hex>                               the compressed blob (hard-linked with the layout's when it can be)
 * Everything is written to a temp file and renamed into place; a cache entry that does not parse, or a
 * cached blob whose bytes do not match its digest (checked as it is pushed), is dropped and the layer
 * compressed again. Nothing evicts entries; deleting the directory is always safe.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipe, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError, isLadingError } from '../errors.js';
import { type Digest, digestStream, isDigest, parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { isLocalBlobSink, type Store } from '../store/store.js';
import { type Compression, compressor } from './compress.js';
import { type TarWriteOptions, writeTar } from './tar-writer.js';
import type { FileTree } from './tree.js';

export interface LayerResult {
  /** The compressed blob as pushed; mediaType by compression. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar: what the image config's rootfs.diff_ids lists. */
  diffId: Digest;
  /** The compressor id (e.g. `gzip:fflate-0.8.3:level6:block1MiB`), for an annotation. */
  compressor: string;
  /** True when the compressed blob came from the cache (or was already in the store) instead of being compressed. */
  cached: boolean;
}

export interface WriteLayerOptions {
  compression?: Compression;
  /** gzip/zstd level (compressor defaults). */
  level?: number;
  /** Compression threads (default: every core). */
  workers?: number;
  clampMtime?: number;
  /** The layer cache directory; default `defaultLayerCacheDir()`; false: no cache. */
  cacheDir?: string | false;
  openContent?: TarWriteOptions['openContent'];
}

/** `$XDG_CACHE_HOME/lading/layers`, else `~/.cache/lading/layers`. */
export function defaultLayerCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return xdg !== undefined && xdg !== '' ? join(xdg, 'lading', 'layers') : join(homedir(), '.cache', 'lading', 'layers');
}

export async function writeLayer(store: Store, tree: FileTree, options: WriteLayerOptions = {}): Promise<LayerResult> {
  const comp = compressor(options.compression ?? 'gzip', {
    ...(options.level !== undefined && { level: options.level }),
    ...(options.workers !== undefined && { workers: options.workers }),
  });
  const tarOptions: TarWriteOptions = {
    ...(options.clampMtime !== undefined && { clampMtime: options.clampMtime }),
    ...(options.openContent !== undefined && { openContent: options.openContent }),
  };
  const cacheDir = options.cacheDir === false || comp.id === 'none' ? undefined : (options.cacheDir ?? defaultLayerCacheDir());

  if (cacheDir !== undefined) {
    const { digest: diffId } = await digestStream(writeTar(tree, tarOptions));
    const hit = await cachedLayer(store, cacheDir, diffId, comp.id);
    if (hit !== undefined) return { descriptor: hit, diffId, compressor: comp.id, cached: true };
  }

  const spoolDir = cacheDir !== undefined ? await usableDir(join(cacheDir, 'tmp')) : undefined;
  const tmp = join(spoolDir ?? tmpdir(), `lading-layer-${randomBytes(8).toString('hex')}.tmp`);
  try {
    const diff = new HashTap();
    const blob = new HashTap();
    const tar = pipe(writeTar(tree, tarOptions), diff, () => undefined);
    await pipeline(comp.compress(tar), blob, createWriteStream(tmp)).catch((e: unknown) => {
      throw fsError(e, 'write', tmp);
    });
    const diffId = diff.digest();
    const descriptor: Descriptor = { mediaType: comp.mediaType, digest: blob.digest(), size: blob.bytes };
    if (!(await store.has(descriptor))) await pushFromFile(store, descriptor, tmp);
    if (cacheDir !== undefined) await remember(cacheDir, diffId, comp.id, descriptor, tmp);
    return { descriptor, diffId, compressor: comp.id, cached: false };
  } finally {
    await rm(tmp, { force: true });
  }
}

async function pushFromFile(store: Store, desc: Descriptor, path: string): Promise<void> {
  if (isLocalBlobSink(store)) await store.pushBlobFromFile(desc, path);
  else await store.pushBlob(desc, createReadStream(path, { highWaterMark: 1024 * 1024 }));
}

function entryPath(cacheDir: string, diffId: string, compressorId: string): string {
  const key = createHash('sha256').update(`${diffId}\n${compressorId}`).digest('hex');
  return join(cacheDir, 'entries', `${key}.json`);
}

function blobPath(cacheDir: string, digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return join(cacheDir, 'blobs', algorithm, encoded);
}

/** The cached compressed layer, made present in `store`; undefined on a miss or a bad cache entry. */
async function cachedLayer(store: Store, cacheDir: string, diffId: Digest, compressorId: string): Promise<Descriptor | undefined> {
  const path = entryPath(cacheDir, diffId, compressorId);
  const desc = await readFile(path, 'utf8').then(
    (text) => parseEntry(text, diffId, compressorId),
    () => undefined,
  );
  if (desc === undefined) return undefined;
  if (await store.has(desc)) return desc;
  const cached = blobPath(cacheDir, desc.digest);
  const st = await stat(cached).catch(() => undefined);
  if (st?.isFile() !== true || st.size !== desc.size) return undefined;
  try {
    await pushFromFile(store, desc, cached);
    return desc;
  } catch (e) {
    if (!isLadingError(e, 'DIGEST_MISMATCH') && !isLadingError(e, 'SIZE_MISMATCH')) throw e;
    // A corrupt cached blob: forget it and compress again.
    await rm(cached, { force: true }).catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    return undefined;
  }
}

function parseEntry(text: string, diffId: string, compressorId: string): Descriptor | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (v.diffId !== diffId || v.compressor !== compressorId) return undefined;
    if (typeof v.mediaType !== 'string' || typeof v.digest !== 'string' || !isDigest(v.digest)) return undefined;
    if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) return undefined;
    return { mediaType: v.mediaType, digest: v.digest, size: v.size };
  } catch {
    return undefined;
  }
}

/** Records a compressed layer: the blob (linked from the store when it can be, else the spool file), then the entry. Best effort. */
async function remember(cacheDir: string, diffId: Digest, compressorId: string, desc: Descriptor, spool: string): Promise<void> {
  try {
    const target = blobPath(cacheDir, desc.digest);
    await mkdir(join(target, '..'), { recursive: true });
    const have = await stat(target).catch(() => undefined);
    // The spool file is what the store linked (a layout), so renaming it shares the bytes with the store.
    if (have?.size !== desc.size) await rename(spool, target);
    const entry = entryPath(cacheDir, diffId, compressorId);
    await mkdir(join(entry, '..'), { recursive: true });
    const tmp = `${entry}.${randomBytes(6).toString('hex')}.tmp`;
    const body = { diffId, compressor: compressorId, mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    await writeFile(tmp, `${JSON.stringify(body)}\n`);
    await rename(tmp, entry);
  } catch {
    // The cache only saves time: a read-only or full cache directory must not fail the build.
  }
}

async function usableDir(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true });
    return dir;
  } catch {
    return undefined;
  }
}

/** A pass-through that hashes (sha256) and counts. */
class HashTap extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}` as Digest;
  }
}
