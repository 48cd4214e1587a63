/**
 * Pulls bytes in the sizes a parser asks for (a header block, the rest of an entry) and counts the
 * position: from a stream (ByteSource, without copying where a chunk already holds them), or from an
 * open local file (FileByteSource), where bytes nobody asks for are skipped without being read.
 */
import { readSync } from 'node:fs';
import type { Readable } from 'node:stream';

/** What the tar reader needs from its input. */
export interface Bytes {
  readonly position: number;
  /** Up to `max` (> 0) bytes, or null at the end of the input. */
  next(max: number): Promise<Buffer | null>;
  /** Exactly `n` bytes, or fewer when the input ends first. */
  readExact(n: number): Promise<Buffer>;
  /** readExact whose bytes may be overwritten by the next call (a header parsed at once): no copy. */
  readTransient(n: number): Promise<Buffer>;
  /** Skips up to `n` bytes; returns how many were there. */
  skip(n: number): Promise<number>;
  /** skip without waiting, where the source can (a local file: it only moves the position). */
  skipNow?(n: number): number;
  /** Goes to the end of the input, so that a check of the whole input completes (or throws). */
  drain(): Promise<void>;
}

export class ByteSource implements Bytes {
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
    return readExact(this, n);
  }

  /** Stream chunks are never reused: the same as readExact. */
  async readTransient(n: number): Promise<Buffer> {
    return readExact(this, n);
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

/** Reads below this size go through one reused window, so the small reads of tar headers cost few syscalls. */
const WINDOW = 8 * 1024;

/**
 * The bytes of an open local file, read with pread (synchronous: a thread-pool round trip per 512-byte
 * header would cost more than the read). Returned buffers are the caller's to keep. `atEnd` runs on
 * drain: the check that the whole file is what it should be (a worker hashing it meanwhile).
 */
export class FileByteSource implements Bytes {
  position = 0;
  private readonly window = Buffer.allocUnsafe(WINDOW);
  private windowStart = 0;
  private windowEnd = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly atEnd: () => Promise<void>,
  ) {}

  async next(max: number): Promise<Buffer | null> {
    const n = Math.min(max, this.size - this.position);
    if (n <= 0) return null;
    if (n > WINDOW / 2) {
      const out = Buffer.allocUnsafe(n);
      const got = readSync(this.fd, out, 0, n, this.position);
      if (got === 0) return null;
      this.position += got;
      return got === n ? out : out.subarray(0, got);
    }
    if (this.position < this.windowStart || this.position >= this.windowEnd) {
      this.fill(this.position);
      if (this.windowEnd === this.position) return null;
    }
    const from = this.position - this.windowStart;
    const take = Math.min(n, this.windowEnd - this.position);
    this.position += take;
    const out = Buffer.allocUnsafe(take);
    this.window.copy(out, 0, from, from + take);
    return out;
  }

  async readExact(n: number): Promise<Buffer> {
    return readExact(this, n);
  }

  /** A view of the window, refilled from `position` unless it holds all `n` bytes already. */
  async readTransient(n: number): Promise<Buffer> {
    if (n > WINDOW) return readExact(this, n);
    const end = Math.min(this.position + n, this.size);
    if (this.position < this.windowStart || end > this.windowEnd) this.fill(this.position);
    const from = this.position - this.windowStart;
    const take = Math.max(0, Math.min(end, this.windowEnd) - this.position);
    this.position += take;
    return this.window.subarray(from, from + take);
  }

  /**
   * `size` bytes at `offset` (already passed or not), copied out: from the window when it holds them
   * (a small file's content right after the header just read), else read on their own.
   */
  readAt(offset: number, size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    if (offset >= this.windowStart && offset + size <= this.windowEnd) {
      this.window.copy(out, 0, offset - this.windowStart, offset - this.windowStart + size);
      return out;
    }
    const got = size === 0 ? 0 : readSync(this.fd, out, 0, size, offset);
    return got === size ? out : out.subarray(0, got);
  }

  private fill(at: number): void {
    const got = readSync(this.fd, this.window, 0, Math.min(WINDOW, this.size - at), at);
    this.windowStart = at;
    this.windowEnd = at + got;
  }

  async skip(n: number): Promise<number> {
    return this.skipNow(n);
  }

  skipNow(n: number): number {
    const got = Math.max(0, Math.min(n, this.size - this.position));
    this.position += got;
    return got;
  }

  async drain(): Promise<void> {
    this.position = this.size;
    await this.atEnd();
  }
}

/** Exactly `n` bytes from `src`, or fewer when it ends first: one buffer when a single read has them. */
async function readExact(src: Pick<Bytes, 'next'>, n: number): Promise<Buffer> {
  const first = n === 0 ? Buffer.alloc(0) : await src.next(n);
  if (first === null) return Buffer.alloc(0);
  if (first.length === n) return first;
  const parts = [first];
  let got = first.length;
  while (got < n) {
    const c = await src.next(n - got);
    if (c === null) break;
    parts.push(c);
    got += c.length;
  }
  return Buffer.concat(parts, got);
}
