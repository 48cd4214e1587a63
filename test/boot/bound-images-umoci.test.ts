/**
 * A bootable image built by umoci (0.4.7: init, new, unpack, repack, insert, config) that declares
 * bound images across several layers (a declaration overwritten, one whited out, one inserted later),
 * read straight from the image's layers and from the root `umoci unpack --rootless` makes of it: both
 * must give the same answer, as must the library call the mirror planner uses.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { boundImagesOf } from '../../src/boot/bound-images/bound-images-of.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { ladingJson, lading, ok } from '../helpers/run.js';

const SYS = 'usr/share/containers/systemd';
const ETC = 'etc/containers/systemd';
const DIR = 'usr/lib/bootc/bound-images.d';
const WEB_DIGEST = `sha256:${'12'.repeat(32)}`;

interface ListEntry {
  image: string;
  file: string;
  source: string;
  tag: string | null;
  digest: string | null;
  warnings: string[];
}

describe('bound images in an image built by umoci', () => {
  let layout: string;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-bound-umoci-'));
    layout = join(work, 'layout');
    const bundle = join(work, 'bundle');
    await ok('umoci', 'init', '--layout', layout);
    await ok('umoci', 'new', '--image', `${layout}:os`);
    await ok('umoci', 'unpack', '--rootless', '--image', `${layout}:os`, bundle);
    const rootfs = join(bundle, 'rootfs');
    for (const d of [SYS, ETC, DIR]) await mkdir(join(rootfs, d), { recursive: true });
    // Layer 1: an .image unit, a .container naming an .image unit in /etc, one soon to be removed.
    await writeFile(join(rootfs, SYS, 'app.image'), '[Unit]\nDescription=app\n\n[Image]\nImage=quay.io/example/app:1.0\n');
    await writeFile(join(rootfs, SYS, 'web.container'), '[Container]\n# the image unit below\nImage=web.image\nExec=/srv/web\n');
    await writeFile(join(rootfs, ETC, 'web.image'), `[Image]\nImage="quay.io/example/web@${WEB_DIGEST}"\n`);
    await writeFile(join(rootfs, SYS, 'old.image'), '[Image]\nImage=quay.io/example/old:1\n');
    await symlink(`/${SYS}/app.image`, join(rootfs, DIR, 'app.image'));
    await symlink(`../../../share/containers/systemd/web.container`, join(rootfs, DIR, 'web.container'));
    await symlink(`/${SYS}/old.image`, join(rootfs, DIR, 'old.image'));
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${layout}:os`, bundle);
    // Layer 2: app moves to 1.1 (with a continuation and a comment), old is removed (a whiteout).
    await writeFile(
      join(rootfs, SYS, 'app.image'),
      '[Image]\n; pinned later\nImage=quay.io/example/\\\n# x\napp:1.1\nImage=quay.io/example/app:1.1\n',
    );
    await rm(join(rootfs, DIR, 'old.image'));
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${layout}:os`, bundle);
    // Layers 3 and 4: umoci insert adds a unit and its link.
    const extra = join(work, 'extra.image');
    await writeFile(extra, '[Image]\nImage=registry.example:5000/tools/extra:2\n');
    await ok('umoci', 'insert', '--rootless', '--image', `${layout}:os`, extra, `/${SYS}/extra.image`);
    const link = join(work, 'extra-link');
    await symlink(`/${SYS}/extra.image`, link);
    await ok('umoci', 'insert', '--rootless', '--image', `${layout}:os`, link, `/${DIR}/extra.image`);
    await ok('umoci', 'config', '--image', `${layout}:os`, '--config.label', 'containers.bootc=1');
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('reads the same bound images from the image and from its unpacked root', async () => {
    const fromImage = await ladingJson<ListEntry[]>('bound-images', 'list', `oci:${layout}:os`, '-o', 'json');
    const unpacked = join(work, 'unpacked');
    await ok('umoci', 'unpack', '--rootless', '--image', `${layout}:os`, unpacked);
    const fromRoot = await ladingJson<ListEntry[]>('bound-images', 'list', '--root', join(unpacked, 'rootfs'), '-o', 'json');
    assert.deepEqual(fromImage, fromRoot);
    assert.deepEqual(
      fromImage.map((b) => [b.source, b.file, b.image, b.tag, b.digest]),
      [
        [`/${DIR}/app.image`, `/${SYS}/app.image`, 'quay.io/example/app:1.1', '1.1', null],
        [`/${DIR}/extra.image`, `/${SYS}/extra.image`, 'registry.example:5000/tools/extra:2', '2', null],
        [`/${DIR}/web.container`, `/${ETC}/web.image`, `quay.io/example/web@${WEB_DIGEST}`, null, WEB_DIGEST],
      ],
    );
  });

  it('gives the mirror planner the same images, and none for an image without a bootable label', async () => {
    const store = await LayoutStore.open(layout, 'read');
    const desc = await store.resolve('os');
    const found = await boundImagesOf(store, desc);
    assert.deepEqual(
      found.map((b) => b.image),
      ['quay.io/example/app:1.1', 'registry.example:5000/tools/extra:2', `quay.io/example/web@${WEB_DIGEST}`],
    );
    await ok('umoci', 'config', '--image', `${layout}:os`, '--tag', 'plain', '--config.label', 'containers.bootc=0');
    assert.deepEqual(await boundImagesOf(store, await store.resolve('plain')), []);
    assert.equal((await boundImagesOf(store, await store.resolve('plain'), { anyImage: true })).length, 3);
    await store.close();
  });

  it('prints them for people, with warnings for floating tags', async () => {
    const r = await lading('bound-images', 'list', `oci:${layout}:os`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.startsWith(
        [
          'quay.io/example/app:1.1',
          '  tag 1.1 (no digest)',
          `  declared in /${SYS}/app.image via /${DIR}/app.image`,
          '  warning: floating reference: quay.io/example/app:1.1 has no digest',
        ].join('\n'),
      ),
      r.stdout,
    );
    assert.match(r.stdout, new RegExp(`declared in /${ETC}/web.image \\(named by /${SYS}/web.container\\)`));
    assert.match(r.stdout, /\n3 bound images\n$/);
  });
});
