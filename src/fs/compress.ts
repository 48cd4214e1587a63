/**
 * Layer compression whose bytes depend on nothing but the input and the compressor's id: not on the
 * Node or zlib version (Node's bundled zlib changed its output more than once), not on the machine,
 * not on how many cores compressed it.
 *
 * - gzip: pinned pure-JS deflate (fflate, its version read from the installed package and written into
 *   the id), fixed level, a fixed header (MTIME 0, no name, OS 255 "unknown" as Go writes it, XFL as
 *   GNU gzip sets it for the level). The input is cut into fixed-size blocks deflated independently on
 *   all cores (worker_threads) and joined into ONE gzip member, pigz-style, with the CRC32 and ISIZE of
 *   the whole input, so every gunzip (GNU gzip, Go, Node zlib) reads it as an ordinary gzip file.
 * - zstd: @bokuweb/zstd-wasm (zstd compiled to WebAssembly: the same bytes on every engine), one frame
 *   per block; concatenated frames are a valid zstd stream.
 * - none: the tar as it is.
 *
 * Memory stays bounded: at most four blocks per worker are in flight. Blocks of nearly random bytes
 * are stored rather than deflated (see compress-blocks.ts): the output is still a function of the input.
 */
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { LadingError } from '../errors.js';
import { MediaType } from '../oci/media-types.js';
import {
  type BlockCodec,
  type BlockPool,
  compressBlockHere,
  FFLATE_PATH,
  packageVersion,
  sharedPool,
  ZSTD_PATH,
} from './compress-blocks.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface Compressor {
  /** Everything the output bytes depend on, e.g. `gzip:fflate-0.8.3:level6:block1MiB`: goes into an annotation. */
  readonly id: string;
  readonly mediaType: string;
  compress(input: Readable): Readable;
}

export interface CompressorOptions {
  /** gzip 1..9 (default 6); zstd 1..19 (default 3). */
  level?: number;
  /** Threads compressing blocks (default: every core). Does not change the output. */
  workers?: number;
  /** Bytes of input per independent block (default 1 MiB). Part of the id: it changes the output. */
  blockSize?: number;
}

const MiB = 1024 * 1024;
/**
 * Blocks queued per worker: enough that the workers keep busy while this thread is descheduled or busy
 * reading files (on a loaded machine the threads do not run in lockstep), few enough to bound memory.
 */
const IN_FLIGHT_PER_WORKER = 4;

/** The compressor for `kind`; see the module comment for what its bytes depend on. */
export function compressor(kind: Compression, options: CompressorOptions = {}): Compressor {
  if (kind === 'none') return { id: 'none', mediaType: MediaType.ociLayer, compress: (input) => input };
  if (kind !== 'gzip' && kind !== 'zstd') {
    throw new LadingError('USAGE', `unknown compression "${String(kind)}": use gzip, zstd or none`);
  }
  const level = options.level ?? (kind === 'gzip' ? 6 : 3);
  const [lo, hi] = kind === 'gzip' ? [1, 9] : [1, 19];
  if (!Number.isInteger(level) || level < lo || level > hi) {
    throw new LadingError('USAGE', `invalid ${kind} level ${level}: use ${lo} to ${hi}`);
  }
  const blockSize = options.blockSize ?? MiB;
  if (!Number.isInteger(blockSize) || blockSize < 64 * 1024 || blockSize > 64 * MiB) {
    throw new LadingError('USAGE', `invalid block size ${blockSize}: use 64 KiB to 64 MiB`);
  }
  const workers = Math.max(1, options.workers ?? availableParallelism());
  const block = blockSize % MiB === 0 ? `${blockSize / MiB}MiB` : `${blockSize / 1024}KiB`;
  const engine =
    kind === 'gzip' ? `fflate-${packageVersion(FFLATE_PATH, 'fflate')}` : `zstd-wasm-${packageVersion(ZSTD_PATH, '@bokuweb/zstd-wasm')}`;
  return {
    id: `${kind}:${engine}:level${level}:block${block}`,
    mediaType: kind === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd,
    compress: (input) => Readable.from(compressStream(input, kind, level, blockSize, workers), { objectMode: false, highWaterMark: MiB }),
  };
}

async function* compressStream(
  input: Readable,
  codec: BlockCodec,
  level: number,
  blockSize: number,
  workers: number,
): AsyncGenerator<Buffer> {
  const gzip = codec === 'gzip';
  if (gzip) yield gzipHeader(level);
  let crc = 0;
  let total = 0;
  const free: Uint8Array<ArrayBuffer>[] = [];
  const recycle = (b: Uint8Array): void => {
    if (b.byteLength === blockSize && b.buffer instanceof ArrayBuffer) free.push(new Uint8Array(b.buffer));
  };
  let block = new Uint8Array(blockSize);
  let fill = 0;
  let pool: BlockPool | undefined;
  const inflight: Promise<Uint8Array>[] = [];
  const submit = (b: Uint8Array, final: boolean): void => {
    pool ??= sharedPool(workers, codec);
    const p = pool.run(b, final, level, recycle);
    p.catch(() => undefined); // awaited in order below; this only keeps a failure from going unhandled meanwhile
    inflight.push(p);
  };
  // The pool is shared and outlives this stream (see sharedPool); blocks still in flight when the
  // stream is abandoned finish and are dropped.
  for await (const c of input) {
    const chunk = c as Uint8Array;
    if (gzip) crc = crc32(chunk, crc);
    total += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(blockSize - fill, chunk.length - off);
      block.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === blockSize) {
        submit(block, false);
        block = free.pop() ?? new Uint8Array(blockSize);
        fill = 0;
        while (inflight.length >= workers * IN_FLIGHT_PER_WORKER) yield toBuffer(await inflight.shift()!);
      }
    }
  }
  const last = block.slice(0, fill);
  if (pool === undefined) {
    yield toBuffer(await compressBlockHere(codec, level, last, true));
  } else {
    submit(last, true);
    while (inflight.length > 0) yield toBuffer(await inflight.shift()!);
  }
  if (gzip) {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(total % 2 ** 32, 4);
    yield trailer;
  }
}

function gzipHeader(level: number): Buffer {
  // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=255
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

type Crc32 = (data: Uint8Array, value?: number) => number;
const nativeCrc32 = (zlib as unknown as { crc32?: Crc32 }).crc32;
let table: Uint32Array | undefined;

/** CRC-32 (IEEE), continuing from `value`: zlib.crc32 when Node has it (20.15+), else a table. */
export function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc32 !== undefined) return nativeCrc32(data, value);
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
