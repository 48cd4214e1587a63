/**
 * Moving one blob between two stores by the cheapest honest means, in order: already there (skip), a
 * cross-repository mount within one registry, a hard link or reflink between local layouts, and last a
 * verified stream. Every path ends with content checked against its digest, once: a registry upload
 * takes a source stream that verifies itself (every store's fetchBlob) as it is, without hashing again.
 */
import { type Readable, Transform, addAbortSignal, pipeline } from 'node:stream';
import { LadingError } from '../errors.js';
import { DigestVerifier } from '../oci/digest.js';
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

export interface TransferHints {
  /**
   * Repositories of the destination registry known to hold the blob: mounting from one is tried before
   * asking whether the destination has it (a mount answers that too, in one request).
   */
  mountFirst?: readonly string[];
}

/** Bytes between progress events. */
const PROGRESS_STEP = 8 << 20;

/** What would happen to this blob, without doing it (for --dry-run). */
export async function planBlob(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): Promise<BlobAction> {
  if (await dst.has(desc)) return 'skipped';
  if (mountCandidates(src, dst, desc, ctx).length > 0) return 'mounted';
  if (ctx.link && isLocalBlobSource(src) && isLocalBlobSink(dst) && (await src.localBlobPath(desc)) !== undefined) return 'linked';
  return 'copied';
}

export async function transferBlob(
  src: Store,
  dst: Store,
  desc: Descriptor,
  ctx: TransferContext,
  hints: TransferHints = {},
): Promise<BlobAction> {
  ctx.signal.throwIfAborted();
  const tried = new Set<string>();
  if (dst instanceof RegistryStore) {
    for (const from of hints.mountFirst ?? []) {
      if (from === dst.repository || tried.has(from)) continue;
      tried.add(from);
      if (await dst.mountBlob(desc, from)) return 'mounted';
    }
  }
  if (await dst.has(desc)) return 'skipped';
  if (dst instanceof RegistryStore) {
    for (const from of mountCandidates(src, dst, desc, ctx)) {
      if (tried.has(from)) continue;
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
      const fetched = await src.fetchBlob(desc);
      if (dst instanceof RegistryStore) {
        await dst.pushBlob(desc, addAbortSignal(ctx.signal, fetched), {
          verified: verifiesItself(fetched, desc),
          onBytes: progress(desc, ctx.emit),
        });
      } else if (verifiesItself(fetched, desc)) {
        // Handed over as it is, so the sink sees a verifying stream and need not hash it again;
        // progress is read off the verifier's byte count instead of a counting stream in between.
        const stop = watchBytes(fetched, progress(desc, ctx.emit));
        try {
          await dst.pushBlob(desc, addAbortSignal(ctx.signal, fetched));
        } finally {
          stop();
        }
      } else {
        await dst.pushBlob(desc, addAbortSignal(ctx.signal, counted(fetched, desc, ctx.emit)));
      }
      return 'copied';
    } catch (e) {
      if (!(e instanceof LadingError && e.context.restart === 'upload') || attempt >= 3 || ctx.signal.aborted) throw e;
    }
  }
}

/**
 * True when `stream` is a digest verifier for exactly this blob (what verifiedStream hands out): it errors
 * instead of ending when the bytes do not match, so a sink that commits only on a clean end may skip
 * hashing them again.
 */
export function verifiesItself(stream: Readable, desc: Descriptor): stream is DigestVerifier {
  return stream instanceof DigestVerifier && stream.expectedDigest === desc.digest && stream.expectedSize === desc.size;
}

function mountCandidates(src: Store, dst: Store, desc: Descriptor, ctx: TransferContext): string[] {
  if (!(dst instanceof RegistryStore)) return [];
  const out = ctx.mountSources(desc.digest, dst.host).filter((r) => r !== dst.repository);
  if (src instanceof RegistryStore && src.host === dst.host && src.repository !== dst.repository) out.unshift(src.repository);
  return [...new Set(out)];
}

/** A byte counter reporting at most every PROGRESS_STEP bytes. */
function progress(desc: Descriptor, emit: ProgressListener): (transferred: number) => void {
  let reported = 0;
  return (transferred) => {
    if (transferred - reported < PROGRESS_STEP) return;
    reported = transferred;
    emit({ type: 'bytes', digest: desc.digest, transferred, size: desc.size });
  };
}

/** Reports a verifier's byte count a few times a second until stopped. */
function watchBytes(verifier: DigestVerifier, report: (transferred: number) => void): () => void {
  const timer = setInterval(() => report(verifier.bytes), 250);
  timer.unref();
  return () => clearInterval(timer);
}

/** Passes a blob stream through, reporting bytes at most every 8 MiB; errors travel both ways. */
function counted(source: Readable, desc: Descriptor, emit: ProgressListener): Readable {
  let transferred = 0;
  const report = progress(desc, emit);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      transferred += chunk.length;
      report(transferred);
      done(null, chunk);
    },
  });
  return pipeline(source, counter, () => undefined);
}
