/**
 * Moving one blob between two stores by the cheapest honest means, in order: already there (skip), a
 * cross-repository mount within one registry, a hard link or reflink between local layouts, and last a
 * verified stream. Every path ends with content checked against its digest.
 */
import { type Readable, Transform, addAbortSignal, pipeline } from 'node:stream';
import { LadingError } from '../errors.js';
import type { Descriptor } from '../oci/types.js';
import { RegistryStore } from '../store/registry/registry-store.js';
import { type Store, isLocalBlobSink, isLocalBlobSource } from '../store/store.js';
import type { ProgressListener } from './progress.js';

export type BlobAction = 'skipped' | 'mounted' | 'linked' | 'copied';

export interface TransferContext {
  link: boolean;
  signal: AbortSignal;
  emit: ProgressListener;
  /** Repositories of the destination registry that hold a blob already (this run's pushes), for mounts. */
  mountSources(digest: string, host: string): string[];
}

/** What would happen to this blob, without doing it (for --dry-run). */
export async function planBlob(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): Promise<BlobAction> {
  if (await dst.has(desc)) return 'skipped';
  if (mountCandidates(src, dst, desc, ctx).length > 0) return 'mounted';
  if (ctx.link && isLocalBlobSource(src) && isLocalBlobSink(dst) && (await src.localBlobPath(desc)) !== undefined) return 'linked';
  return 'copied';
}

export async function transferBlob(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): Promise<BlobAction> {
  ctx.signal.throwIfAborted();
  if (await dst.has(desc)) return 'skipped';
  if (dst instanceof RegistryStore) {
    for (const from of mountCandidates(src, dst, desc, ctx)) {
      if (await dst.mountBlob(desc, from)) return 'mounted';
    }
  }
  if (ctx.link && isLocalBlobSource(src) && isLocalBlobSink(dst)) {
    const path = await src.localBlobPath(desc);
    if (path !== undefined) return dst.pushBlobFromFile(desc, path);
  }
  // A registry that lost an upload session midway gets the blob again from the start, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    try {
      const stream = counted(await src.fetchBlob(desc), desc, ctx.emit);
      await dst.pushBlob(desc, addAbortSignal(ctx.signal, stream));
      return 'copied';
    } catch (e) {
      if (!(e instanceof LadingError && e.context.restart === 'upload') || attempt >= 3 || ctx.signal.aborted) throw e;
    }
  }
}

function mountCandidates(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): string[] {
  if (!(dst instanceof RegistryStore)) return [];
  const out = ctx.mountSources(desc.digest, dst.host).filter((r) => r !== dst.repository);
  if (src instanceof RegistryStore && src.host === dst.host && src.repository !== dst.repository) out.unshift(src.repository);
  return [...new Set(out)];
}

/** Passes a blob stream through, reporting bytes at most every 8 MiB; errors travel both ways. */
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
