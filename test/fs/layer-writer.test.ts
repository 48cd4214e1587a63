/**
 * Writing a tree as a layer into a store: diff_id and blob digest in one pass, the layer cache (hits
 * from the store and from the cache, corrupt entries and blobs detected), failures that leave nothing
 * behind, and peers reading the result: `umoci unpack` shows the tree's files, modes and owners,
 * `skopeo inspect` reads the image and `skopeo copy` to a docker-archive decodes the gzip to the diff_id.
 */
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { defaultLayerCacheDir, writeLayer } from '../../src/fs/layer-writer.js';
import { writeTar } from '../../src/fs/tar-writer.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { listRootfs, sha256Hex } from '../helpers/rootfs.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, entry, file, sha256, tool, treeOf } from './fs-helpers.js';

function sampleTree(): FileTree {
  const big = Buffer.alloc(3 * 1024 * 1024 + 3);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) & 0xff;
  return treeOf(
    entry('usr/bin', 'directory'),
    file('usr/bin/app', '#!/bin/sh\necho hi\n', { mode: 0o755 }),
    entry('usr/bin/app2', 'symlink', { linkTarget: 'app' }),
    entry('usr/bin/app3', 'hardlink', { linkTarget: 'usr/bin/app' }),
    entry('var/lib/app', 'directory', { uid: 65532, gid: 65532, mode: 0o750 }),
    file('var/lib/app/state', 'state\n', { uid: 65532, gid: 65532, mode: 0o600 }),
    file('etc/app/config.yaml', 'x: 1\n', { mtime: 2_000_000_000 }),
    makeEntry('data/big.bin', 'file', { size: big.length, content: { kind: 'bytes', data: big } }),
  );
}

async function fileCount(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

/** An image around one layer, tagged `t`, so umoci and skopeo can read it. */
async function imageAround(store: LayoutStore, layer: Descriptor, diffId: string): Promise<void> {
  const config = canonicalJsonBytes({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'lading test' }],
  });
  const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: digestOf(config), size: config.length };
  await store.pushBlob(configDesc, Readable.from([Buffer.from(config)]));
  const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: [layer] });
  await store.pushManifest({ mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.length }, manifest, {
    tags: ['t'],
  });
}

describe('writeLayer', () => {
  it('pushes the compressed tar and reports its diff_id, digest and compressor', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'img'), 'write');
    const result = await writeLayer(store, sampleTree(), { cacheDir: false, clampMtime: 1_000_000 });
    const tar = await collect(writeTar(sampleTree(), { clampMtime: 1_000_000 }));
    assert.equal(result.diffId, `sha256:${sha256(tar)}`);
    assert.equal(result.compressor, 'gzip:fflate-0.8.3:level6:block1MiB');
    assert.equal(result.cached, false);
    assert.equal(result.descriptor.mediaType, MediaType.ociLayerGzip);
    const blob = await readFile(store.blobPath(result.descriptor.digest));
    assert.equal(`sha256:${sha256(blob)}`, result.descriptor.digest);
    assert.equal(blob.length, result.descriptor.size);

    const zstd = await writeLayer(store, sampleTree(), { cacheDir: false, clampMtime: 1_000_000, compression: 'zstd' });
    assert.equal(zstd.descriptor.mediaType, MediaType.ociLayerZstd);
    assert.equal(zstd.diffId, result.diffId);
    const none = await writeLayer(store, sampleTree(), { cacheDir: false, clampMtime: 1_000_000, compression: 'none' });
    assert.equal(none.descriptor.mediaType, MediaType.ociLayer);
    assert.equal(none.descriptor.digest, none.diffId);
  });

  it('reuses a compressed blob by diff_id and compressor: from the store, or from the cache into a new store', async () => {
    const dir = await tempDir();
    const cacheDir = join(dir, 'cache');
    const first = await LayoutStore.open(join(dir, 'one'), 'write');
    const cold = await writeLayer(first, sampleTree(), { cacheDir });
    assert.equal(cold.cached, false);
    const again = await writeLayer(first, sampleTree(), { cacheDir });
    assert.deepEqual(again, { ...cold, cached: true });

    const second = await LayoutStore.open(join(dir, 'two'), 'write');
    const fromCache = await writeLayer(second, sampleTree(), { cacheDir });
    assert.deepEqual(fromCache, { ...cold, cached: true });
    assert.equal(`sha256:${sha256(await readFile(second.blobPath(cold.descriptor.digest)))}`, cold.descriptor.digest);

    // Another compressor is another cache entry; a changed tree is another diff_id.
    assert.equal((await writeLayer(second, sampleTree(), { cacheDir, compression: 'zstd' })).cached, false);
    const changed = sampleTree();
    changed.set(file('etc/app/config.yaml', 'x: 2\n'));
    const miss = await writeLayer(second, changed, { cacheDir });
    assert.equal(miss.cached, false);
    assert.notEqual(miss.diffId, cold.diffId);
    assert.equal(await fileCount(join(cacheDir, 'tmp')), 0, 'no spool files left behind');
  });

  it('detects a corrupt cached blob or entry and compresses again', async () => {
    const dir = await tempDir();
    const cacheDir = join(dir, 'cache');
    const cold = await writeLayer(await LayoutStore.open(join(dir, 'one'), 'write'), sampleTree(), { cacheDir });
    const cachedBlob = join(cacheDir, 'blobs', 'sha256', cold.descriptor.digest.slice(7));
    // Replace (not rewrite in place: the cached blob shares its inode with the first store's) with same-size garbage.
    await rm(cachedBlob);
    await writeFile(cachedBlob, Buffer.alloc(cold.descriptor.size, 0x55));
    const second = await LayoutStore.open(join(dir, 'two'), 'write');
    const redo = await writeLayer(second, sampleTree(), { cacheDir });
    assert.deepEqual(redo, { ...cold, cached: false });
    assert.equal(`sha256:${sha256(await readFile(second.blobPath(cold.descriptor.digest)))}`, cold.descriptor.digest);

    const entries = join(cacheDir, 'entries');
    for (const name of await readdir(entries)) await writeFile(join(entries, name), '{"diffId": tru');
    const third = await LayoutStore.open(join(dir, 'three'), 'write');
    assert.equal((await writeLayer(third, sampleTree(), { cacheDir })).cached, false);
    assert.equal((await writeLayer(await LayoutStore.open(join(dir, 'four'), 'write'), sampleTree(), { cacheDir })).cached, true);
  });

  it('uses $XDG_CACHE_HOME/lading/layers by default, and no cache with cacheDir: false', async () => {
    const dir = await tempDir();
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(dir, 'xdg');
    try {
      assert.equal(defaultLayerCacheDir(), join(dir, 'xdg', 'lading', 'layers'));
      await writeLayer(await LayoutStore.open(join(dir, 'a'), 'write'), sampleTree(), { cacheDir: false });
      assert.equal(await fileCount(join(dir, 'xdg')), 0);
      await writeLayer(await LayoutStore.open(join(dir, 'b'), 'write'), sampleTree());
      assert.equal(await fileCount(join(dir, 'xdg', 'lading', 'layers', 'entries')), 1);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it('writes nothing when a host file changes or is missing', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), 'grown since the tree was made');
    const tree = treeOf(makeEntry('f', 'file', { size: 5, content: { kind: 'file', path: join(dir, 'f') } }));
    const layout = join(dir, 'img');
    const cacheDir = join(dir, 'cache');
    await assert.rejects(writeLayer(await LayoutStore.open(layout, 'write'), tree, { cacheDir }), (e: unknown) => {
      assert.ok(isLadingError(e, 'FILE_CHANGED'));
      assert.equal((e as Error).message, `file changed while it was read: ${join(dir, 'f')}`);
      return true;
    });
    assert.equal(await fileCount(layout), 0, 'the layout was not even created');
    assert.equal(await fileCount(cacheDir), 0);
    const gone = treeOf(makeEntry('g', 'file', { size: 1, content: { kind: 'file', path: join(dir, 'nope') } }));
    await assert.rejects(
      writeLayer(await LayoutStore.open(layout, 'write'), gone, { cacheDir: false }),
      /cannot read .*nope: no such file/,
    );
    assert.equal(await fileCount(layout), 0);
  });
});

describe('peers read the layers writeLayer makes', () => {
  it('umoci unpack shows exactly the files, modes and owners of the tree', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'img');
    const store = await LayoutStore.open(layout, 'write');
    const layer = await writeLayer(store, sampleTree(), { cacheDir: false });
    await imageAround(store, layer.descriptor, layer.diffId);
    await tool('umoci', 'unpack', '--rootless', '--image', `${layout}:t`, join(dir, 'bundle'));
    const rootfs = join(dir, 'bundle', 'rootfs');
    const listed = await listRootfs(rootfs);
    const big = sampleTree().get('data/big.bin')!;
    assert.deepEqual(listed, {
      data: { type: 'dir', mode: 0o755 },
      'data/big.bin': { type: 'file', mode: 0o644, content: sha256Hex((big.content as { data: Uint8Array }).data) },
      etc: { type: 'dir', mode: 0o755 },
      'etc/app': { type: 'dir', mode: 0o755 },
      'etc/app/config.yaml': { type: 'file', mode: 0o644, content: sha256Hex('x: 1\n') },
      usr: { type: 'dir', mode: 0o755 },
      'usr/bin': { type: 'dir', mode: 0o755 },
      'usr/bin/app': { type: 'file', mode: 0o755, content: sha256Hex('#!/bin/sh\necho hi\n') },
      'usr/bin/app2': { type: 'symlink', mode: 0o777, content: 'app' },
      'usr/bin/app3': { type: 'file', mode: 0o755, content: sha256Hex('#!/bin/sh\necho hi\n') },
      var: { type: 'dir', mode: 0o755 },
      'var/lib': { type: 'dir', mode: 0o755 },
      'var/lib/app': { type: 'dir', mode: 0o750 },
      'var/lib/app/state': { type: 'file', mode: 0o600, content: sha256Hex('state\n') },
    });
    assert.equal((await lstat(join(rootfs, 'usr/bin/app'))).ino, (await lstat(join(rootfs, 'usr/bin/app3'))).ino);
    if (process.getuid?.() === 0) {
      // As root umoci can set owners: they must be the tree's, not the builder's.
      await tool('umoci', 'unpack', '--image', `${layout}:t`, join(dir, 'rooted'));
      const st = await lstat(join(dir, 'rooted', 'rootfs', 'var/lib/app/state'));
      assert.deepEqual([st.uid, st.gid], [65532, 65532]);
      const app = await lstat(join(dir, 'rooted', 'rootfs', 'usr/bin/app'));
      assert.deepEqual([app.uid, app.gid], [0, 0]);
    }
  });

  it('skopeo inspects the image and decompresses the layer to the diff_id', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'img');
    const store = await LayoutStore.open(layout, 'write');
    const layer = await writeLayer(store, sampleTree(), { cacheDir: false });
    await imageAround(store, layer.descriptor, layer.diffId);
    const inspected = JSON.parse(await tool('skopeo', 'inspect', `oci:${layout}:t`)) as { Layers: string[] };
    assert.deepEqual(inspected.Layers, [layer.descriptor.digest]);
    // A docker-archive destination asks for uncompressed layers, named by the digest of what skopeo decoded.
    const archive = join(dir, 'out.tar');
    await tool('skopeo', 'copy', `oci:${layout}:t`, `docker-archive:${archive}:x:t`);
    const manifest = JSON.parse(await tool('tar', '-xOf', archive, 'manifest.json')) as { Layers: string[] }[];
    assert.deepEqual(manifest[0]!.Layers, [`${layer.diffId.slice(7)}.tar`], 'skopeo decoded the gzip to exactly the tar');
  });
});
