/**
 * Block compression, the piece that runs on every core: one function that turns a block of input into
 * independent compressed bytes, used both on the main thread and inside a worker_threads pool, loaded
 * from the same package files in both places so the bytes cannot differ.
 *
 * - gzip: fflate's one-shot deflate per block (no dictionary carried over, so blocks are independent);
 *   every block but the last ends with a sync flush (an empty stored block: byte-aligned, BFINAL clear),
 *   the last with BFINAL: concatenated they form ONE deflate stream, as pigz's blocks do. The sync
 *   flush is written here, not by fflate (see the comment in the block function for why).
 * - zstd: one zstd frame per block (@bokuweb/zstd-wasm's ZSTD_compress); concatenated frames are a
 *   valid zstd stream.
 *
 * The workers run plain CommonJS given as source (eval), so they start the same under tsx and from
 * dist, without a TypeScript loader in the thread.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

export type BlockCodec = 'gzip' | 'zstd';

const require = createRequire(import.meta.url);
export const FFLATE_PATH = require.resolve('fflate');
export const ZSTD_PATH = require.resolve('@bokuweb/zstd-wasm');

/** The version of the package that `resolved` (a file inside it) belongs to. */
export function packageVersion(resolved: string, name: string): string {
  for (let dir = dirname(resolved); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; keep walking up
    }
  }
  throw new Error(`cannot find the version of ${name}`);
}

// The block function, as source: run in workers and (via `new Function`) on the main thread alike.
const BLOCK_FUNCTION = `
// Blocks whose bytes are all but random (a nearly flat byte histogram: already compressed files,
// keys, media) are stored, not deflated: deflate could save at most a few bytes per thousand there, yet
// searching for matches costs as much as on text. The test is exact integer arithmetic on the block
// alone (no floating point whose last bits could differ between engines), so the output stays a
// function of the input: store when the chi-square statistic of the histogram against a uniform one,
// 256 * sum(c^2) / n - n, is below n / 72 (an order-0 entropy above about 7.99 bits per byte).
function nearlyRandom(block) {
  const n = block.length;
  const counts = new Uint32Array(256);
  for (let i = 0; i < n; i++) counts[block[i]]++;
  let squares = 0;
  for (let b = 0; b < 256; b++) squares += counts[b] * counts[b];
  return 72n * 256n * BigInt(squares) < 73n * BigInt(n) * BigInt(n);
}

// Deflate stored blocks (BTYPE 00) of at most 65535 bytes, starting byte-aligned (every block before
// ends byte-aligned) and ending so; BFINAL on the last one when this is the final block.
function stored(block, final) {
  const count = Math.max(1, Math.ceil(block.length / 65535));
  const out = new Uint8Array(block.length + 5 * count);
  let o = 0;
  for (let k = 0; k < count; k++) {
    const part = block.subarray(k * 65535, Math.min(block.length, (k + 1) * 65535));
    out[o] = final && k === count - 1 ? 1 : 0;
    out[o + 1] = part.length & 0xff;
    out[o + 2] = part.length >> 8;
    out[o + 3] = ~part.length & 0xff;
    out[o + 4] = (~part.length >> 8) & 0xff;
    out.set(part, o + 5);
    o += 5 + part.length;
  }
  return out;
}

function makeCompressBlock(fflate, zstd) {
  return function compressBlock(codec, level, block, final) {
    if (codec === 'zstd') return zstd.compress(block, level);
    if (block.length >= 4096 && nearlyRandom(block)) return stored(block, final);
    if (final) return fflate.deflateSync(block, { level });
    // A non-final block must end byte-aligned with BFINAL clear. fflate has no public call for that:
    // its streaming Deflate starts with a zero-filled 32 KiB window it may emit matches into ("invalid
    // distance too far back" in a fresh stream), and its flush(true) misplaces the stored block when
    // the output ends mid-byte (both in 0.8.3). So run deflateSync's own one-shot compressor (the
    // internal p() with a fresh state, as deflateSync does but with the last-block flag clear), then
    // write the sync flush from the bit position fflate leaves in s.r (bit count in the low 3 bits,
    // the pending partial byte above).
    const parts = [];
    const d = new fflate.Deflate({ level }, (chunk) => parts.push(chunk));
    if (typeof d.p !== 'function') throw new Error('unexpected fflate internals: no p()');
    d.s = { l: 0, i: 0, w: 0, z: block.length };
    d.p(block, false);
    const r = d.s.r;
    if (parts.length !== 1 || typeof r !== 'number') throw new Error('unexpected fflate internals: no bit position');
    const bits = r & 7;
    // The partial byte (if any) holding, after its bits, the 3 zero header bits of an empty stored block
    // (one more zero byte when fewer than 3 bits are left), then LEN 0000 and NLEN ffff.
    const head = bits === 0 ? [0] : bits <= 5 ? [r >> 3] : [r >> 3, 0];
    const body = parts[0];
    const out = new Uint8Array(body.length + head.length + 4);
    out.set(body, 0);
    out.set(head.concat([0, 0, 0xff, 0xff]), body.length);
    return out;
  };
}`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
${BLOCK_FUNCTION}
const fflate = require(workerData.fflate);
const zstd = require(workerData.zstd);
const ready = workerData.codec === 'zstd' ? zstd.init() : Promise.resolve();
const compressBlock = makeCompressBlock(fflate, zstd);
parentPort.on('message', (m) => {
  ready.then(() => {
    const out = compressBlock(m.codec, m.level, new Uint8Array(m.buffer, m.offset, m.length), m.final);
    // The input block goes back too, so the caller can fill it again instead of allocating.
    const transfer = out.buffer === m.buffer ? [out.buffer] : [out.buffer, m.buffer];
    parentPort.postMessage({ id: m.id, buffer: out.buffer, offset: out.byteOffset, length: out.length, input: m.buffer }, transfer);
  }).catch((e) => parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) }));
});
`;

type CompressBlock = (codec: BlockCodec, level: number, block: Uint8Array, final: boolean) => Uint8Array;

let inline: { fn: CompressBlock; zstdReady: Promise<void> | undefined } | undefined;

/** Compresses one block on this thread (small inputs: no point starting workers). */
export async function compressBlockHere(codec: BlockCodec, level: number, block: Uint8Array, final: boolean): Promise<Uint8Array> {
  if (inline === undefined) {
    const zstd = require(ZSTD_PATH) as { init: () => Promise<void> };
    const make = new Function(`${BLOCK_FUNCTION}; return makeCompressBlock;`)() as (f: unknown, z: unknown) => CompressBlock;
    inline = { fn: make(require(FFLATE_PATH), zstd), zstdReady: undefined };
  }
  if (codec === 'zstd') {
    const zstd = require(ZSTD_PATH) as { init: () => Promise<void> };
    inline.zstdReady ??= zstd.init();
    await inline.zstdReady;
  }
  return inline.fn(codec, level, block, final);
}

interface Job {
  resolve: (out: Uint8Array) => void;
  /** Gets the input block back once the worker is done with it. */
  recycle?: ((block: Uint8Array) => void) | undefined;
  reject: (e: Error) => void;
}

interface Queued {
  id: number;
  block: Uint8Array;
  final: boolean;
  level: number;
}

/**
 * A fixed set of worker threads compressing blocks; results come back by job id. Workers hold the
 * process open only while they have work (ref'd while busy, unref'd while idle), so a pool can stay
 * around between layers with its JIT-compiled deflate warm (see sharedPool).
 */
export class BlockPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Queued[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(
    size: number,
    private readonly codec: BlockCodec,
  ) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { fflate: FFLATE_PATH, zstd: ZSTD_PATH, codec } });
      w.unref();
      w.on('message', (m: { id: number; buffer?: ArrayBuffer; offset?: number; length?: number; input?: ArrayBuffer; error?: string }) => {
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        w.unref();
        this.idle.push(w);
        this.dispatch();
        if (job === undefined) return;
        if (m.error !== undefined) job.reject(new Error(`compression failed: ${m.error}`));
        else {
          if (m.input !== undefined && m.input !== m.buffer) job.recycle?.(new Uint8Array(m.input));
          job.resolve(new Uint8Array(m.buffer!, m.offset, m.length));
        }
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a compression worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Compresses `block`, which must own its whole ArrayBuffer: the buffer is handed to the worker, and
   * comes back through `recycle` when the worker is done with it.
   */
  run(block: Uint8Array, final: boolean, level: number, recycle?: (block: Uint8Array) => void): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const p = new Promise<Uint8Array>((resolve, reject) => this.jobs.set(id, { resolve, reject, recycle }));
    this.queue.push({ id, block, final, level });
    this.dispatch();
    return p;
  }

  async close(): Promise<void> {
    this.fail(new Error('the compression pool is closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      const { block } = job;
      w.ref();
      w.postMessage(
        {
          id: job.id,
          codec: this.codec,
          level: job.level,
          buffer: block.buffer,
          offset: block.byteOffset,
          length: block.length,
          final: job.final,
        },
        [block.buffer as ArrayBuffer],
      );
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const job of this.jobs.values()) job.reject(e);
    this.jobs.clear();
    this.queue.length = 0;
    for (const w of this.workers) w.unref();
  }
}

const shared = new Map<string, BlockPool>();

/**
 * The process-wide pool for `codec` with `size` workers, started on first use and kept (idle workers
 * do not hold the process open): each layer of a build, each image of a release, reuses warm workers
 * instead of paying thread start-up and JIT warm-up again. A pool that failed is replaced.
 */
export function sharedPool(size: number, codec: BlockCodec): BlockPool {
  const key = `${codec}:${size}`;
  let pool = shared.get(key);
  if (pool === undefined || pool.failed) {
    if (pool !== undefined) void pool.close();
    pool = new BlockPool(size, codec);
    shared.set(key, pool);
  }
  return pool;
}
