/**
 * Compression determinism: the same bytes whatever the number of workers, one gzip member that every
 * gunzip reads (node zlib, GNU gzip, a raw inflate of the single deflate stream), the fixed header,
 * zstd frames that `zstd -d` and fzstd read, and failures that propagate instead of hanging.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { decompress as fzstdDecompress } from 'fzstd';
import { isLadingError } from '../../src/errors.js';
import { compressor, crc32 } from '../../src/fs/compress.js';
import { MediaType } from '../../src/oci/media-types.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, sha256, tool } from './fs-helpers.js';

const MiB = 1024 * 1024;

/** Mixed content: text, zeros and incompressible bytes, so blocks end at every kind of bit position. */
function mixed(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = 12345;
  for (let i = 0; i < bytes; i++) {
    const region = Math.floor(i / 70_000) % 3;
    if (region === 0) out[i] = 97 + ((i * 7 + (i >> 5)) % 26);
    else if (region === 1) out[i] = i % 1000 < 600 ? 0 : i & 0xff;
    else {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
  }
  return out;
}

/** Feeds `data` in uneven chunks, so block boundaries never line up with chunk boundaries. */
function chunked(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      let pos = 0;
      let n = 1;
      while (pos < data.length) {
        const size = ((n * 7919) % 300_000) + 1;
        yield data.subarray(pos, pos + size);
        pos += size;
        n++;
      }
    })(),
  );
}

describe('gzip compressor', () => {
  it('gives the same bytes with 1 and 2 workers, whatever the chunking, and one member every gunzip reads', async () => {
    for (const size of [0, 1000, MiB, 2 * MiB, 3 * MiB + 12_345]) {
      const data = mixed(size);
      const one = await collect(compressor('gzip', { workers: 1 }).compress(Readable.from([data])));
      const two = await collect(compressor('gzip', { workers: 2 }).compress(chunked(data)));
      assert.deepEqual(two, one, `size ${size}`);
      assert.deepEqual(gunzipSync(one), data, `node zlib reads size ${size}`);
      // One member: the body is a single raw deflate stream, the trailer the CRC and length of all input.
      assert.deepEqual(inflateRawSync(one.subarray(10, one.length - 8)), data);
      assert.equal(one.readUInt32LE(one.length - 8), crc32(data));
      assert.equal(one.readUInt32LE(one.length - 4), size);
    }
  });

  it('stores blocks of random bytes instead of deflating them, still one member that gunzips', async () => {
    const { randomBytes } = await import('node:crypto');
    const data = Buffer.concat([randomBytes(2 * MiB), Buffer.from('text '.repeat(200_000)), randomBytes(100_000)]);
    const one = await collect(compressor('gzip', { workers: 1 }).compress(Readable.from([data])));
    const two = await collect(compressor('gzip', { workers: 2 }).compress(chunked(data)));
    assert.deepEqual(two, one);
    assert.deepEqual(gunzipSync(one), data);
    assert.deepEqual(inflateRawSync(one.subarray(10, one.length - 8)), data);
    // Two random 1 MiB blocks stored (5 bytes per 64 KiB), the text block deflated to almost nothing.
    const storedBytes = 2 * (MiB + 5 * 17);
    assert.ok(one.length > storedBytes && one.length < storedBytes + 120_000, `size ${one.length}`);
  });

  it('is read by GNU gzip, and writes a fixed header (no name, MTIME 0, OS 255)', async () => {
    const dir = await tempDir();
    const data = mixed(2 * MiB + 5);
    const gz = await collect(compressor('gzip', { workers: 2 }).compress(Readable.from([data])));
    await writeFile(join(dir, 'x.gz'), gz);
    const listed = await tool('gzip', '-lv', join(dir, 'x.gz'));
    assert.match(listed, new RegExp(`defla [0-9a-f]{8} .* ${data.length} `));
    await tool('gzip', '-t', join(dir, 'x.gz'));
    assert.equal(sha256(await collectGunzip(join(dir, 'x.gz'))), sha256(data));
    assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    const best = await collect(compressor('gzip', { level: 9, workers: 1 }).compress(Readable.from([Buffer.from('x')])));
    assert.equal(best[8], 2, 'XFL 2 at level 9, as gzip -9');
    const fast = await collect(compressor('gzip', { level: 1, workers: 1 }).compress(Readable.from([Buffer.from('x')])));
    assert.equal(fast[8], 4, 'XFL 4 at level 1');
  });

  it('names everything its bytes depend on in its id, and not the worker count', () => {
    const a = compressor('gzip', { workers: 1 });
    assert.equal(a.id, 'gzip:fflate-0.8.3:level6:block1MiB');
    assert.equal(compressor('gzip', { workers: 7 }).id, a.id);
    assert.equal(compressor('gzip', { level: 9, blockSize: 512 * 1024 }).id, 'gzip:fflate-0.8.3:level9:block512KiB');
    assert.equal(a.mediaType, MediaType.ociLayerGzip);
    const none = compressor('none');
    assert.equal(none.id, 'none');
    assert.equal(none.mediaType, MediaType.ociLayer);
  });

  it('refuses bad levels, block sizes and kinds', () => {
    for (const [kind, options, message] of [
      ['gzip', { level: 0 }, /invalid gzip level 0: use 1 to 9/],
      ['zstd', { level: 25 }, /invalid zstd level 25: use 1 to 19/],
      ['gzip', { blockSize: 1000 }, /invalid block size 1000/],
      ['brotli', {}, /unknown compression "brotli": use gzip, zstd or none/],
    ] as const) {
      assert.throws(
        () => compressor(kind as 'gzip', options),
        (e: unknown) => isLadingError(e, 'USAGE') && message.test((e as Error).message),
      );
    }
  });

  it('fails, and stops its workers, when the input fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield mixed(3 * MiB);
        throw new Error('source broke');
      })(),
    );
    await assert.rejects(collect(compressor('gzip', { workers: 2 }).compress(failing)), /source broke/);
  });
});

describe('zstd compressor', () => {
  it('gives the same frames with 1 and 2 workers, read back by zstd -d and fzstd', async () => {
    const dir = await tempDir();
    const data = mixed(2 * MiB + 77);
    const one = await collect(compressor('zstd', { workers: 1 }).compress(Readable.from([data])));
    const two = await collect(compressor('zstd', { workers: 2 }).compress(chunked(data)));
    assert.deepEqual(two, one);
    assert.deepEqual(Buffer.from(fzstdDecompress(one)), data);
    // The zstd CLI, when installed (it is not one of the declared peers), reads it too.
    if (
      await tool('zstd', '--version').then(
        () => true,
        () => false,
      )
    ) {
      await writeFile(join(dir, 'x.zst'), one);
      await tool('zstd', '-q', '-d', join(dir, 'x.zst'), '-o', join(dir, 'x'));
      assert.equal(sha256(await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'x')))), sha256(data));
    }
    assert.equal(compressor('zstd').mediaType, MediaType.ociLayerZstd);
  });
});

async function collectGunzip(path: string): Promise<Buffer> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) =>
    execFile('gzip', ['-dc', path], { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}
