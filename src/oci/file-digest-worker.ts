/**
 * The worker side of file-digest-pool.ts: hashes a range of an open file descriptor (fds belong to the
 * process, so the main thread's descriptor is read here directly: the same inode, whatever happens to
 * the path meanwhile). Reads 1 MiB at a time into one reused buffer with pread, and stops early when
 * the requester sets the shared cancel flag (a consumer that abandoned its stream).
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { DigestAlgorithm } from './digest.js';
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

const CHUNK = 1024 * 1024;
const buf = Buffer.allocUnsafeSlow(CHUNK);

function hashRange(req: HashRequest): { hex: string; bytes: number } {
  const hash = createHash(req.algorithm);
  let done = 0;
  while (done < req.length && Atomics.load(req.cancel, 0) === 0) {
    const n = readSync(req.fd, buf, 0, Math.min(CHUNK, req.length - done), req.start + done);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    done += n;
  }
  return { hex: hash.digest('hex'), bytes: done };
}

parentPort!.on('message', (req: HashRequest) => {
  let reply: HashReply;
  try {
    reply = { id: req.id, ...hashRange(req) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    reply = { id: req.id, error: { message: err.message, ...(err.code === undefined ? {} : { code: err.code }) } };
  }
  parentPort!.postMessage(reply);
});
