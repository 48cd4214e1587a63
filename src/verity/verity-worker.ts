/**
 * The worker side of VerityPool (verity-pool.ts): receives batches of file bytes (transferred, not
 * copied) with the segments that say which file each range belongs to, hashes them with
 * FsVerityHasher, and answers each batch with the digests of the files it completed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FsVerityHasher, type VerityAlgorithm } from './fsverity.js';

export interface Segment {
  id: number;
  start: number;
  end: number;
  /** The file's last bytes: answer with its digest. */
  last: boolean;
}

export interface BatchMessage {
  buffer: ArrayBuffer;
  segments: Segment[];
}

export interface ResultMessage {
  /** The batch's buffer, handed back to be filled again (fresh pages cost a fault each). */
  buffer: ArrayBuffer;
  digests: [number, string][];
}

const algorithm = (workerData as { algorithm: VerityAlgorithm }).algorithm;
const hashers = new Map<number, FsVerityHasher>();

parentPort!.on('message', (msg: BatchMessage) => {
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
