/**
 * fs-verity digests of many files streaming past, hashed on a second core: reading a layer (its blob
 * digest check, decompression, tar parsing) keeps the main thread busy, and SHA-512 over every block
 * costs as much again, so the two run side by side. The caller hands over each file's bytes and gets
 * back a promise of its digest, to await once the whole image has been read.
 *
 * Bytes are copied into 1 MiB batches that are transferred to one worker thread (no second copy) and
 * back again to be reused: at most MAX_IN_FLIGHT bytes are queued, so memory stays bounded whatever the
 * image's size, and the same few buffers are filled again and again (fresh ones cost a page fault per
 * 4 KiB and garbage collections, which measured a quarter of the main thread's time).
 *
 * Layers read in place (uncompressed, in a local layout) never pass through the main thread: each has
 * an owner worker that reads it once, in order, as the main thread parses it (spans up to what is
 * parsed), computing the layer's own digest and the fs-verity digests of the files it is given from
 * the same buffer; files the plan (work-plan.ts) sheds to even out the work, and any file when another
 * worker runs out of work, go to that worker as ranges it reads itself.
 *
 * When the worker script is not there (running from TypeScript sources, as the unit tests do) or the
 * machine has one core, files are hashed in the calling thread instead: same digests, one core.
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
import { HASH_COST, planLayers, READ_COST, VERITY_COST } from './work-plan.js';

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
  /**
   * A plain digest of a range of an open local file (a layer's own sha256), by the same workers; for
   * a whole layer whose files come through submitRange, in the same pass as them where it pays.
   */
  hashFile(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob;
  /** The layers hashFile will be asked for, in order (sizes and digest algorithms), so the work can be shared out evenly. */
  planLayers(layers: { size: number; algorithm: DigestAlgorithm }[]): void;
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

  planLayers(): void {}

  async close(): Promise<void> {}

  async abort(): Promise<void> {}
}

/** Ranges are sent in batches of this many files or bytes, whichever comes first. */
const RANGE_BATCH_FILES = 256;
const RANGE_BATCH_BYTES = 8 * BATCH;

/**
 * A worker with less than this queued (seconds, about 13 MiB of files) gets files from any layer: it
 * would soon have nothing to do (the second worker, before the second layer is reached).
 */
const IDLE = 0.02;

/**
 * A layer read in place whose digest one worker (the owner) computes, reading it once in order; the
 * files in it go to the owner too, to be hashed from the same buffer, unless another worker would
 * be done with them sooner.
 */
interface OwnedLayer {
  layer: number;
  owner: number;
  size: number;
  /** What the owner spends per layer byte (read and digest). */
  byteCost: number;
  /** The result's id, answered at the end. */
  endId: number;
  /**
   * The share of the layer's file bytes its owner hashes (the plan's: 1 when owners alone balance the
   * work); undefined for a layer nobody planned, whose files go wherever the work is least.
   */
  keep: number | undefined;
  /** File bytes submitted so far, and how many of them went to the owner. */
  submitted: number;
  kept: number;
  /** Files for the owner's next span, and everything parsed so far (the next span ends there). */
  ranges: Range[];
  rangeBytes: number;
  knownUpTo: number;
  sentUpTo: number;
}

class WorkerPool implements VerityPool {
  /**
   * Streamed bytes go to the first worker (it keeps each file's hasher between batches); layers and
   * ranges to whichever the plan or the queued work says.
   */
  private readonly workers: Worker[] = [];
  private batch: Buffer = Buffer.allocUnsafeSlow(BATCH);
  private readonly free: Buffer[] = [];
  private fill = 0;
  private segments: Segment[] = [];
  /** Ranges waiting to be sent, per worker, and each worker's estimated seconds of work queued. */
  private readonly batches: { ranges: Range[]; bytes: number }[] = [];
  private readonly load: number[] = [];
  /** Per worker, the cost of each message sent and not answered yet (each message gets one answer). */
  private readonly costs: number[][] = [];
  private readonly layers = new Map<number, OwnedLayer>();
  private nextLayer = 0;
  /** Layers announced by planLayers, in order, each with its owner and share, until hashFile claims it. */
  private plan: { size: number; owner: number; keep: number }[] = [];
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

  /** Every worker, for work they can share (ranges, layers): they take ~0.1 s to start, so all at once. */
  private startAll(): void {
    while (this.workers.length < this.maxWorkers) this.start();
  }

  private start(): void {
    const index = this.workers.length;
    const worker = new Worker(this.script, { workerData: { algorithm: this.algorithm } });
    this.workers.push(worker);
    this.batches.push({ ranges: [], bytes: 0 });
    this.load.push(0);
    this.costs.push([]);
    worker.on('message', (msg: ResultMessage) => {
      this.load[index]! -= this.costs[index]!.shift() ?? 0;
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
  }

  /** Posts a message that will be answered once, counting its cost against the worker until then. */
  private send(index: number, msg: BatchMessage, cost: number, transfer?: ArrayBuffer[]): void {
    this.costs[index]!.push(cost);
    this.workers[index]!.postMessage(msg, transfer);
  }

  /** The worker (other than `except`) with the least work queued; -1 when there is none. */
  private leastLoaded(except?: number): number {
    let best = -1;
    for (let i = 0; i < this.workers.length; i++) if (i !== except && (best < 0 || this.load[i]! < this.load[best]!)) best = i;
    return best;
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
    if (this.workers.length === 0) this.start(); // streamed bytes all go to worker 0
    this.send(0, msg, 0, [msg.buffer]);
    this.batch = this.free.pop() ?? Buffer.allocUnsafeSlow(BATCH);
    this.fill = 0;
    this.segments = [];
  }

  /** Sends worker `index` the ranges batched for it (it reads them itself). */
  private flushRanges(index: number): void {
    const batch = this.batches[index]!;
    if (batch.ranges.length === 0) return;
    this.send(index, { ranges: batch.ranges }, batch.bytes * (READ_COST + VERITY_COST[this.algorithm]));
    batch.ranges = [];
    batch.bytes = 0;
  }

  /** Sends a layer's owner the bytes parsed so far, with the files among them it is to hash. */
  private flushSpan(l: OwnedLayer): void {
    if (l.knownUpTo === l.sentUpTo && l.ranges.length === 0) return;
    const readCost = (l.knownUpTo - l.sentUpTo) * l.byteCost; // counted in the owner's load at the start
    const msg: BatchMessage = { span: { layer: l.layer, upTo: l.knownUpTo, ranges: l.ranges } };
    this.send(l.owner, msg, readCost + l.rangeBytes * VERITY_COST[this.algorithm]);
    l.sentUpTo = l.knownUpTo;
    l.ranges = [];
    l.rangeBytes = 0;
  }

  /** The layer is parsed: its owner reads the rest and answers with the layer's digest. */
  private endLayer(fd: number): void {
    const l = this.layers.get(fd);
    if (l === undefined || this.failure !== undefined) return;
    this.layers.delete(fd);
    this.flushSpan(l);
    this.send(l.owner, { end: { layer: l.layer, id: l.endId } }, (l.size - l.sentUpTo) * l.byteCost);
    for (let i = 0; i < this.workers.length; i++) this.flushRanges(i);
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
    const layer = this.layers.get(fd);
    if (layer !== undefined) layer.knownUpTo = start + length;
    if (this.hereIfSmall(length)) return this.inline.submitRange(fd, start, length);
    const { id, digest } = this.expect();
    this.startAll();
    const range: Range = { id, fd, start, length };
    const verity = length * VERITY_COST[this.algorithm];
    const other = this.leastLoaded(layer?.owner);
    if (layer !== undefined) layer.submitted += length;
    // The owner has the bytes in hand; another worker must read them first.
    const toOwner =
      layer !== undefined &&
      (other < 0 ||
        (layer.keep === undefined
          ? this.load[layer.owner]! <= this.load[other]! + length * READ_COST
          : layer.kept + length <= layer.keep * layer.submitted && this.load[other]! >= IDLE));
    if (toOwner) {
      layer.kept += length;
      this.load[layer.owner]! += verity;
      layer.ranges.push(range);
      layer.rangeBytes += length;
      if (layer.ranges.length >= RANGE_BATCH_FILES || layer.rangeBytes >= RANGE_BATCH_BYTES) this.flushSpan(layer);
    } else {
      this.load[other]! += verity + length * READ_COST;
      const batch = this.batches[other]!;
      batch.ranges.push(range);
      batch.bytes += length;
      if (batch.ranges.length >= RANGE_BATCH_FILES || batch.bytes >= RANGE_BATCH_BYTES) this.flushRanges(other);
    }
    // An owner given no files for a while still gets on with the layer's digest.
    if (layer !== undefined && layer.knownUpTo - layer.sentUpTo >= RANGE_BATCH_BYTES) this.flushSpan(layer);
    return { digest };
  }

  /**
   * A whole layer's digest: its owner (the least busy worker) reads it once, in spans as the caller
   * parses it, and hashes the files submitRange gives it from the same bytes; the caller says when
   * the layer is parsed (`inputDone`), and the digest comes after.
   */
  hashFile(fd: number, algorithm: DigestAlgorithm, start: number, length: number): HashJob {
    if (this.failure !== undefined) return { result: Promise.reject(this.failure as Error), cancel: () => undefined };
    const { id, digest } = this.expect();
    this.startAll();
    const result = digest.then((reply) => {
      const [hex, bytes] = reply.split(':') as [string, string];
      return { hex, bytes: Number(bytes) };
    });
    if (start !== 0 || this.layers.has(fd)) {
      const index = this.leastLoaded();
      const cost = length * (READ_COST + HASH_COST[algorithm]);
      this.load[index]! += cost;
      this.send(index, { digest: { id, fd, algorithm, start, length } }, cost);
      return { result, cancel: () => undefined };
    }
    const planned = this.plan.findIndex((p) => p.size === length);
    const { owner, keep } = planned >= 0 ? this.plan.splice(planned, 1)[0]! : { owner: this.leastLoaded(), keep: undefined };
    const l: OwnedLayer = {
      layer: this.nextLayer++,
      owner,
      keep,
      submitted: 0,
      kept: 0,
      size: length,
      byteCost: READ_COST + HASH_COST[algorithm],
      endId: id,
      ranges: [],
      rangeBytes: 0,
      knownUpTo: 0,
      sentUpTo: 0,
    };
    this.layers.set(fd, l);
    // The whole layer's reading and digest count against the owner from now: later layers and files
    // then go where there is room.
    this.load[owner]! += length * l.byteCost;
    this.workers[owner]!.postMessage({ open: { layer: l.layer, fd, size: length, algorithm } } satisfies BatchMessage); // not answered
    return { result, cancel: () => undefined, inputDone: () => this.endLayer(fd) };
  }

  /** Shares out the layers hashFile will be asked for (see work-plan.ts). */
  planLayers(layers: { size: number; algorithm: DigestAlgorithm }[]): void {
    this.startAll();
    this.plan = planLayers(layers, this.load, this.algorithm).map((p, i) => ({ ...p, size: layers[i]!.size }));
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      for (const fd of [...this.layers.keys()]) this.endLayer(fd);
      for (let i = 0; i < this.workers.length; i++) this.flushRanges(i);
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
