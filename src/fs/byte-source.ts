/**
 * Pulls bytes from a stream in the sizes a parser asks for (a header block, the rest of an entry),
 * without copying where a chunk already holds them, and counts the position in the stream.
 */
import type { Readable } from 'node:stream';

export class ByteSource {
  position = 0;
  private readonly it: AsyncIterator<unknown>;
  private current: Buffer | undefined;
  private done = false;

  constructor(input: Readable) {
    this.it = input[Symbol.asyncIterator]();
  }

  /** Up to `max` (> 0) bytes, or null at the end of the input. */
  async next(max: number): Promise<Buffer | null> {
    while (this.current === undefined || this.current.length === 0) {
      if (this.done) return null;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return null;
      }
      const v = r.value;
      this.current = Buffer.isBuffer(v)
        ? v
        : v instanceof Uint8Array
          ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
          : Buffer.from(String(v));
    }
    const chunk = this.current.length <= max ? this.current : this.current.subarray(0, max);
    this.current = this.current.length <= max ? undefined : this.current.subarray(max);
    this.position += chunk.length;
    return chunk;
  }

  /** Exactly `n` bytes, or fewer when the input ends first. */
  async readExact(n: number): Promise<Buffer> {
    const first = n === 0 ? Buffer.alloc(0) : await this.next(n);
    if (first === null) return Buffer.alloc(0);
    if (first.length === n) return first;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const c = await this.next(n - got);
      if (c === null) break;
      parts.push(c);
      got += c.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Skips up to `n` bytes; returns how many were there. */
  async skip(n: number): Promise<number> {
    let got = 0;
    while (got < n) {
      const c = await this.next(n - got);
      if (c === null) break;
      got += c.length;
    }
    return got;
  }

  /** Reads the input to its end (a digest check around it then runs), dropping the bytes. */
  async drain(): Promise<void> {
    while ((await this.next(Number.MAX_SAFE_INTEGER)) !== null);
  }
}
