/**
 * The worker side of VerityPool (verity-pool.ts): receives batches of file bytes (transferred, not
 * copied) with the segments that say which file each range belongs to, or batches of ranges of open
 * local files to read itself; hashes them with FsVerityHasher, and answers each batch with the
 * digests of the files it completed. An error (a read failing) ends the worker: the pool rejects.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DigestAlgorithm } from '../oci/digest.js';
import { digestRange } from '../oci/fd-range.js';
import { FsVerityHasher, type VerityAlgorithm, verityOfRange } from './fsverity.js';
import { lowerThreadPriority } from '../oci/background-thread.js';

export interface Segment {
  id: number;
  start: number;
  end: number;
  /** The file's last bytes: answer with its digest. */
  last: boolean;
}

/** A whole file that lies in an open local file descriptor (an uncompressed layer read in place). */
export interface Range {
  id: number;
  fd: number;
  start: number;
  length: number;
}

/** A plain digest (a layer's sha256) of a range of an open local file. */
export interface DigestJob extends Range {
  algorithm: DigestAlgorithm;
}

export type BatchMessage = { buffer: ArrayBuffer; segments: Segment[] } | { ranges: Range[] } | { digest: DigestJob };

export interface ResultMessage {
  /** The batch's buffer, handed back to be filled again (fresh pages cost a fault each). */
  buffer?: ArrayBuffer;
  digests: [number, string][];
}

lowerThreadPriority();

const algorithm = (workerData as { algorithm: VerityAlgorithm }).algorithm;
const hashers = new Map<number, FsVerityHasher>();

const readBuffer = Buffer.allocUnsafeSlow(256 * 1024);

/** Reads each range itself (the fd is the main thread's: descriptors belong to the process). */
function hashRanges(ranges: Range[]): void {
  const digests: [number, string][] = ranges.map((r) => [r.id, verityOfRange(r.fd, r.start, r.length, algorithm, readBuffer)]);
  const reply: ResultMessage = { digests };
  parentPort!.postMessage(reply);
}

/** Replies [id, `hex:bytes`]: the pool splits it (a short read shows as fewer bytes). */
function hashDigest(job: DigestJob): void {
  const { hex, bytes } = digestRange(job.fd, job.algorithm, job.start, job.length, readBuffer);
  const reply: ResultMessage = { digests: [[job.id, `${hex}:${bytes}`]] };
  parentPort!.postMessage(reply);
}

parentPort!.on('message', (msg: BatchMessage) => {
  if ('digest' in msg) {
    hashDigest(msg.digest);
    return;
  }
  if ('ranges' in msg) {
    hashRanges(msg.ranges);
    return;
  }
  const view = new Uint8Array(msg.buffer);
  const digests: [number, string][] = [];
  for (const s of msg.segments) {
    let h = hashers.get(s.id);
    if (h === undefined) hashers.set(s.id, (h = new FsVerityHasher(algorithm)));
    if (s.end > s.start) h.update(view.subarray(s.start, s.end));
    if (s.last) {
      digests.push([s.id, h.digest().toString('hex')]);
      hashers.delete(s.id);
    }
  }
  const reply: ResultMessage = { buffer: msg.buffer, digests };
  parentPort!.postMessage(reply, [msg.buffer]);
});
