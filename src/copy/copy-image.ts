/**
 * Copies one image (a manifest, or an index and the manifests under it) between any two stores.
 *
 * Order is what keeps a destination consistent: every blob a manifest names is present before the
 * manifest is pushed, and every manifest before the index that lists it, so a reader of the destination
 * never finds a manifest whose children are missing, even if the copy dies halfway. Blobs already present
 * are skipped, which is also what makes a re-run after a crash resume where it stopped.
 */
import { addAbortSignal, pipeline, type Readable, Transform } from 'node:stream';
import { LadingError } from '../errors.js';
import { isManifestMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/parse.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, Platform } from '../oci/types.js';
import { isLocalBlobSink, isLocalBlobSource, type Store } from '../store/store.js';
import { concurrencyLimit } from './limit.js';
import type { ProgressListener } from './progress.js';

export interface CopyOptions {
  /**
   * Which images of an index to copy: 'all' keeps the index whole (skopeo --all); a platform list, or
   * by default the host's platform, copies just that image, which becomes the destination's root.
   */
  platforms?: 'all' | Platform[];
  /** Tags to give the copied image in the destination. */
  tags?: readonly string[];
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  /** Link local files instead of copying them when both stores are on one filesystem (default true). */
  link?: boolean;
  onProgress?: ProgressListener;
}

export interface CopyResult {
  /** The descriptor of the image the destination now holds at its root. */
  descriptor: Descriptor;
  manifests: number;
  blobs: { copied: number; linked: number; skipped: number };
  /** Bytes read from the source (linked blobs are re-hashed, so they count). */
  bytes: number;
}

export async function copyImage(src: Store, srcRef: string | undefined, dst: Store, options: CopyOptions = {}): Promise<CopyResult> {
  const limit = concurrencyLimit(options.concurrency ?? 4);
  const result: CopyResult = { descriptor: await src.resolve(srcRef), manifests: 0, blobs: { copied: 0, linked: 0, skipped: 0 }, bytes: 0 };
  const blobCopies = new Map<string, Promise<void>>();
  const emit = options.onProgress ?? (() => undefined);
  // The first failure stops the transfers still running, and the copy returns only once every one of
  // them has settled, so the caller's abort() never races a write still in flight.
  const failure = new AbortController();
  const all = async (work: Promise<unknown>[]): Promise<void> => {
    const results = await Promise.allSettled(work);
    if (failure.signal.aborted) throw failure.signal.reason;
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  };

  const copyBlob = (desc: Descriptor): Promise<void> => {
    let p = blobCopies.get(desc.digest);
    if (p === undefined) {
      p = limit(async () => {
        failure.signal.throwIfAborted();
        if (await dst.has(desc)) {
          result.blobs.skipped++;
          emit({ type: 'blob', digest: desc.digest, size: desc.size, action: 'skipped' });
          return;
        }
        const path = options.link !== false && isLocalBlobSource(src) && isLocalBlobSink(dst) ? await src.localBlobPath(desc) : undefined;
        let action: 'linked' | 'copied' = 'copied';
        if (path !== undefined && isLocalBlobSink(dst)) {
          action = await dst.pushBlobFromFile(desc, path);
        } else {
          const stream = counted(await src.fetchBlob(desc), desc, emit);
          await dst.pushBlob(desc, addAbortSignal(failure.signal, stream));
        }
        result.blobs[action]++;
        result.bytes += desc.size;
        emit({ type: 'blob', digest: desc.digest, size: desc.size, action });
      }).catch((e: unknown) => {
        if (!failure.signal.aborted) failure.abort(e);
        throw e;
      });
      blobCopies.set(desc.digest, p);
    }
    return p;
  };

  const copyManifest = async (desc: Descriptor, tags: readonly string[] | undefined): Promise<Descriptor> => {
    const bytes = await src.fetchManifest(desc);
    const parsed = parseManifest(bytes, desc, `manifest ${desc.digest} in ${src.name}`);
    if (parsed.kind === 'index') {
      if (options.platforms !== 'all') {
        return copyManifest(choosePlatform(parsed.index.manifests, options.platforms, desc, src.name), tags);
      }
      // Children that are not manifests (an index may list any content) are copied as plain blobs.
      await all(parsed.index.manifests.map((m) => (isManifestMediaType(m.mediaType) ? copyManifest(m, undefined) : copyBlob(m))));
    } else {
      const { config, layers } = parsed.manifest;
      await all([config, ...layers].map((d) => copyBlob(d)));
    }
    const pushed: Descriptor = { mediaType: parsed.descriptor.mediaType, digest: desc.digest, size: desc.size };
    await dst.pushManifest(pushed, bytes, tags === undefined ? {} : { tags, root: true });
    result.manifests++;
    emit({ type: 'manifest', digest: desc.digest, mediaType: pushed.mediaType, size: desc.size });
    return pushed;
  };

  result.descriptor = await copyManifest(result.descriptor, options.tags ?? []);
  return result;
}

function choosePlatform(entries: Descriptor[], wanted: Platform[] | undefined, index: Descriptor, storeName: string): Descriptor {
  const wants = wanted ?? [hostPlatform()];
  for (const want of wants) {
    const found = entries.find((m) => m.platform !== undefined && platformMatches(want, m.platform));
    if (found !== undefined) return found;
  }
  const have = entries.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
  throw new LadingError(
    'NO_MATCHING_PLATFORM',
    `no image for ${wants.map(formatPlatform).join(' or ')} in index ${index.digest} of ${storeName} (it has ${have.join(', ') || 'no platforms'}): pass --platform or --all`,
  );
}

/** Passes a blob stream through, reporting bytes at most every 8 MiB; errors travel both ways (see verifiedStream). */
function counted(source: Readable, desc: Descriptor, emit: ProgressListener): Readable {
  let transferred = 0;
  let reported = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      transferred += chunk.length;
      if (transferred - reported >= 8 << 20) {
        reported = transferred;
        emit({ type: 'bytes', digest: desc.digest, transferred, size: desc.size });
      }
      done(null, chunk);
    },
  });
  return pipeline(source, counter, () => undefined);
}
