/**
 * fs-verity digests of many files streaming past, hashed on a second core: reading a layer (its blob
 * digest check, decompression, tar parsing) keeps the main thread busy, and SHA-512 over every block
 * costs as much again, so the two run side by side. The caller hands over each file's bytes and gets
 * back a promise of its digest, to await once the whole image has been read.
 *
 * Bytes are copied into 1 MiB batches that are transferred to one worker thread (no second copy) and
 * back again to be reused: at most MAX_IN_FLIGHT bytes are queued, so memory stays bounded whatever the
 * image's size, and the same few buffers are filled again and again (fresh ones cost a page fault per
 * 4 KiB and garbage collections, which measured a quarter of the main thread's time). When the
 * worker script is not there (running from TypeScript sources, as the tests do) or the machine has
 * one core, files are hashed in the calling thread instead: same digests, one core.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FsVerityHasher, type VerityAlgorithm, verityOfRange } from './fsverity.js';
import type { DigestAlgorithm } from '../oci/digest.js';
import { digestRange } from '../oci/fd-range.js';
import type { HashJob } from '../oci/file-digest-pool.js';
import type { BatchMessage, Range, ResultMessage, Segment } from './verity-worker.js';

const BATCH = 1024 * 1024;
const MAX_IN_FLIGHT = 16 * BATCH;
/**
 * Workers for ranges: as many as cores (the main thread only parses headers while they read), but
 * streamed bytes all go to one (the main thread is busy producing them).
 */
const MAX_WORKERS = 4;
/** Bytes hashed in the calling thread before any worker is started (a worker costs ~0.1 s to start). */
const INLINE_BUDGET = 4 * BATCH;

interface Deferred {
  resolve: (digest: string) => void;
  reject: (e: unknown) => void;
}

export interface VerityPool {
  /**
   * Consumes a file's bytes; resolves once they are handed over, with a promise of the hex digest (in
   * a wrapper: a promise resolved with a promise would wait for it).
   */
  submit(chunks: AsyncIterable<Uint8Array>, size?: number): Promise<{ digest: Promise<string> }>;
  /**
   * A file that lies at `start` in the open local file `fd` (an uncompressed layer read in place): the
   * pool reads it itself. The caller keeps `fd` open until close() has resolved.
   */
  submitRange(fd: number, start: number, length: number): { digest: Promise<string> };
  /** A plain digest of a range of an open local file (a layer's own sha256), by the same workers. */
  hashFile(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob;
  /** Hands over what is batched and stops the worker once every digest is in. */
  close(): Promise<void>;
  /** Stops at once; digests not in yet are rejected. */
  abort(): Promise<void>;
}

/** The inline pool's read buffer: it runs on the calling thread, one range at a time. */
const inlineBuffer = Buffer.allocUnsafe(1024 * 1024);

/** Hashes in the calling thread. */
class InlinePool implements VerityPool {
  constructor(private readonly algorithm: VerityAlgorithm) {}

  async submit(chunks: AsyncIterable<Uint8Array>): Promise<{ digest: Promise<string> }> {
    const h = new FsVerityHasher(this.algorithm);
    for await (const c of chunks) h.update(c);
    return { digest: Promise.resolve(h.digest().toString('hex')) };
  }

  submitRange(fd: number, start: number, length: number): { digest: Promise<string> } {
    try {
      return { digest: Promise.resolve(verityOfRange(fd, start, length, this.algorithm, inlineBuffer)) };
    } catch (e) {
      return { digest: Promise.reject(e as Error) };
    }
  }

  hashFile(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob {
    return { result: Promise.resolve().then(() => digestRange(fd, algorithm, start, length, inlineBuffer)), cancel: () => undefined };
  }

  async close(): Promise<void> {}

  async abort(): Promise<void> {}
}

/** Ranges are sent in batches of this many files or bytes, whichever comes first. */
const RANGE_BATCH_FILES = 256;
const RANGE_BATCH_BYTES = 8 * BATCH;

class WorkerPool implements VerityPool {
  /** Streamed bytes go to the first worker (it keeps each file's hasher between batches); ranges to all in turn. */
  private readonly workers: Worker[] = [];
  private batch: Buffer = Buffer.allocUnsafeSlow(BATCH);
  private readonly free: Buffer[] = [];
  private fill = 0;
  private segments: Segment[] = [];
  private ranges: Range[] = [];
  private rangeBytes = 0;
  private nextWorker = 0;
  private nextId = 0;
  private inFlight = 0;
  private readonly pending = new Map<number, Deferred>();
  private waiters: (() => void)[] = [];
  private failure: unknown;

  /** The first bytes are hashed here: a small image is done before a worker would have started. */
  private readonly inline: InlinePool;
  private inlineLeft = INLINE_BUDGET;

  constructor(
    private readonly script: string,
    private readonly algorithm: VerityAlgorithm,
    private readonly maxWorkers: number,
  ) {
    this.inline = new InlinePool(algorithm);
  }

  /** Takes `size` bytes from the inline budget if they fit. */
  private hereIfSmall(size: number | undefined): boolean {
    if (size === undefined || size > this.inlineLeft) return false;
    this.inlineLeft -= size;
    return true;
  }

  /** The worker for streamed bytes, started on first use. */
  private get first(): Worker {
    if (this.workers.length === 0) this.workers.push(this.start());
    return this.workers[0]!;
  }

  /** Another worker (the first on first use; the others when ranges arrive, which only they can share). */
  private start(): Worker {
    const worker = new Worker(this.script, { workerData: { algorithm: this.algorithm } });
    worker.on('message', (msg: ResultMessage) => {
      if (msg.buffer !== undefined) {
        this.inFlight -= msg.buffer.byteLength;
        this.free.push(Buffer.from(msg.buffer));
      }
      for (const [id, digest] of msg.digests) {
        this.pending.get(id)?.resolve(digest);
        this.pending.delete(id);
      }
      this.wake();
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => {
      if (this.pending.size > 0) this.fail(new Error(`the fs-verity worker exited (code ${code}) with digests outstanding`));
    });
    return worker;
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    for (const d of this.pending.values()) d.reject(e);
    this.pending.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private expect(): { id: number; digest: Promise<string> } {
    const id = this.nextId++;
    const digest = new Promise<string>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    digest.catch(() => undefined); // rejections surface where the digest is awaited
    return { id, digest };
  }

  private async flush(): Promise<void> {
    if (this.segments.length === 0) return;
    while (this.inFlight >= MAX_IN_FLIGHT && this.failure === undefined) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure !== undefined) throw this.failure;
    const msg: BatchMessage = { buffer: this.batch.buffer as ArrayBuffer, segments: this.segments };
    this.inFlight += this.batch.buffer.byteLength;
    this.first.postMessage(msg, [msg.buffer]);
    this.batch = this.free.pop() ?? Buffer.allocUnsafeSlow(BATCH);
    this.fill = 0;
    this.segments = [];
  }

  private flushRanges(): void {
    if (this.ranges.length === 0) return;
    const msg: BatchMessage = { ranges: this.ranges };
    if (this.workers.length < this.maxWorkers) this.workers.push(this.start());
    this.workers[this.nextWorker++ % this.workers.length]!.postMessage(msg);
    this.ranges = [];
    this.rangeBytes = 0;
  }

  /** Records `bytes` of file `id` as the next bytes of the batch. */
  private segment(id: number, start: number, end: number, last: boolean): void {
    const prev = this.segments[this.segments.length - 1];
    if (prev !== undefined && prev.id === id && prev.end === start && !prev.last) {
      prev.end = end;
      prev.last = last;
    } else this.segments.push({ id, start, end, last });
  }

  async submit(chunks: AsyncIterable<Uint8Array>, size?: number): Promise<{ digest: Promise<string> }> {
    if (this.failure !== undefined) throw this.failure;
    if (this.hereIfSmall(size)) return this.inline.submit(chunks);
    const { id, digest } = this.expect();
    for await (const chunk of chunks) {
      let pos = 0;
      while (pos < chunk.length) {
        const n = Math.min(BATCH - this.fill, chunk.length - pos);
        this.batch.set(chunk.subarray(pos, pos + n), this.fill);
        this.segment(id, this.fill, this.fill + n, false);
        this.fill += n;
        pos += n;
        if (this.fill === BATCH) await this.flush();
      }
    }
    this.segment(id, this.fill, this.fill, true);
    return { digest };
  }

  submitRange(fd: number, start: number, length: number): { digest: Promise<string> } {
    if (this.failure !== undefined) throw this.failure;
    if (this.hereIfSmall(length)) return this.inline.submitRange(fd, start, length);
    const { id, digest } = this.expect();
    this.ranges.push({ id, fd, start, length });
    this.rangeBytes += length;
    if (this.ranges.length >= RANGE_BATCH_FILES || this.rangeBytes >= RANGE_BATCH_BYTES) this.flushRanges();
    return { digest };
  }

  hashFile(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob {
    if (this.failure !== undefined) return { result: Promise.reject(this.failure as Error), cancel: () => undefined };
    const { id, digest } = this.expect();
    if (this.workers.length < this.maxWorkers) this.workers.push(this.start());
    const msg: BatchMessage = { digest: { id, fd, algorithm, start, length } };
    this.workers[this.nextWorker++ % this.workers.length]!.postMessage(msg);
    const result = digest.then((reply) => {
      const [hex, bytes] = reply.split(':') as [string, string];
      return { hex, bytes: Number(bytes) };
    });
    return { result, cancel: () => undefined };
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      this.flushRanges();
      while (this.pending.size > 0 && this.failure === undefined) await new Promise<void>((r) => this.waiters.push(r));
      if (this.failure !== undefined) throw this.failure;
    } finally {
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }

  async abort(): Promise<void> {
    this.fail(new Error('fs-verity hashing was stopped'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A pool hashing with `algorithm`: on a worker thread when it can, else inline. */
export function verityPool(algorithm: VerityAlgorithm): VerityPool {
  const script = fileURLToPath(new URL('./verity-worker.js', import.meta.url));
  const cores = availableParallelism();
  if (cores < 2 || !existsSync(script)) return new InlinePool(algorithm);
  return new WorkerPool(script, algorithm, Math.min(cores, MAX_WORKERS));
}
