/**
 * Export: the composefs EROFS image and its object store. `fsck.erofs` must accept the image, the real
 * `fsverity` must give every object the digest it is named by, objects already present are checked and
 * reused (a damaged one replaced), and a failed export leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeDump } from '../../src/composefs/dump.js';
import { exportComposefs } from '../../src/composefs/object-store.js';
import { isLadingError } from '../../src/errors.js';
import { ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, bytes, dumpLines, tree, withLayout, writeImage } from './image-helpers.js';

async function objectsIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const xx of (await readdir(join(dir, 'objects'))).sort()) {
    for (const rest of (await readdir(join(dir, 'objects', xx))).sort()) out.push(`${xx}/${rest}`);
  }
  return out;
}

const exported = (layout: string, tag: string, to: string, bootable = false) =>
  withLayout(layout, tag, (store, desc) => exportComposefs(store, desc, to, { algorithm: 'sha512', formatVersion: 1, bootable }));

describe('composefs export', () => {
  it('writes an image fsck.erofs accepts and objects named by their fs-verity digest, reused on the next export', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [
      tree({
        ...BASE,
        'usr/bin/a': bytes(10_000, 1),
        'usr/bin/same': bytes(10_000, 1),
        'usr/lib/b': bytes(70, 2),
        'usr/lib/tiny': 'tiny',
        'boot/k': bytes(900, 3),
      }),
      tree({ 'usr/lib/b': bytes(5000, 4) }),
    ]);
    const out = join(dir, 'cfs');
    const r = await exported(layout, 'os', out);
    await ok('fsck.erofs', r.image);
    assert.equal((await readFile(r.image)).length, r.bytes.length);
    const names = await objectsIn(out);
    // Two files share a content, and the lower layer's /usr/lib/b was replaced: 3 objects.
    assert.equal(names.length, 3);
    assert.deepEqual(r.stats, { written: 3, reused: 0, repaired: 0, dropped: 1 });
    const lines = dumpLines(writeDump(r.tree));
    const wanted = new Set([...lines.values()].filter((l) => l[10] !== '-').map((l) => l[8]));
    assert.deepEqual(new Set(names), wanted);
    const sums = await ok('fsverity', 'digest', '--hash-alg', 'sha512', ...names.map((n) => join(out, 'objects', n)));
    for (const line of sums.trim().split('\n')) {
      const [digest, path] = line.split(' ') as [string, string];
      assert.equal(digest, `sha512:${path.slice(join(out, 'objects').length + 1).replace('/', '')}`);
    }
    // The image digest is what fsverity says of image.erofs.
    assert.equal((await ok('fsverity', 'digest', '--hash-alg', 'sha512', r.image)).split(' ')[0], `sha512:${r.digest}`);

    const again = await exported(layout, 'os', out);
    // (The lower layer's /usr/lib/b is stored while it streams past, then dropped again.)
    assert.deepEqual(again.stats, { written: 0, reused: 3, repaired: 0, dropped: 1 });
    assert.equal(again.digest, r.digest);

    // A damaged object is replaced.
    const victim = join(out, 'objects', names[0]!);
    await writeFile(victim, 'not the content');
    const repaired = await exported(layout, 'os', out);
    assert.deepEqual(repaired.stats, { written: 0, reused: 2, repaired: 1, dropped: 1 });
    const fixed = (await ok('fsverity', 'digest', '--hash-alg', 'sha512', victim)).split(' ')[0];
    assert.equal(fixed, `sha512:${names[0]!.replace('/', '')}`);
  });

  it('--bootable leaves /boot out of the image and the objects', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree({ ...BASE, 'usr/bin/a': bytes(3000, 5), 'boot/vmlinuz': bytes(4000, 6) })]);
    const r = await exported(layout, 'os', join(dir, 'cfs'), true);
    await ok('fsck.erofs', r.image);
    assert.equal((await objectsIn(join(dir, 'cfs'))).length, 1);
    assert.ok(!dumpLines(writeDump(r.tree)).has('/boot/vmlinuz'));
  });

  it('leaves nothing behind when the image is refused', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'bad', [tree({ etc: { type: 'directory' }, 'etc/big': bytes(3000, 7) })]);
    const fresh = join(dir, 'fresh');
    await assert.rejects(exported(layout, 'bad', fresh), (e: unknown) => isLadingError(e, 'UNSUPPORTED_TREE'));
    await assert.rejects(stat(fresh), /ENOENT/);

    // Into an existing store: what was there stays, nothing is added.
    await writeImage(layout, 'good', [tree({ ...BASE, 'usr/x': bytes(3000, 8) })]);
    const store = join(dir, 'store');
    await exported(layout, 'good', store);
    const before = await objectsIn(store);
    await assert.rejects(exported(layout, 'bad', store), (e: unknown) => isLadingError(e, 'UNSUPPORTED_TREE'));
    assert.deepEqual(await objectsIn(store), before);

    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    await assert.rejects(exported(layout, 'good', file), (e: unknown) => isLadingError(e, 'USAGE') && /not a directory/.test(e.message));
  });
});
