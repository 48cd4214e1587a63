/** `lading composefs digest|dump|export REF`: the CLI over the image functions, and its bad inputs. */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lading, ladingJson, ladingOk, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { imageComposefs } from '../../src/composefs/image-digest.js';
import { BASE, bytes, type Spec, tree, withLayout, writeImage } from './image-helpers.js';

describe('lading composefs digest, dump and export', () => {
  it('prints the digest, writes a dump that mkfs turns back into the same image, and exports', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree({ ...BASE, 'usr/bin/a': bytes(4000, 1), 'usr/bin/b': 'bee', 'boot/k': bytes(100, 2) })], {
      compression: 'gzip',
    });
    const ref = `oci:${layout}:os`;
    const d512 = (await ladingOk('composefs', 'digest', ref)).trim();
    assert.match(d512, /^[0-9a-f]{128}$/);
    // The CLI hashes on a worker thread; the library under test here hashes inline: same digest.
    const inline = await withLayout(layout, 'os', (store, desc) =>
      imageComposefs(store, desc, { algorithm: 'sha512', formatVersion: 1, bootable: false }),
    );
    assert.equal(d512, inline.digest);
    const json = await ladingJson<{ digest: string; algorithm: string; formatVersion: number; bootable: boolean }>(
      'composefs',
      'digest',
      '--bootable',
      '--algorithm',
      'sha256',
      '-o',
      'json',
      ref,
    );
    assert.deepEqual([json.algorithm, json.formatVersion, json.bootable, json.digest.length], ['sha256', 1, true, 64]);
    assert.notEqual((await ladingOk('composefs', 'digest', '--format-version', '0', ref)).trim(), d512);
    // composefs-rs's legacy format 2: another digest, the library's too.
    const v2 = (await ladingOk('composefs', 'digest', '--format-version', '2', ref)).trim();
    const inlineV2 = await withLayout(layout, 'os', (store, desc) =>
      imageComposefs(store, desc, { algorithm: 'sha512', formatVersion: 2, bootable: false }),
    );
    assert.deepEqual([v2, inlineV2.formatVersion], [inlineV2.digest, 2]);
    assert.notEqual(v2, d512);

    // dump -> mkfs gives the image whose fs-verity (sha256) digest `composefs digest` prints.
    const dump = join(dir, 'os.dump');
    assert.equal(await ladingOk('composefs', 'dump', '--algorithm', 'sha256', '--to', dump, ref), '');
    assert.equal(await readFile(dump, 'utf8'), await ladingOk('composefs', 'dump', '--algorithm', 'sha256', ref));
    const printed = await ladingOk(
      'composefs',
      'mkfs',
      '--from-dump',
      dump,
      '--format-version',
      '1',
      '--print-digest',
      join(dir, 'again.img'),
    );
    assert.equal(printed.trim(), (await ladingOk('composefs', 'digest', '--algorithm', 'sha256', ref)).trim());

    const out = join(dir, 'cfs');
    const exported = await ladingJson<{ digest: string; erofs: string; written: number }>(
      'composefs',
      'export',
      ref,
      '--to',
      out,
      '-o',
      'json',
    );
    assert.equal(exported.digest, d512);
    assert.equal(exported.written, 2);
    await ok('fsck.erofs', exported.erofs);
    const text = await ladingOk('composefs', 'export', ref, '--to', out);
    assert.match(text, /^[0-9a-f]{128} {2}.*image\.erofs\nobjects: 0 written, 2 reused in /);
  });

  it('refuses bad options and images with one clear line', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'nousr', [tree({ etc: { type: 'directory' }, 'etc/x': 'x' })]);
    const cases: [string[], number, RegExp][] = [
      [['digest', '--algorithm', 'md5', `oci:${layout}:nousr`], 2, /--algorithm must be sha256 or sha512, not md5/],
      [['digest', '--format-version', '3', `oci:${layout}:nousr`], 2, /--format-version must be 0, 1 or 2, not 3/],
      [['digest', `oci:${layout}:nousr`], 1, /no \/usr directory/],
      [['digest', `oci:${join(dir, 'missing')}:x`], 1, /missing/],
      [['digest', '--platform', 'linux', `oci:${layout}:nousr`], 2, /invalid platform/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await lading('composefs', ...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const r = await lading('composefs', 'export', `oci:${layout}:nousr`, '--to', file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exists and is not a directory/);
    const fresh = join(dir, 'fresh');
    assert.equal((await lading('composefs', 'export', `oci:${layout}:nousr`, '--to', fresh)).code, 1);
    await assert.rejects(stat(fresh), /ENOENT/);
  });

  it('reads uncompressed layers in place (workers hash the file): same digest as gzip, a corrupt layer refused', async () => {
    const dir = await tempDir();
    // Past the first 4 MiB (hashed inline) files go to the workers: to a layer's owner, hashed from the
    // bytes it reads for the layer digest (some across its 256 KiB reads), or to the other worker.
    const many: Spec = {};
    for (let i = 0; i < 60; i++) many[`usr/share/m${i}`] = bytes(90_000 + i * 7919, 100 + i);
    const lower: Spec = {
      ...BASE,
      ...many,
      'usr/bin/big': bytes(3 << 20, 3),
      'usr/lib/big2': bytes((5 << 20) + 1, 8),
      'usr/bin/gone': bytes(500, 4),
      'usr/bin/tiny': 'x',
      'etc/conf': bytes(65, 5),
    };
    const upper: Spec = {
      'usr/bin/.wh.gone': '',
      'usr/bin/new': bytes(70_000, 6),
      'usr/bin/new2': bytes(2 << 20, 9),
      'etc/small': bytes(64, 7),
      'usr/lib': { type: 'directory' },
    };
    const plain = join(dir, 'plain');
    const gzip = join(dir, 'gzip');
    const manifest = await writeImage(plain, 'os', [tree(lower), tree(upper)], { compression: 'none' });
    await writeImage(gzip, 'os', [tree(lower), tree(upper)], { compression: 'gzip' });
    const inPlace = (await ladingOk('composefs', 'digest', `oci:${plain}:os`)).trim();
    assert.equal(inPlace, (await ladingOk('composefs', 'digest', `oci:${gzip}:os`)).trim(), 'gzip layers are streamed');
    const inline = await withLayout(plain, 'os', (store, desc) =>
      imageComposefs(store, desc, { algorithm: 'sha512', formatVersion: 1, bootable: false }),
    );
    assert.equal(inPlace, inline.digest, 'the library from sources hashes inline');
    assert.equal(await ladingOk('composefs', 'dump', `oci:${plain}:os`), await ladingOk('composefs', 'dump', `oci:${gzip}:os`));

    // One byte flipped inside a file's content: the worker's digest check fails the command.
    const { layers } = JSON.parse(await readFile(join(plain, 'blobs', 'sha256', manifest.digest.slice(7)), 'utf8')) as {
      layers: { digest: string }[];
    };
    const blob = join(plain, 'blobs', 'sha256', layers[0]!.digest.slice(7));
    const good = await readFile(blob);
    const bad = Buffer.from(good);
    bad[good.length >> 1] = good[good.length >> 1]! ^ 0x01;
    await writeFile(blob, bad);
    const r = await lading('composefs', 'digest', `oci:${plain}:os`);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`${layers[0]!.digest} is corrupt`));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    // Cut short: refused before anything is read.
    await writeFile(blob, good.subarray(0, good.length - 1024));
    const cut = await lading('composefs', 'digest', `oci:${plain}:os`);
    assert.equal(cut.code, 1);
    assert.equal(cut.stdout, '');
    assert.match(cut.stderr, /size|bytes/i);
  });
});
