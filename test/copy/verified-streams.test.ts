/**
 * Hashing a blob once: a sink takes a stream that verifies itself (what every store's fetchBlob hands
 * out) without hashing it again, and still stores nothing when that stream fails its digest check. Any
 * other stream is verified by the sink as before.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, pipeline } from 'node:stream';
import { describe, it } from 'node:test';
import { transferBlob, verifiesItself } from '../../src/copy/blob-transfer.js';
import { isLadingError } from '../../src/errors.js';
import { type Digest, verifiedStream } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { tempDir } from '../helpers/tmp.js';

const bytes = Buffer.from('the blob that is moved once and hashed once\n'.repeat(1000));
const desc: Descriptor = {
  mediaType: 'application/octet-stream',
  digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest,
  size: bytes.length,
};

async function blobFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'blobs', 'sha256')).catch(() => [])).sort();
}

describe('self-verifying streams', () => {
  it("a layout's fetchBlob hands out a stream that verifies itself, for exactly that blob", async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    await store.pushBlob(desc, Readable.from([bytes]));
    const fetched = await store.fetchBlob(desc);
    assert.equal(verifiesItself(fetched, desc), true);
    assert.equal(verifiesItself(fetched, { ...desc, size: desc.size + 1 }), false, 'another size');
    assert.equal(verifiesItself(fetched, { ...desc, digest: `sha256:${'0'.repeat(64)}` as Digest }), false, 'another digest');
    fetched.destroy();
    assert.equal(verifiesItself(Readable.from([bytes]), desc), false, 'a plain stream');
    const wrapped = pipeline(await store.fetchBlob(desc), new Transform({ transform: (c, _e, done) => done(null, c) }), () => undefined);
    assert.equal(verifiesItself(wrapped, desc), false, 'a stream in between hides the verifier');
    wrapped.destroy();
    await store.close();
  });

  it('a layout refuses a self-verifying stream whose bytes are wrong, and keeps nothing', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    const seed = Buffer.from('seed\n');
    const seedDesc = { ...desc, digest: `sha256:${createHash('sha256').update(seed).digest('hex')}` as Digest, size: seed.length };
    await store.pushBlob(seedDesc, Readable.from([seed])); // the layout exists, with one blob
    const before = await blobFiles(dir);
    const corrupt = Buffer.from(bytes);
    corrupt[corrupt.length - 3] = (corrupt[corrupt.length - 3] ?? 0) ^ 0x01;
    const stream = verifiedStream(Readable.from([corrupt]), desc, 'blob from test:');
    assert.equal(verifiesItself(stream, desc), true);
    await assert.rejects(store.pushBlob(desc, stream), (e) => isLadingError(e, 'DIGEST_MISMATCH') && e.message.includes(desc.digest));
    assert.deepEqual(await blobFiles(dir), before, 'no blob, no temp file');
    assert.equal(await store.has(desc), false);
    await store.close();
  });

  it('a layout-to-layout transfer without links streams a self-verifying source and stores the blob', async () => {
    const a = await tempDir();
    const b = await tempDir();
    const src = await LayoutStore.open(a, 'write');
    await src.pushBlob(desc, Readable.from([bytes]));
    const dst = await LayoutStore.open(b, 'write');
    const ctx = { link: false, signal: new AbortController().signal, emit: () => undefined, mountSources: () => [] };
    assert.equal(await transferBlob(src, dst, desc, ctx), 'copied');
    assert.equal(await dst.has(desc), true);
    const back = Buffer.concat(await (await dst.fetchBlob(desc)).toArray());
    assert.deepEqual(back, bytes);
    await Promise.all([src.close(), dst.close()]);
  });
});
