/** The OCI layout store: resolution, verified writes, links, concurrent writers, fsck and gc. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { isLadingError } from '../../src/errors.js';
import { digestOf } from '../../src/oci/digest.js';
import { parseIndexJson } from '../../src/oci/parse.js';
import type { Descriptor } from '../../src/oci/types.js';
import { fsckLayout } from '../../src/store/layout/fsck.js';
import { gcLayout } from '../../src/store/layout/gc.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { tempDir } from '../helpers/tmp.js';

const blob = (s: string): Descriptor => ({ mediaType: 'application/octet-stream', digest: digestOf(s), size: Buffer.byteLength(s) });

async function twoImages(dir: string) {
  const store = await LayoutStore.open(dir, 'write');
  const a = await writeImage(store, { layers: [{ files: { a: 'a' } }] }, ['a']);
  const b = await writeImage(store, { layers: [{ files: { b: 'b' } }] }, ['b', 'latest']);
  await store.close();
  return { a, b };
}

describe('layout store', () => {
  it('resolves by tag, by digest, and by nothing when there is one image', async () => {
    const dir = await tempDir();
    const { a, b } = await twoImages(dir);
    const store = await LayoutStore.open(dir, 'read');
    assert.equal((await store.resolve('a')).digest, a.digest);
    assert.equal((await store.resolve('latest')).digest, b.digest);
    assert.equal((await store.resolve(b.digest)).digest, b.digest);
    assert.deepEqual(await store.tags(), ['a', 'b', 'latest']);
    await assert.rejects(store.resolve(undefined), (e) => isLadingError(e, 'AMBIGUOUS') && /tags: a, b, latest/.test(e.message));
    await assert.rejects(
      store.resolve('nope'),
      (e) => isLadingError(e, 'NOT_FOUND') && /tag "nope" not found.*tags: a, b, latest/.test(e.message),
    );

    const single = await tempDir();
    const s = await LayoutStore.open(single, 'write');
    const only = await writeImage(s, { layers: [] }, ['x']);
    assert.equal((await s.resolve(undefined)).digest, only.digest);
  });

  it('resolves a manifest that is only a blob (one platform of an index) by digest', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    const amd = await writeImage(store, { layers: [{ files: { x: '1' } }] });
    const arm = await writeImage(store, { platform: { os: 'linux', architecture: 'arm64' }, layers: [{ files: { x: '2' } }] });
    await writeIndex(store, [amd, arm], ['multi']);
    const found = await store.resolve(arm.digest);
    assert.equal(found.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(found.size, arm.size);
    const layer = (JSON.parse(Buffer.from(await store.fetchManifest(amd)).toString()) as { layers: Descriptor[] }).layers[0]!;
    await assert.rejects(store.resolve(layer.digest), (e) => isLadingError(e, 'NOT_FOUND') && /is a blob, not a manifest/.test(e.message));
  });

  it('re-tagging moves the tag and keeps index.json canonical', async () => {
    const dir = await tempDir();
    const { a } = await twoImages(dir);
    const store = await LayoutStore.open(dir, 'write');
    await store.pushManifest(a, await store.fetchManifest(a), { tags: ['latest'] });
    await store.close();
    const index = parseIndexJson(await readFile(join(dir, 'index.json')), 'index.json');
    const latest = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest');
    assert.equal(latest.length, 1);
    assert.equal(latest[0]?.digest, a.digest);
    assert.deepEqual(await readdir(dir), ['blobs', 'index.json', 'oci-layout'], 'no private files are left behind');
  });

  it('keeps nothing when a pushed stream does not match its digest or length', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    const want = blob('good content');
    await assert.rejects(store.pushBlob(want, Readable.from([Buffer.from('evil content')])), (e) => isLadingError(e, 'DIGEST_MISMATCH'));
    await assert.rejects(store.pushBlob(want, Readable.from([Buffer.from('good conten')])), (e) => isLadingError(e, 'SIZE_MISMATCH'));
    await assert.rejects(store.pushBlob(want, Readable.from([Buffer.from('good content!')])), (e) => isLadingError(e, 'SIZE_MISMATCH'));
    assert.equal(await store.has(want), false);
    assert.deepEqual(await readdir(join(dir, '.lading', 'tmp')), [], 'no temp file is left');
    await store.pushBlob(want, Readable.from([Buffer.from('good content')]));
    assert.equal(await store.has(want), true);
    await store.close();
  });

  it('links a verified local file, and refuses a corrupt one', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src-file');
    await writeFile(src, 'payload');
    const store = await LayoutStore.open(join(dir, 'layout'), 'write');
    assert.equal(await store.pushBlobFromFile(blob('payload'), src), 'linked');
    const linked = await stat(store.blobPath(digestOf('payload')));
    assert.equal(linked.ino, (await stat(src)).ino);
    await writeFile(src, 'payloaX');
    await assert.rejects(store.pushBlobFromFile(blob('payloaY'), src), (e) => isLadingError(e, 'DIGEST_MISMATCH'));
    assert.equal(await store.has(blob('payloaY')), false);
    await store.close();
  });

  it('serves verified bytes, and fails a read of a blob corrupted on disk', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    const d = blob('twelve bytes');
    await store.pushBlob(d, Readable.from([Buffer.from('twelve bytes')]));
    const chunks: Buffer[] = [];
    for await (const c of await store.fetchBlob(d)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'twelve bytes');
    await writeFile(store.blobPath(d.digest), 'twelve bytez');
    await assert.rejects(
      (async () => {
        for await (const _ of await store.fetchBlob(d));
      })(),
      (e) => isLadingError(e, 'DIGEST_MISMATCH') && e.message.includes(d.digest),
    );
    await store.close();
  });

  it('merges tags written by two processes at once', async () => {
    const dir = await tempDir();
    const writer = new URL('../helpers/tag-writer.ts', import.meta.url).pathname;
    const runWriter = (prefix: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, prefix, '15'], { stdio: 'inherit' });
        child.on('close', resolve);
      });
    const codes = await Promise.all([runWriter('p'), runWriter('q')]);
    assert.deepEqual(codes, [0, 0]);
    const store = await LayoutStore.open(dir, 'read');
    const tags = await store.tags();
    assert.equal(tags.length, 30, `all 30 tags survive, got ${tags.join(',')}`);
    const report = await fsckLayout(store);
    assert.deepEqual(report.problems, []);
  });

  it('fsck names corrupt, wrong-length and missing blobs; gc removes only what nothing references', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    const img = await writeImage(store, { layers: [{ files: { a: '1' } }, { files: { b: '2' } }] }, ['t']);
    const stray = blob('unreferenced');
    await store.pushBlob(stray, Readable.from([Buffer.from('unreferenced')]));
    await store.close();
    assert.deepEqual((await fsckLayout(store)).problems, []);

    const manifest = JSON.parse(Buffer.from(await store.fetchManifest(img)).toString()) as { layers: Descriptor[] };
    const [l0, l1] = manifest.layers as [Descriptor, Descriptor];
    const p0 = store.blobPath(l0.digest);
    const bytes = await readFile(p0);
    bytes[600] = (bytes[600] ?? 0) ^ 1;
    await writeFile(p0, bytes);
    await writeFile(store.blobPath(l1.digest), 'short');
    const problems = (await fsckLayout(store)).problems;
    assert.ok(problems.some((p) => p.kind === 'corrupt' && p.digest === l0.digest));
    assert.ok(problems.some((p) => p.kind === 'wrong-size' && p.digest === l1.digest));
    const corruptManifest = await LayoutStore.open(dir, 'write');
    await writeFile(corruptManifest.blobPath(img.digest), '{"schemaVersion":2}');
    await assert.rejects(gcLayout(corruptManifest), (e) => isLadingError(e, 'INVALID_LAYOUT') && /nothing removed/.test(e.message));
    assert.equal(await corruptManifest.has(stray), true, 'gc removed nothing while a manifest was unreadable');
    await corruptManifest.close();

    const clean = await tempDir();
    const s2 = await LayoutStore.open(clean, 'write');
    await writeImage(s2, { layers: [{ files: { a: '1' } }] }, ['t']);
    await s2.pushBlob(stray, Readable.from([Buffer.from('unreferenced')]));
    await s2.close();
    const dry = await gcLayout(s2, { dryRun: true });
    assert.deepEqual(
      dry.removed.map((r) => r.digest),
      [stray.digest],
    );
    assert.equal(await s2.has(stray), true, 'dry run removes nothing');
    const report = await gcLayout(s2);
    assert.deepEqual(
      report.removed.map((r) => r.digest),
      [stray.digest],
    );
    assert.equal(await s2.has(stray), false);
    await s2.close();
    assert.deepEqual((await fsckLayout(s2)).problems, []);
  });

  it('gc waits for nobody and refuses while another process is writing', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(dir, 'write');
    await writeImage(store, { layers: [] }, ['t']);
    // A live writer lease of another process: our parent (alive, and not us).
    await writeFile(join(dir, '.lading', 'writers', `${process.ppid}-test`), `${process.ppid} ${(await import('node:os')).hostname()}\n`);
    await assert.rejects(gcLayout(store), (e) => isLadingError(e, 'LOCKED') && e.message.includes(String(process.ppid)));
    await store.close();
  });
});
