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
import { FsVerityHasher, type VerityAlgorithm } from './fsverity.js';
import type { BatchMessage, ResultMessage, Segment } from './verity-worker.js';

const BATCH = 1024 * 1024;
const MAX_IN_FLIGHT = 16 * BATCH;

interface Deferred {
  resolve: (digest: string) => void;
  reject: (e: unknown) => void;
}

export interface VerityPool {
  /**
   * Consumes a file's bytes; resolves once they are handed over, with a promise of the hex digest (in
   * a wrapper: a promise resolved with a promise would wait for it).
   */
  submit(chunks: AsyncIterable<Uint8Array>): Promise<{ digest: Promise<string> }>;
  /** Hands over what is batched and stops the worker once every digest is in. */
  close(): Promise<void>;
  /** Stops at once; digests not in yet are rejected. */
  abort(): Promise<void>;
}

/** Hashes in the calling thread. */
class InlinePool implements VerityPool {
  constructor(private readonly algorithm: VerityAlgorithm) {}

  async submit(chunks: AsyncIterable<Uint8Array>): Promise<{ digest: Promise<string> }> {
    const h = new FsVerityHasher(this.algorithm);
    for await (const c of chunks) h.update(c);
    return { digest: Promise.resolve(h.digest().toString('hex')) };
  }

  async close(): Promise<void> {}

  async abort(): Promise<void> {}
}

class WorkerPool implements VerityPool {
  private readonly worker: Worker;
  private batch: Buffer = Buffer.allocUnsafeSlow(BATCH);
  private readonly free: Buffer[] = [];
  private fill = 0;
  private segments: Segment[] = [];
  private nextId = 0;
  private inFlight = 0;
  private readonly pending = new Map<number, Deferred>();
  private waiters: (() => void)[] = [];
  private failure: unknown;

  constructor(script: string, algorithm: VerityAlgorithm) {
    this.worker = new Worker(script, { workerData: { algorithm } });
    this.worker.on('message', (msg: ResultMessage) => {
      this.inFlight -= msg.buffer.byteLength;
      this.free.push(Buffer.from(msg.buffer));
      for (const [id, digest] of msg.digests) {
        this.pending.get(id)?.resolve(digest);
        this.pending.delete(id);
      }
      this.wake();
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (this.pending.size > 0) this.fail(new Error(`the fs-verity worker exited (code ${code}) with digests outstanding`));
    });
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

  private async flush(): Promise<void> {
    if (this.segments.length === 0) return;
    while (this.inFlight >= MAX_IN_FLIGHT && this.failure === undefined) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure !== undefined) throw this.failure;
    const msg: BatchMessage = { buffer: this.batch.buffer as ArrayBuffer, segments: this.segments };
    this.inFlight += this.batch.buffer.byteLength;
    this.worker.postMessage(msg, [msg.buffer]);
    this.batch = this.free.pop() ?? Buffer.allocUnsafeSlow(BATCH);
    this.fill = 0;
    this.segments = [];
  }

  /** Records `bytes` of file `id` as the next bytes of the batch. */
  private segment(id: number, start: number, end: number, last: boolean): void {
    const prev = this.segments[this.segments.length - 1];
    if (prev !== undefined && prev.id === id && prev.end === start && !prev.last) {
      prev.end = end;
      prev.last = last;
    } else this.segments.push({ id, start, end, last });
  }

  async submit(chunks: AsyncIterable<Uint8Array>): Promise<{ digest: Promise<string> }> {
    if (this.failure !== undefined) throw this.failure;
    const id = this.nextId++;
    const digest = new Promise<string>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    digest.catch(() => undefined); // rejections surface where the digest is awaited
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

  async close(): Promise<void> {
    try {
      await this.flush();
      while (this.pending.size > 0 && this.failure === undefined) await new Promise<void>((r) => this.waiters.push(r));
      if (this.failure !== undefined) throw this.failure;
    } finally {
      await this.worker.terminate();
    }
  }

  async abort(): Promise<void> {
    this.fail(new Error('fs-verity hashing was stopped'));
    await this.worker.terminate();
  }
}

/** A pool hashing with `algorithm`: on a worker thread when it can, else inline. */
export function verityPool(algorithm: VerityAlgorithm): VerityPool {
  const script = fileURLToPath(new URL('./verity-worker.js', import.meta.url));
  if (availableParallelism() < 2 || !existsSync(script)) return new InlinePool(algorithm);
  return new WorkerPool(script, algorithm);
}
