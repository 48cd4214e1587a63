/** oci-archive: round trips, reading by seeking, and refusing hostile or broken tars. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { writeImage } from '../../src/build/image-writer.js';
import { copyImage } from '../../src/copy/copy-image.js';
import { isLadingError } from '../../src/errors.js';
import { ArchiveReader, ArchiveWriter } from '../../src/store/archive/archive-store.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/** A tar built entry by entry, for archives no honest writer would make. */
async function tarOf(entries: { name: string; content?: string; type?: 'file' | 'directory' }[], pax = false): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type ?? 'file', ...(pax && { pax: { comment: 'x' } }) }, e.content ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('oci-archive', () => {
  it('round-trips an image through an archive with equal digests, and the archive bytes are reproducible', async () => {
    const dir = await tempDir();
    const src = await LayoutStore.open(join(dir, 'src'), 'write');
    const img = await writeImage(src, { layers: [{ files: { 'a/b.txt': 'hello' } }, { files: { 'c.txt': 'x'.repeat(70_000) } }] }, ['v1']);
    await src.close();

    const paths = [join(dir, 'one.tar'), join(dir, 'two.tar')];
    for (const path of paths) {
      const w = await ArchiveWriter.create(path);
      await copyImage(src, 'v1', w, { tags: ['v1'] });
      await w.close();
    }
    assert.deepEqual(await readFile(paths[0]!), await readFile(paths[1]!), 'same content, same archive bytes');
    assert.deepEqual((await readdir(dir)).sort(), ['one.tar', 'src', 'two.tar'], 'no temp files left beside the archive');

    const r = await ArchiveReader.open(paths[0]!);
    assert.deepEqual(await r.tags(), ['v1']);
    assert.equal((await r.resolve('v1')).digest, img.digest);
    assert.equal((await r.resolve(undefined)).digest, img.digest);
    const out = await LayoutStore.open(join(dir, 'out'), 'write');
    const result = await copyImage(r, 'v1', out, { tags: ['v1'] });
    await out.close();
    await r.close();
    assert.equal(result.descriptor.digest, img.digest);
    assert.equal(result.blobs.copied, 3);
  });

  it('reads long names from PAX headers and ustar prefixes', async () => {
    const dir = await tempDir();
    const src = await LayoutStore.open(join(dir, 'src'), 'write');
    await writeImage(src, { layers: [{ files: { f: '1' } }] }, ['t']);
    await src.close();
    const files = [
      { name: './oci-layout', content: await readFile(join(dir, 'src', 'oci-layout'), 'utf8') },
      { name: './index.json', content: await readFile(join(dir, 'src', 'index.json'), 'utf8') },
    ];
    for (const name of await readdir(join(dir, 'src', 'blobs', 'sha256'))) {
      files.push({ name: `./blobs/sha256/${name}`, content: await readFile(join(dir, 'src', 'blobs', 'sha256', name), 'latin1') });
    }
    for (const pax of [false, true]) {
      const path = join(dir, `long-${pax}.tar`);
      await writeFile(path, await tarOf(files, pax));
      const r = await ArchiveReader.open(path);
      const out = await LayoutStore.open(join(dir, `out-${pax}`), 'write');
      await copyImage(r, 't', out, { tags: ['t'] });
      await r.close();
      await out.close();
    }
  });

  const hostile: [string, () => Promise<Buffer>, string, RegExp][] = [
    ['a ../ path', () => tarOf([{ name: '../evil', content: 'x' }]), 'UNSAFE_PATH', /unsafe path "\.\.\/evil"/],
    ['an absolute path', () => tarOf([{ name: '/etc/passwd', content: 'x' }]), 'UNSAFE_PATH', /unsafe path "\/etc\/passwd"/],
    ['a nested .. path', () => tarOf([{ name: 'blobs/../../x', content: 'x' }]), 'UNSAFE_PATH', /unsafe path/],
    ['no oci-layout', () => tarOf([{ name: 'index.json', content: '{}' }]), 'INVALID_LAYOUT', /no oci-layout/],
    [
      'a schema-invalid index.json',
      () =>
        tarOf([
          { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
          { name: 'index.json', content: '{"schemaVersion":2,"manifests":[{}]}' },
        ]),
      'INVALID_LAYOUT',
      /index\.json/,
    ],
    ['gzip bytes', async () => gzipSync(await tarOf([{ name: 'oci-layout', content: '{}' }])), 'INVALID_ARCHIVE', /gzip-compressed/],
    [
      'a truncated tar',
      async () => (await tarOf([{ name: 'oci-layout', content: 'x'.repeat(5000) }])).subarray(0, 2048),
      'INVALID_ARCHIVE',
      /truncated/,
    ],
    ['random bytes', async () => Buffer.alloc(4096, 7), 'INVALID_ARCHIVE', /checksum/],
  ];
  for (const [what, make, code, message] of hostile) {
    it(`refuses an archive with ${what}`, async () => {
      const dir = await tempDir();
      const path = join(dir, 'bad.tar');
      await writeFile(path, await make());
      await assert.rejects(ArchiveReader.open(path), (e) => isLadingError(e) && e.code === code && message.test(e.message));
    });
  }

  it('leaves no file behind when a write is aborted or a blob is corrupt', async () => {
    const dir = await tempDir();
    const src = await LayoutStore.open(join(dir, 'src'), 'write');
    const img = await writeImage(src, { layers: [{ files: { f: 'content' } }] }, ['t']);
    await src.close();
    const manifest = JSON.parse(Buffer.from(await src.fetchManifest(img)).toString()) as { layers: { digest: string }[] };
    const layerPath = src.blobPath(manifest.layers[0]!.digest);
    const bytes = await readFile(layerPath);
    bytes[0] = 0x41;
    await writeFile(layerPath, bytes);
    const target = join(dir, 'out.tar');
    await writeFile(target, 'previous content');
    const w = await ArchiveWriter.create(target);
    await assert.rejects(copyImage(src, 't', w, { tags: ['t'] }), (e) => isLadingError(e, 'DIGEST_MISMATCH'));
    await w.abort();
    assert.deepEqual((await readdir(dir)).sort(), ['out.tar', 'src']);
    assert.equal(await readFile(target, 'utf8'), 'previous content', 'the old archive is untouched');
    assert.equal((await stat(target)).size, 16);
  });

  it('splits an archive into parts for removable media, reads the parts as one, and refuses a missing part', async () => {
    const dir = await tempDir();
    const src = await LayoutStore.open(join(dir, 'src'), 'write');
    const img = await writeImage(src, { layers: [{ files: { big: randomBytes(3 << 20) } }] }, ['t']);
    await src.close();
    const base = join(dir, 'usb', 'release.tar');
    await mkdir(join(dir, 'usb'));
    const w = await ArchiveWriter.create(base, { splitBytes: 1 << 20 });
    await copyImage(src, 't', w, { tags: ['t'] });
    await w.close();
    const parts = (await readdir(join(dir, 'usb'))).sort();
    assert.deepEqual(parts, ['release.tar.part-0001', 'release.tar.part-0002', 'release.tar.part-0003', 'release.tar.part-0004']);
    for (const p of parts.slice(0, 3)) assert.equal((await stat(join(dir, 'usb', p))).size, 1 << 20);

    const r = await ArchiveReader.open(base);
    const out = await LayoutStore.open(join(dir, 'out'), 'write');
    assert.equal((await copyImage(r, 't', out, { tags: ['t'] })).descriptor.digest, img.digest);
    await r.close();
    await out.close();

    // cat of the parts is the plain archive other tools read
    const whole = Buffer.concat(await Promise.all(parts.map((p) => readFile(join(dir, 'usb', p)))));
    await writeFile(join(dir, 'whole.tar'), whole);
    assert.match(await ok('skopeo', 'inspect', `oci-archive:${join(dir, 'whole.tar')}:t`), new RegExp(img.digest));

    await rm(join(dir, 'usb', 'release.tar.part-0002'));
    await assert.rejects(
      ArchiveReader.open(base),
      (e) => isLadingError(e, 'INVALID_ARCHIVE') && /part release\.tar\.part-0002 is missing/.test(e.message),
    );
  });
});
