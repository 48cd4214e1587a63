/**
 * Interop with umoci (/usr/bin/umoci, 0.4.7): OCI image layouts cross between the two in both directions.
 *
 * - umoci → lading: a layout umoci builds (init, new, unpack, repack twice, config) is read by lading
 *   (digest, inspect, --raw, --config), copied to a second layout, checked with fsck, and umoci unpacks the
 *   copy to the same root filesystem it started from.
 * - lading → umoci: images lading writes (uncompressed layers, a file overwritten and one whited out by a
 *   later layer) are unpacked by umoci, straight from lading's layout and after `lading copy` (hard-linked
 *   and --no-link), and one platform `lading copy --platform` takes out of an index.
 * - both in one layout: lading adds a tag to a layout umoci manages, umoci adds one to a layout lading
 *   wrote, and each side's tools (umoci ls/unpack/gc, lading ls/inspect/fsck) still agree.
 *
 * umoci runs with --rootless so the tests pass as root or not. umoci cannot resolve a tag that names an
 * index ("tag is ambiguous"), so everything handed to umoci is a single-manifest image.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { listRootfs, sha256Hex } from '../helpers/rootfs.js';
import { lading, ladingDigest, ladingJson, ladingOk, ok } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

interface IndexJson {
  manifests: { digest: string; mediaType?: string; size: number; annotations?: Record<string, string> }[];
}
interface ManifestJson {
  config: { digest: string; mediaType: string; size: number };
  layers: { digest: string; mediaType: string; size: number }[];
}
interface CopyJson {
  descriptor: { digest: string };
  manifests: number;
  blobs: { copied: number; linked: number; skipped: number };
}
interface InspectJson {
  digest: string;
  mediaType: string;
  size: number;
  layers?: { digest: string; mediaType: string; size: number }[];
  config?: { digest: string; mediaType: string; size: number; platform?: string; cmd?: string[] | null; env?: string[] };
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

function blobFile(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(layout, 'blobs', alg, hex);
}

/** The digest index.json records for `tag`, as umoci (or anyone) wrote it. */
async function taggedDigest(layout: string, tag: string): Promise<string> {
  const index = await readJson<IndexJson>(join(layout, 'index.json'));
  const found = index.manifests.filter((m) => m.annotations?.[REF_NAME] === tag);
  assert.equal(found.length, 1, `${layout}/index.json should list tag ${tag} once`);
  return found[0]!.digest;
}

async function assertFsckClean(layout: string): Promise<void> {
  const r = await lading('fsck', `oci:${layout}`);
  assert.equal(r.code, 0, `lading fsck oci:${layout} failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: ok\n$/);
}

async function unpack(image: string, bundle: string): Promise<string> {
  await ok('umoci', 'unpack', '--rootless', '--image', image, bundle);
  return join(bundle, 'rootfs');
}

describe('umoci builds, lading reads and copies', () => {
  let work: string;
  let dir: string;
  let bundle: string;
  let digest: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-umoci-'));
    dir = join(work, 'umoci-layout');
    bundle = join(work, 'bundle');
    await ok('umoci', 'init', '--layout', dir);
    await ok('umoci', 'new', '--image', `${dir}:v1`);
    const rootfs = await unpack(`${dir}:v1`, bundle);

    // Layer 1: nested directories, an executable, a symlink, a file to overwrite, a file to delete, and a
    // ~1.5 MiB file of incompressible bytes (a layer that crosses lading's 1 MiB read chunks).
    await mkdir(join(rootfs, 'usr/share/hello/data/deep'), { recursive: true });
    await mkdir(join(rootfs, 'usr/bin'), { recursive: true });
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'usr/bin/hello'), '#!/bin/sh\necho "$GREETING"\n');
    await chmod(join(rootfs, 'usr/bin/hello'), 0o755);
    await writeFile(join(rootfs, 'usr/share/hello/data/deep/words.txt'), 'alpha\nbeta\ngamma\n');
    await symlink('../share/hello/data/deep/words.txt', join(rootfs, 'usr/bin/words'));
    await writeFile(join(rootfs, 'etc/hello.conf'), 'version=1\n');
    await writeFile(join(rootfs, 'etc/obsolete'), 'remove me\n');
    const noise = Buffer.alloc(1536 * 1024);
    for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ (i >>> 7)) >>> 0, i);
    await writeFile(join(rootfs, 'usr/share/hello/data/noise.bin'), noise);
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${dir}:v1`, bundle);

    // Layer 2: overwrite, delete (umoci writes a whiteout), add.
    await writeFile(join(rootfs, 'etc/hello.conf'), 'version=2\n');
    await rm(join(rootfs, 'etc/obsolete'));
    await writeFile(join(rootfs, 'usr/share/hello/data/NEWS'), 'layer two\n');
    await ok('umoci', 'repack', '--refresh-bundle', '--image', `${dir}:v1`, bundle);

    await ok(
      'umoci',
      'config',
      '--image',
      `${dir}:v1`,
      '--config.cmd',
      '/usr/bin/hello',
      '--config.cmd',
      '--loud',
      '--config.env',
      'GREETING=hi',
      '--config.env',
      'PATH=/usr/bin:/bin',
    );
    digest = await taggedDigest(dir, 'v1');
  });
  // (test/helpers/tmp.ts's tempDir registers its cleanup on the current test, so a suite-wide dir is made here.)
  after(() => rm(work, { recursive: true, force: true }));

  it('lading digest equals the digest umoci recorded in index.json', async () => {
    assert.equal(await ladingDigest(`oci:${dir}:v1`), digest);
    assert.deepEqual((await ladingOk('ls', `oci:${dir}`)).split('\n').filter(Boolean), ['v1']);
  });

  it("lading inspect -o json shows umoci's layers, sizes, config, cmd and env", async () => {
    const manifest = await readJson<ManifestJson>(blobFile(dir, digest));
    const summary = await ladingJson<InspectJson>('inspect', '-o', 'json', `oci:${dir}:v1`);
    assert.equal(summary.digest, digest);
    assert.equal(summary.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(summary.size, (await stat(blobFile(dir, digest))).size);
    assert.equal(manifest.layers.length, 2, 'two repacks give two layers');
    assert.ok(manifest.layers[0]!.size > 1024 * 1024, "the first layer crosses lading's 1 MiB read chunks");
    assert.deepEqual(
      summary.layers,
      manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
    );
    for (const l of manifest.layers) assert.equal((await stat(blobFile(dir, l.digest))).size, l.size, `layer ${l.digest} file size`);
    assert.ok(manifest.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
    assert.equal(summary.config?.digest, manifest.config.digest);
    assert.equal(summary.config?.size, manifest.config.size);
    assert.deepEqual(summary.config?.cmd, ['/usr/bin/hello', '--loud']);
    assert.ok(summary.config?.env?.includes('GREETING=hi'), `env ${JSON.stringify(summary.config?.env)}`);
    assert.ok(summary.config?.env?.includes('PATH=/usr/bin:/bin'), `env ${JSON.stringify(summary.config?.env)}`);
  });

  it("lading inspect --raw and --config print umoci's bytes exactly", async () => {
    const manifest = await readJson<ManifestJson>(blobFile(dir, digest));
    assert.equal(await ladingOk('inspect', '--raw', `oci:${dir}:v1`), await readFile(blobFile(dir, digest), 'utf8'));
    const config = await ladingOk('inspect', '--config', `oci:${dir}:v1`);
    assert.equal(config, await readFile(blobFile(dir, manifest.config.digest), 'utf8'));
    assert.equal(`sha256:${sha256Hex(config)}`, manifest.config.digest);
  });

  it('lading copy to a second layout keeps the digest, passes fsck, and umoci unpacks the same rootfs', async () => {
    const dir2 = join(work, 'copy');
    const before = await snapshot(dir);
    const copied = await ladingJson<CopyJson>('copy', '-o', 'json', `oci:${dir}:v1`, `oci:${dir2}:v1`);
    assert.equal(copied.descriptor.digest, digest);
    assert.equal(copied.manifests, 1);
    assert.equal(copied.blobs.copied + copied.blobs.linked, 3, 'config + 2 layers');
    assert.equal(await snapshot(dir), before, 'the source layout is untouched');
    assert.equal(await ladingDigest(`oci:${dir2}:v1`), digest);
    assert.equal(await taggedDigest(dir2, 'v1'), digest);
    await assertFsckClean(dir2);

    const rootfs2 = await unpack(`${dir2}:v1`, join(work, 'bundle-copy'));
    const original = await listRootfs(join(bundle, 'rootfs'));
    assert.deepEqual(await listRootfs(rootfs2), original);
    // The listing itself is what the layers should hold, so the comparison above is not vacuous.
    assert.equal(await readFile(join(rootfs2, 'etc/hello.conf'), 'utf8'), 'version=2\n');
    assert.equal(original['etc/obsolete'], undefined, 'the whiteout removed etc/obsolete');
    assert.equal(original['usr/bin/words']?.type, 'symlink');
    assert.equal(original['usr/bin/words']?.content, '../share/hello/data/deep/words.txt');
    assert.equal(original['usr/bin/hello']?.mode, 0o755);
    assert.equal(original['usr/share/hello/data/deep/words.txt']?.content, sha256Hex('alpha\nbeta\ngamma\n'));
    assert.equal(original['usr/share/hello/data/NEWS']?.type, 'file');
    assert.equal((await stat(join(rootfs2, 'usr/share/hello/data/noise.bin'))).size, 1536 * 1024);

    // The runtime config umoci generates from the copied image config still carries cmd and env.
    const runtime = await readJson<{ process: { args: string[]; env: string[] } }>(join(work, 'bundle-copy', 'config.json'));
    assert.deepEqual(runtime.process.args, ['/usr/bin/hello', '--loud']);
    assert.ok(runtime.process.env.includes('GREETING=hi'));
  });

  it('umoci still manages its layout after lading adds a tag to it', async () => {
    const src = join(work, 'lading-src');
    const store = await LayoutStore.open(src, 'write');
    const desc = await writeImage(store, { layers: [{ files: { 'srv/from-lading.txt': 'written by lading\n' } }] }, ['x']);
    await store.close();

    const shared = join(work, 'shared');
    await ok('cp', '-a', dir, shared);
    await ladingOk('copy', `oci:${src}:x`, `oci:${shared}:from-lading`);
    assert.deepEqual((await ok('umoci', 'ls', '--layout', shared)).split('\n').filter(Boolean).sort(), ['from-lading', 'v1']);
    const rootfs = await unpack(`${shared}:from-lading`, join(work, 'bundle-shared'));
    assert.equal(await readFile(join(rootfs, 'srv/from-lading.txt'), 'utf8'), 'written by lading\n');
    // umoci gc keeps what both tags reach and drops umoci's own superseded blobs; lading agrees it is whole.
    await ok('umoci', 'gc', '--layout', shared);
    await assertFsckClean(shared);
    assert.equal(await ladingDigest(`oci:${shared}:from-lading`), desc.digest);
    assert.equal(await ladingDigest(`oci:${shared}:v1`), digest);
  });
});

describe('lading writes, umoci unpacks', () => {
  let work: string;
  let src: string;
  let digest: string;
  const payload = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));

  /** What every unpack of the image must hold: the later layer wins, the whited-out file is gone. */
  async function assertContent(rootfs: string): Promise<void> {
    assert.equal(await readFile(join(rootfs, 'etc/app.conf'), 'utf8'), 'version=2\n', 'the later layer overwrites etc/app.conf');
    await assert.rejects(stat(join(rootfs, 'etc/motd')), { code: 'ENOENT' }, 'etc/.wh.motd removes etc/motd');
    assert.equal(await readFile(join(rootfs, 'usr/share/doc/app/README'), 'utf8'), 'from layer one\n');
    assert.equal(await readFile(join(rootfs, 'usr/share/doc/app/NEWS'), 'utf8'), 'from layer two\n');
    assert.deepEqual(await readFile(join(rootfs, 'srv/data/payload.bin')), payload);
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-umoci-w-'));
    src = join(work, 'lading');
    const store = await LayoutStore.open(src, 'write');
    const desc = await writeImage(
      store,
      {
        layers: [
          {
            files: {
              'etc/app.conf': 'version=1\n',
              'etc/motd': 'old news\n',
              'usr/share/doc/app/README': 'from layer one\n',
              'srv/data/payload.bin': payload,
            },
          },
          { files: { 'etc/app.conf': 'version=2\n', 'etc/.wh.motd': '', 'usr/share/doc/app/NEWS': 'from layer two\n' } },
        ],
        config: { Cmd: ['/bin/app', 'serve'], Env: ['APP_MODE=test'] },
      },
      ['t'],
    );
    await store.close();
    digest = desc.digest;
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('umoci unpacks an image lading wrote, later layer winning', async () => {
    await assertContent(await unpack(`${src}:t`, join(work, 'bundle-src')));
    const runtime = await readJson<{ process: { args: string[]; env: string[] } }>(join(work, 'bundle-src', 'config.json'));
    assert.deepEqual(runtime.process.args, ['/bin/app', 'serve']);
    assert.ok(runtime.process.env.includes('APP_MODE=test'));
  });

  it('umoci unpacks it after lading copy --no-link, from blobs that are copies, not links', async () => {
    const dst = join(work, 'nolink');
    const copied = await ladingJson<CopyJson>('copy', '--no-link', '-o', 'json', `oci:${src}:t`, `oci:${dst}:t`);
    assert.deepEqual(copied.blobs, { copied: 3, linked: 0, mounted: 0, skipped: 0 });
    assert.equal(await ladingDigest(`oci:${dst}:t`), digest);
    const manifest = await readJson<ManifestJson>(blobFile(dst, digest));
    for (const d of [manifest.config, ...manifest.layers]) {
      const a = await stat(blobFile(src, d.digest));
      const b = await stat(blobFile(dst, d.digest));
      assert.notEqual(a.ino, b.ino, `${d.digest} is a separate file`);
      assert.equal(b.nlink, 1);
    }
    await assertFsckClean(dst);
    const rootfs = await unpack(`${dst}:t`, join(work, 'bundle-nolink'));
    await assertContent(rootfs);
    assert.deepEqual(await listRootfs(rootfs), await listRootfs(join(work, 'bundle-src', 'rootfs')));
  });

  it('umoci unpacks and re-tags a hard-linked copy without touching the source layout', async () => {
    const dst = join(work, 'linked');
    const before = await snapshot(src);
    const copied = await ladingJson<CopyJson>('copy', '-o', 'json', `oci:${src}:t`, `oci:${dst}:t`);
    assert.equal(copied.blobs.copied + copied.blobs.linked, 3);
    await assertContent(await unpack(`${dst}:t`, join(work, 'bundle-linked')));

    // umoci writes a new config and manifest into the copy and garbage-collects it.
    await ok('umoci', 'config', '--image', `${dst}:t`, '--tag', 't2', '--config.env', 'EXTRA=1');
    await ok('umoci', 'rm', '--image', `${dst}:t`);
    await ok('umoci', 'gc', '--layout', dst);
    assert.deepEqual((await ladingOk('ls', `oci:${dst}`)).split('\n').filter(Boolean), ['t2']);
    const summary = await ladingJson<InspectJson>('inspect', '-o', 'json', `oci:${dst}:t2`);
    assert.ok(summary.config?.env?.includes('EXTRA=1'));
    assert.ok(summary.config?.env?.includes('APP_MODE=test'));
    assert.equal(summary.layers?.length, 2);
    await assertFsckClean(dst);
    assert.equal(await snapshot(src), before, 'the source layout lading wrote is untouched');
    await assertFsckClean(src);
  });

  it('umoci unpacks each platform lading copy --platform takes out of an index', async () => {
    const multi = join(work, 'multi');
    const store = await LayoutStore.open(multi, 'write');
    const amd = await writeImage(store, {
      platform: { os: 'linux', architecture: 'amd64' },
      layers: [{ files: { 'etc/arch': 'amd64\n' } }],
    });
    const arm = await writeImage(store, {
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      layers: [{ files: { 'etc/arch': 'arm64\n' } }],
    });
    await writeIndex(store, [amd, arm], ['v1']);
    await store.close();

    for (const [platform, want, expected] of [
      ['linux/amd64', amd, 'amd64\n'],
      ['linux/arm64/v8', arm, 'arm64\n'],
    ] as const) {
      const name = platform.replaceAll('/', '-');
      const dst = join(work, `single-${name}`);
      const r = await lading('copy', '--platform', platform, '-o', 'json', `oci:${multi}:v1`, `oci:${dst}:one`);
      assert.equal(r.code, 0, `lading copy --platform ${platform} exited ${r.code}: ${r.stderr.trim()}`);
      assert.equal((JSON.parse(r.stdout) as CopyJson).descriptor.digest, want.digest);
      assert.equal(await taggedDigest(dst, 'one'), want.digest);
      const rootfs = await unpack(`${dst}:one`, join(work, `bundle-${name}`));
      assert.equal(await readFile(join(rootfs, 'etc/arch'), 'utf8'), expected);
    }
  });
});
