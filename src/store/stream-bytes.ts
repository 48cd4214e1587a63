import type { Readable } from 'node:stream';
import { LadingError } from '../errors.js';

/** Collects a stream known to be small, refusing to buffer more than `limit` bytes. */
export async function streamToBytes(stream: Readable, limit: number, what: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      stream.destroy();
      throw new LadingError('MANIFEST_TOO_LARGE', `${what} is over the ${limit}-byte limit for JSON documents`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
