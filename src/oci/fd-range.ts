/**
 * Reading a range of an open file in the threads that hash local files (the file-digest and fs-verity
 * workers, and their inline fallbacks): pread into one reused buffer, synchronously, because these
 * threads do nothing else meanwhile and a thread-pool round trip per chunk would cost more than the read.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { DigestAlgorithm } from './digest.js';

/**
 * Feeds `length` bytes of `fd` from `start` to `onChunk` (a view of `buffer`, valid until the next
 * call) until they are read, the file ends, or `stop()` says so; returns how many bytes were read.
 */
export function readRange(
  fd: number,
  start: number,
  length: number,
  buffer: Buffer,
  onChunk: (chunk: Buffer) => void,
  stop: () => boolean = () => false,
): number {
  let done = 0;
  while (done < length && !stop()) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, length - done), start + done);
    if (n === 0) break;
    onChunk(buffer.subarray(0, n));
    done += n;
  }
  return done;
}

/** The digest (hex) of a range of `fd`, and how many bytes it covers (fewer when the file ends first). */
export function digestRange(
  fd: number,
  algorithm: DigestAlgorithm,
  start: number,
  length: number,
  buffer: Buffer,
  stop?: () => boolean,
): { hex: string; bytes: number } {
  const hash = createHash(algorithm);
  const bytes = readRange(fd, start, length, buffer, (chunk) => hash.update(chunk), stop);
  return { hex: hash.digest('hex'), bytes };
}
