/**
 * The worker side of VerityPool (verity-pool.ts): receives batches of file bytes (transferred, not
 * copied) with the segments that say which file each range belongs to, batches of ranges of open
 * local files to read itself, or the spans of a layer it owns (read once, in order: the layer's own
 * digest and the fs-verity digests of the files given with each span, from the same bytes); hashes
 * them, and answers each message with the digests it completed. An error (a read failing) ends the
 * worker: the pool rejects.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DigestAlgorithm } from '../oci/digest.js';
import { digestRange } from '../oci/fd-range.js';
import { FsVerityHasher, type VerityAlgorithm, verityOfRange } from './fsverity.js';
import { lowerThreadPriority } from '../oci/background-thread.js';
import { LayerPass } from './layer-pass.js';

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

/** A layer this worker owns from now on: it will get the layer's spans, in order, then its end. */
export interface LayerOpen {
  layer: number;
  fd: number;
  size: number;
  algorithm: DigestAlgorithm;
}

/** The layer's bytes up to `upTo` (from where the last span ended); `ranges` (within them, in order) are files to hash too. */
export interface LayerSpan {
  layer: number;
  upTo: number;
  ranges: Range[];
}

/** The rest of the layer: answer [id, `hex:bytes`] with its digest and how many bytes there were. */
export interface LayerEnd {
  layer: number;
  id: number;
}

export type BatchMessage =
  | { buffer: ArrayBuffer; segments: Segment[] }
  | { ranges: Range[] }
  | { digest: DigestJob }
  | { open: LayerOpen }
  | { span: LayerSpan }
  | { end: LayerEnd };

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

const layers = new Map<number, LayerPass>();

function layerMessage(msg: { open: LayerOpen } | { span: LayerSpan } | { end: LayerEnd }): void {
  if ('open' in msg) {
    const { layer, fd, size, algorithm: alg } = msg.open;
    layers.set(layer, new LayerPass(fd, size, alg, algorithm, readBuffer));
    return;
  }
  if ('span' in msg) {
    const digests = layers.get(msg.span.layer)!.advance(msg.span.upTo, msg.span.ranges);
    parentPort!.postMessage({ digests } satisfies ResultMessage);
    return;
  }
  const { hex, bytes } = layers.get(msg.end.layer)!.finish();
  layers.delete(msg.end.layer);
  parentPort!.postMessage({ digests: [[msg.end.id, `${hex}:${bytes}`]] } satisfies ResultMessage);
}

/** Replies [id, `hex:bytes`]: the pool splits it (a short read shows as fewer bytes). */
function hashDigest(job: DigestJob): void {
  const { hex, bytes } = digestRange(job.fd, job.algorithm, job.start, job.length, readBuffer);
  const reply: ResultMessage = { digests: [[job.id, `${hex}:${bytes}`]] };
  parentPort!.postMessage(reply);
}

parentPort!.on('message', (msg: BatchMessage) => {
  if ('open' in msg || 'span' in msg || 'end' in msg) {
    layerMessage(msg);
    return;
  }
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
