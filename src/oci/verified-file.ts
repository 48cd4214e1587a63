/**
 * Reading blobs Lading keeps as local files (layouts), every byte checked against the descriptor. Large
 * files are hashed on another core (./file-digest-pool.ts) while they are read: the worker reads the
 * same file descriptor, so it hashes the very inode the reader reads, and nothing counts as read until
 * that digest matches. Small files, and machines or runs without the worker, are hashed inline.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { fsError } from '../errors.js';
import {
  type Digest,
  type DigestAlgorithm,
  DigestVerifier,
  digestMismatch,
  digestStream,
  parseDigest,
  sizeMismatch,
  verifiedStream,
} from './digest.js';
import { type HashJob, hashFileRange, offThreadHashing } from './file-digest-pool.js';

/** Hashes a range of an open file off the main thread (file-digest-pool.ts, or a caller's own workers). */
export type FileHasher = (fd: number, algorithm: DigestAlgorithm, start: number, length: number) => HashJob;

/** Below this a worker round trip is not worth it. */
const OFF_THREAD_MIN = 1024 * 1024;

const worthAWorker = (size: number) => size >= OFF_THREAD_MIN && offThreadHashing();

async function openForReading(path: string): Promise<FileHandle> {
  return open(path, 'r').catch((e: unknown) => {
    throw fsError(e, 'open', path);
  });
}

/** A local blob open for reads at any offset, its digest checked by a worker meanwhile. */
export interface VerifiedFile {
  readonly fd: number;
  readonly size: number;
  /** Settles once the worker has hashed the whole file: rejects unless it is exactly the content named. */
  readonly verified: Promise<void>;
  /** Closes the file once the worker is done with it (stopping the worker first when `abandon`). */
  close(abandon?: boolean): Promise<void>;
  /** The reader has reached the end: a hasher that waits for every range of the file can finish. */
  readerDone(): void;
}

/**
 * Opens `path` for random access (tar headers read in place, content skipped or hashed where it lies)
 * while a worker hashes it whole; undefined for a small file or where there is no worker, so the
 * caller streams instead. A file of the wrong size is refused at once. `hasher` lets a caller with
 * workers of its own (the composefs verity pool) hash the file there rather than start another.
 */
export async function openVerifiedFileAt(
  path: string,
  expected: { digest: string; size: number },
  what: string,
  hasher: FileHasher = hashFileRange,
): Promise<VerifiedFile | undefined> {
  if (!worthAWorker(expected.size)) return undefined;
  const { algorithm } = parseDigest(expected.digest);
  const fh = await openForReading(path);
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
    readerDone: () => job.inputDone?.(),
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

/** The file as a stream that errors instead of ending unless its bytes are exactly what `expected` names. */
export async function openVerifiedFile(
  path: string,
  expected: { digest: string; size: number },
  what: string,
  highWaterMark: number,
): Promise<Readable> {
  const file = await openVerifiedFileAt(path, expected, what);
  if (file === undefined) return verifiedStream(createReadStream(path, { highWaterMark }), expected, what);
  const source = createReadStream('', { fd: file.fd, highWaterMark, autoClose: false, start: 0 });
  // The stream counts (a longer file fails on its first excess byte) and ends once the worker agrees.
  const verified = pipeline(source, new DigestVerifier(expected.digest, expected.size, what, file.verified), () => undefined);
  verified.once('close', () => void file.close(true).catch(() => undefined));
  return verified;
}

/** A local file's digest and size: hashed on a worker when it is large enough and one is there. */
export async function digestFile(path: string, algorithm: DigestAlgorithm): Promise<{ digest: Digest; size: number }> {
  const fh = await openForReading(path);
  try {
    const size = (await fh.stat()).size;
    if (!worthAWorker(size)) {
      return await digestStream(fh.createReadStream({ highWaterMark: OFF_THREAD_MIN, autoClose: false, start: 0 }), algorithm);
    }
    const { hex, bytes } = await hashFileRange(fh.fd, algorithm, 0, size).result;
    return { digest: `${algorithm}:${hex}` as Digest, size: bytes };
  } finally {
    await fh.close();
  }
}
