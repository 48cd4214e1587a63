/**
 * The worker side of file-digest-pool.ts: hashes a range of an open file descriptor (fds belong to the
 * process, so the main thread's descriptor is read here directly: the same inode, whatever happens to
 * the path meanwhile). Reads 1 MiB at a time into one reused buffer with pread, and stops early when
 * the requester sets the shared cancel flag (a consumer that abandoned its stream).
 */
import { parentPort } from 'node:worker_threads';
import type { DigestAlgorithm } from './digest.js';
import { digestRange } from './fd-range.js';
import { lowerThreadPriority } from './background-thread.js';

export interface HashRequest {
  id: number;
  fd: number;
  algorithm: DigestAlgorithm;
  start: number;
  /** Bytes to hash from `start`; fewer when the file ends first (the reply says how many). */
  length: number;
  /** Int32Array over a SharedArrayBuffer: non-zero means stop. */
  cancel: Int32Array;
}

export type HashReply = { id: number; hex: string; bytes: number } | { id: number; error: { message: string; code?: string } };

lowerThreadPriority();

const buf = Buffer.allocUnsafeSlow(1024 * 1024);

parentPort!.on('message', (req: HashRequest) => {
  let reply: HashReply;
  try {
    reply = { id: req.id, ...digestRange(req.fd, req.algorithm, req.start, req.length, buf, () => Atomics.load(req.cancel, 0) !== 0) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    reply = { id: req.id, error: { message: err.message, ...(err.code === undefined ? {} : { code: err.code }) } };
  }
  parentPort!.postMessage(reply);
});
