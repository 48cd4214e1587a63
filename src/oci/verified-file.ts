/**
 * A local file's bytes as a stream that errors instead of ending unless they are exactly what a
 * descriptor names: the one way Lading reads blobs it keeps as files (layouts). Large files are hashed
 * on another core as they are read (./file-digest-pool.ts): the worker reads the same descriptor, so
 * it hashes the very inode the stream reads, and the stream does not end until that digest matches.
 * Small files, and machines or runs without the worker, are hashed inline by the DigestVerifier.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { fsError } from '../errors.js';
import { type Digest, DigestVerifier, digestMismatch, digestStream, parseDigest, sizeMismatch, verifiedStream } from './digest.js';
import { type HashJob, hashFileRange, offThreadHashing } from './file-digest-pool.js';

/** Hashes a range of an open file off the main thread (file-digest-pool.ts, or a caller's own workers). */
export type FileHasher = (fd: number, algorithm: 'sha256' | 'sha512', start: number, length: number) => HashJob;

/** Below this a worker round trip is not worth it. */
const OFF_THREAD_MIN = 1024 * 1024;

export async function openVerifiedFile(
  path: string,
  expected: { digest: string; size: number },
  what: string,
  highWaterMark: number,
): Promise<Readable> {
  if (expected.size < OFF_THREAD_MIN || !offThreadHashing()) {
    return verifiedStream(createReadStream(path, { highWaterMark }), expected, what);
  }
  const { algorithm } = parseDigest(expected.digest);
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fsError(e, 'open', path);
  });
  // A longer file is caught by the stream's own count, on its first excess byte.
  const job = hashFileRange(fh.fd, algorithm, 0, expected.size);
  const digest = job.result.then((r) => `${algorithm}:${r.hex}`);
  const source = fh.createReadStream({ highWaterMark, autoClose: false, start: 0 });
  const verified = pipeline(source, new DigestVerifier(expected.digest, expected.size, what, digest), () => undefined);
  // The descriptor stays open until both the stream and the worker are done with it.
  verified.once('close', () => {
    job.cancel();
    void job.result.catch(() => undefined).finally(() => fh.close().catch(() => undefined));
  });
  return verified;
}

/** A local blob open for reads at any offset, its digest checked by a worker meanwhile. */
export interface VerifiedFile {
  readonly fd: number;
  readonly size: number;
  /** Settles once the worker has hashed the whole file: rejects unless it is exactly the content named. */
  readonly verified: Promise<void>;
  /** Closes the file once the worker is done with it (stopping the worker first when `abandon`). */
  close(abandon?: boolean): Promise<void>;
}

/**
 * Opens `path` for random access (tar headers read in place, content skipped or hashed where it lies)
 * while a worker hashes it whole; undefined for a small file or where there is no worker, so the
 * caller streams instead.
 * A file of the wrong size is refused at once. `hasher` lets a caller with workers of its own (the
 * composefs verity pool) hash the file there rather than start another.
 */
export async function openVerifiedFileAt(
  path: string,
  expected: { digest: string; size: number },
  what: string,
  hasher: FileHasher = hashFileRange,
): Promise<VerifiedFile | undefined> {
  if (expected.size < OFF_THREAD_MIN || !offThreadHashing()) return undefined;
  const { algorithm } = parseDigest(expected.digest);
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fsError(e, 'open', path);
  });
  const size = (await fh.stat()).size;
  if (size !== expected.size) {
    await fh.close();
    throw sizeMismatch(what, expected.size, size);
  }
  const job = hasher(fh.fd, algorithm, 0, size);
  const verified = job.result.then(({ hex, bytes }) => {
    if (bytes !== size) throw sizeMismatch(what, size, bytes);
    const actual = `${algorithm}:${hex}`;
    if (actual !== expected.digest) throw digestMismatch(what, expected.digest, actual);
  });
  verified.catch(() => undefined); // surfaces where it is awaited
  let closing: Promise<void> | undefined;
  return {
    fd: fh.fd,
    size,
    verified,
    close(abandon = false) {
      if (abandon) job.cancel();
      closing ??= job.result.then(
        () => fh.close(),
        () => fh.close(),
      );
      return closing;
    },
  };
}

/** A local file's digest and size: hashed on a worker when it is large enough and one is there. */
export async function digestFile(path: string, algorithm: 'sha256' | 'sha512'): Promise<{ digest: Digest; size: number }> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fsError(e, 'open', path);
  });
  try {
    const size = (await fh.stat()).size;
    if (size < OFF_THREAD_MIN || !offThreadHashing()) {
      return await digestStream(fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false, start: 0 }), algorithm);
    }
    const { hex, bytes } = await hashFileRange(fh.fd, algorithm, 0, size).result;
    return { digest: `${algorithm}:${hex}` as Digest, size: bytes };
  } finally {
    await fh.close();
  }
}
