/** One pass over a layer read in place: the layer's digest and its files' fs-verity digests from the same reads. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FsVerityHasher } from '../../src/verity/fsverity.js';
import { LayerPass } from '../../src/verity/layer-pass.js';
import { tempDir } from '../helpers/tmp.js';

const verity = (bytes: Uint8Array) => {
  const h = new FsVerityHasher('sha512');
  h.update(bytes);
  return h.digest().toString('hex');
};

describe('LayerPass', () => {
  it('gives the same digests as hashing each file and the whole layer apart, across reads and spans', async () => {
    const dir = await tempDir();
    const layer = randomBytes(1536 * 1024 + 333);
    const path = join(dir, 'layer');
    await writeFile(path, layer);
    // Files at tar-like offsets: inside one 64 KiB read, across several, ending on a read's edge, back to back.
    const files = [
      { id: 1, start: 512, length: 100 },
      { id: 2, start: 1024, length: 200_000 },
      { id: 3, start: 201_728, length: 65_536 - (201_728 % 65_536) },
      { id: 4, start: 262_144, length: 4096 },
      { id: 5, start: 266_240, length: 700_001 },
      { id: 6, start: 1_500_000, length: layer.length - 1_500_000 },
    ];
    const fd = openSync(path, 'r');
    try {
      const pass = new LayerPass(fd, layer.length, 'sha256', 'sha512', Buffer.alloc(64 * 1024));
      const got = new Map([
        ...pass.advance(266_240, files.slice(0, 4)),
        ...pass.advance(1_400_000, [files[4]!]),
        ...pass.advance(layer.length, [files[5]!]),
      ]);
      for (const f of files) assert.equal(got.get(f.id), verity(layer.subarray(f.start, f.start + f.length)), `file ${f.id}`);
      assert.deepEqual(pass.finish(), { hex: createHash('sha256').update(layer).digest('hex'), bytes: layer.length });
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a file the layer ends before, and reports a short layer as fewer bytes', async () => {
    const dir = await tempDir();
    const path = join(dir, 'short');
    await writeFile(path, randomBytes(10_000));
    const fd = openSync(path, 'r');
    try {
      const cut = new LayerPass(fd, 20_000, 'sha256', 'sha256', Buffer.alloc(4096));
      assert.throws(() => cut.advance(20_000, [{ id: 1, start: 9_000, length: 5_000 }]), /ends before the end of a 5000-byte file at 9000/);
      const outside = new LayerPass(fd, 20_000, 'sha256', 'sha256', Buffer.alloc(4096));
      assert.throws(() => outside.advance(100, [{ id: 1, start: 50, length: 100 }]), /outside the span 0\.\.100/);
      const short = new LayerPass(fd, 20_000, 'sha256', 'sha256', Buffer.alloc(4096));
      assert.equal(short.finish().bytes, 10_000);
    } finally {
      closeSync(fd);
    }
  });
});
