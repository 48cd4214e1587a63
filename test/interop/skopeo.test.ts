/**
 * Interop with skopeo (/usr/bin/skopeo, 1.9.3): OCI layouts (`oci:`) and oci-archive tars
 * (`oci-archive:`) cross between the two in both directions, for a single image and a two-platform index.
 *
 * - lading layout → skopeo: `skopeo inspect` (and --raw, --config) sees lading's digests and bytes;
 *   `skopeo copy` out of it gives layouts lading reads and fscks clean.
 * - skopeo archive → lading: lading lists, digests and copies archives skopeo wrote.
 * - lading archive → skopeo: skopeo inspects and copies archives lading wrote, digests unchanged.
 * - round trip: lading archive → skopeo layout → lading layout/archive → skopeo, digests unchanged.
 *
 * skopeo compresses the uncompressed layers lading writes when it copies into oci: or oci-archive: (new
 * layer, config-unchanged, manifest digests); --preserve-digests turns that off, so digest equality with
 * lading's source is asserted only with it, and otherwise lading must agree with skopeo's own digests.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { lading, ladingDigest, ladingJson, ladingOk, ok } from '../helpers/run.js';

interface SkopeoInspect {
  Digest: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Layers: string[];
  Env: string[] | null;
}
interface InspectJson {
  digest: string;
  mediaType: string;
  layers?: { digest: string; mediaType: string; size: number }[];
  manifests?: { digest: string; platform?: string }[];
  config?: { digest: string; platform?: string; cmd?: string[] | null; env?: string[] };
}
interface CopyJson {
  descriptor: { digest: string; mediaType: string };
  manifests: number;
}

async function ladingTags(location: string): Promise<string[]> {
  return (await ladingOk('ls', location)).split('\n').filter(Boolean);
}

async function assertFsckClean(layout: string): Promise<void> {
  const r = await lading('fsck', `oci:${layout}`);
  assert.equal(r.code, 0, `lading fsck oci:${layout} failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: ok\n$/);
}

/** skopeo with --quiet copies (its progress lines are noise in a failure message). */
function skopeoCopy(...args: string[]): Promise<string> {
  return ok('skopeo', 'copy', '--quiet', ...args);
}

async function skopeoInspect(ref: string, ...global: string[]): Promise<SkopeoInspect> {
  return JSON.parse(await ok('skopeo', ...global, 'inspect', ref)) as SkopeoInspect;
}

/** The digest of the bytes `skopeo inspect --raw` prints: what skopeo itself would call the image. */
async function skopeoRawDigest(ref: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await ok('skopeo', 'inspect', '--raw', ref))
    .digest('hex')}`;
}

describe('skopeo and lading', () => {
  let work: string;
  /** A layout lading wrote: tag `app` (one image, two layers), tag `multi` (linux/amd64 + linux/arm64/v8). */
  let src: string;
  let app: Descriptor;
  let amd: Descriptor;
  let arm: Descriptor;
  let multi: Descriptor;
  // ~1.2 MiB that does not compress: a layer that crosses lading's 1 MiB read chunks, in a tar and out.
  const payload = createHash('sha256').update('seed').digest();
  const big = Buffer.concat(Array.from({ length: 40_000 }, (_, i) => createHash('sha256').update(payload).update(String(i)).digest()));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-skopeo-'));
    src = join(work, 'lading');
    const store = await LayoutStore.open(src, 'write');
    app = await writeImage(
      store,
      {
        layers: [
          { files: { 'etc/app.conf': 'version=1\n', 'usr/share/app/blob.bin': big } },
          { files: { 'etc/app.conf': 'version=2\n', 'usr/share/app/NEWS': 'two\n' } },
        ],
        config: { Cmd: ['/usr/bin/app'], Env: ['PATH=/usr/bin:/bin', 'APP=1'] },
        annotations: { 'org.opencontainers.image.title': 'lading interop' },
      },
      ['app'],
    );
    amd = await writeImage(store, { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { 'etc/arch': 'amd64\n' } }] });
    arm = await writeImage(store, {
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      layers: [{ files: { 'etc/arch': 'arm64\n' } }],
    });
    multi = await writeIndex(store, [amd, arm], ['multi']);
    await store.close();
  });
  after(() => rm(work, { recursive: true, force: true }));

  describe('skopeo reads a layout lading wrote', () => {
    it("skopeo inspect oci:DIR:TAG reports lading's digest, layers, platform and env for one image", async () => {
      const s = await skopeoInspect(`oci:${src}:app`);
      assert.equal(s.Digest, app.digest);
      assert.equal(await ladingDigest(`oci:${src}:app`), app.digest);
      const summary = await ladingJson<InspectJson>('inspect', '-o', 'json', `oci:${src}:app`);
      assert.deepEqual(
        s.Layers,
        summary.layers?.map((l) => l.digest),
      );
      assert.equal(s.Layers.length, 2);
      assert.equal(`${s.Os}/${s.Architecture}`, 'linux/amd64');
      assert.deepEqual(s.Env, ['PATH=/usr/bin:/bin', 'APP=1']);
      assert.equal(await skopeoRawDigest(`oci:${src}:app`), app.digest);
      assert.equal(await ok('skopeo', 'inspect', '--raw', `oci:${src}:app`), await ladingOk('inspect', '--raw', `oci:${src}:app`));
      const config = await ladingOk('inspect', '--config', `oci:${src}:app`);
      assert.deepEqual(JSON.parse(await ok('skopeo', 'inspect', '--config', `oci:${src}:app`)), JSON.parse(config));
    });

    it("skopeo inspect --raw of a lading-written index hashes to lading's digest, and each platform resolves", async () => {
      assert.equal(await ladingDigest(`oci:${src}:multi`), multi.digest);
      assert.equal(await skopeoRawDigest(`oci:${src}:multi`), multi.digest);
      const raw = JSON.parse(await ok('skopeo', 'inspect', '--raw', `oci:${src}:multi`)) as { manifests: { digest: string }[] };
      assert.deepEqual(
        raw.manifests.map((m) => m.digest),
        [amd.digest, arm.digest],
      );
      for (const [arch, variant, image] of [
        ['amd64', '', amd],
        ['arm64', 'v8', arm],
      ] as const) {
        const s = await skopeoInspect(
          `oci:${src}:multi`,
          '--override-os',
          'linux',
          '--override-arch',
          arch,
          ...(variant ? ['--override-variant', variant] : []),
        );
        assert.equal(s.Architecture, arch);
        const platform = `linux/${arch}${variant ? `/${variant}` : ''}`;
        const child = await ladingJson<InspectJson>('inspect', '-o', 'json', '--platform', platform, `oci:${src}:multi`);
        assert.equal(child.digest, image.digest);
        assert.deepEqual(
          s.Layers,
          child.layers?.map((l) => l.digest),
        );
      }
    });

    it('skopeo copy oci:DIR:TAG oci:OUT:TAG gives layouts lading reads and fscks clean', async () => {
      // Default: skopeo gzips lading's uncompressed layers, so the manifest changes; lading must agree
      // with skopeo about the new one.
      const out = join(work, 'skopeo-out');
      await skopeoCopy(`oci:${src}:app`, `oci:${out}:app`);
      await assertFsckClean(out);
      const copied = await skopeoInspect(`oci:${out}:app`);
      assert.equal(await ladingDigest(`oci:${out}:app`), copied.Digest);
      const summary = await ladingJson<InspectJson>('inspect', '-o', 'json', `oci:${out}:app`);
      assert.ok(
        summary.layers?.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'),
        JSON.stringify(summary.layers),
      );
      assert.deepEqual(summary.config?.env, ['PATH=/usr/bin:/bin', 'APP=1']);

      // --preserve-digests: the very same image.
      const same = join(work, 'skopeo-same');
      await skopeoCopy('--preserve-digests', `oci:${src}:app`, `oci:${same}:app`);
      await assertFsckClean(same);
      assert.equal(await ladingDigest(`oci:${same}:app`), app.digest);

      // An index, whole.
      const all = join(work, 'skopeo-all');
      await skopeoCopy('--all', '--preserve-digests', `oci:${src}:multi`, `oci:${all}:multi`);
      await assertFsckClean(all);
      assert.equal(await ladingDigest(`oci:${all}:multi`), multi.digest);
      await skopeoCopy('--all', `oci:${src}:multi`, `oci:${all}:rewritten`);
      await assertFsckClean(all);
      assert.equal(await ladingDigest(`oci:${all}:rewritten`), await skopeoRawDigest(`oci:${all}:rewritten`));
      assert.deepEqual(await ladingTags(`oci:${all}`), ['multi', 'rewritten']);

      // Untagged: skopeo records the image with no ref.name, and lading takes the layout's only image.
      const untagged = join(work, 'skopeo-untagged');
      await skopeoCopy('--preserve-digests', `oci:${src}:app`, `oci:${untagged}`);
      assert.equal(await ladingDigest(`oci:${untagged}`), app.digest);
      assert.deepEqual(await ladingTags(`oci:${untagged}`), []);
      await assertFsckClean(untagged);
    });
  });

  describe('lading reads an oci-archive skopeo wrote', () => {
    it('lists, digests and copies a single-image archive', async () => {
      const file = join(work, 'skopeo-app.tar');
      await skopeoCopy(`oci:${src}:app`, `oci-archive:${file}:t`);
      assert.deepEqual(await ladingTags(`oci-archive:${file}`), ['t']);
      const digest = await ladingDigest(`oci-archive:${file}:t`);
      assert.equal(digest, (await skopeoInspect(`oci-archive:${file}:t`)).Digest);
      assert.equal(await ladingDigest(`oci-archive:${file}`), digest, "the archive's only image, untagged");
      const x = join(work, 'from-skopeo-archive');
      const copied = await ladingJson<CopyJson>('copy', '-o', 'json', `oci-archive:${file}:t`, `oci:${x}:t`);
      assert.equal(copied.descriptor.digest, digest);
      assert.equal(await ladingDigest(`oci:${x}:t`), digest);
      await assertFsckClean(x);

      // With --preserve-digests skopeo's archive holds lading's own image.
      const kept = join(work, 'skopeo-app-kept.tar');
      await skopeoCopy('--preserve-digests', `oci:${src}:app`, `oci-archive:${kept}:t`);
      assert.equal(await ladingDigest(`oci-archive:${kept}:t`), app.digest);
      assert.equal(await ladingOk('inspect', '--raw', `oci-archive:${kept}:t`), await ladingOk('inspect', '--raw', `oci:${src}:app`));
      assert.equal(await ladingOk('inspect', '--config', `oci-archive:${kept}:t`), await ladingOk('inspect', '--config', `oci:${src}:app`));
    });

    it('lists, digests and copies a two-platform archive', async () => {
      const file = join(work, 'skopeo-multi.tar');
      await skopeoCopy('--all', '--preserve-digests', `oci:${src}:multi`, `oci-archive:${file}:t`);
      assert.deepEqual(await ladingTags(`oci-archive:${file}`), ['t']);
      assert.equal(await ladingDigest(`oci-archive:${file}:t`), multi.digest);
      const summary = await ladingJson<InspectJson>('inspect', '-o', 'json', `oci-archive:${file}:t`);
      assert.deepEqual(
        summary.manifests?.map((m) => [m.platform, m.digest]),
        [
          ['linux/amd64', amd.digest],
          ['linux/arm64/v8', arm.digest],
        ],
      );
      const child = await ladingJson<InspectJson>('inspect', '-o', 'json', '--platform', 'linux/arm64/v8', `oci-archive:${file}:t`);
      assert.equal(child.digest, arm.digest);
      assert.equal(child.config?.platform, 'linux/arm64/v8');
      const x = join(work, 'from-skopeo-multi');
      await ladingOk('copy', '--all', `oci-archive:${file}:t`, `oci:${x}:t`);
      assert.equal(await ladingDigest(`oci:${x}:t`), multi.digest);
      await assertFsckClean(x);
    });
  });

  describe('skopeo reads an oci-archive lading wrote', () => {
    it("inspects and copies a single-image archive with lading's digest", async () => {
      const file = join(work, 'lading-app.tar');
      const copied = await ladingJson<CopyJson>('copy', '-o', 'json', `oci:${src}:app`, `oci-archive:${file}:t`);
      assert.equal(copied.descriptor.digest, app.digest);
      const s = await skopeoInspect(`oci-archive:${file}:t`);
      assert.equal(s.Digest, app.digest);
      assert.equal(s.Layers.length, 2);
      assert.equal(await skopeoRawDigest(`oci-archive:${file}:t`), app.digest);
      const y = join(work, 'skopeo-from-lading-archive');
      await skopeoCopy('--preserve-digests', `oci-archive:${file}:t`, `oci:${y}:t`);
      assert.equal(await ladingDigest(`oci:${y}:t`), app.digest);
      await assertFsckClean(y);
      // skopeo's copy holds exactly lading's blobs: the big layer came through the archive intact.
      const layer = (await ladingJson<InspectJson>('inspect', '-o', 'json', `oci:${src}:app`)).layers?.[0];
      assert.ok(layer !== undefined && layer.size > 1024 * 1024);
      const [alg, hex] = layer.digest.split(':') as [string, string];
      assert.deepEqual(await readFile(join(y, 'blobs', alg, hex)), await readFile(join(src, 'blobs', alg, hex)));
    });

    it('inspects and copies an untagged single-image archive', async () => {
      const file = join(work, 'lading-untagged.tar');
      await ladingOk('copy', `oci:${src}:app`, `oci-archive:${file}`);
      assert.equal((await skopeoInspect(`oci-archive:${file}`)).Digest, app.digest);
      const y = join(work, 'skopeo-from-untagged');
      await skopeoCopy('--preserve-digests', `oci-archive:${file}`, `oci:${y}:t`);
      assert.equal(await ladingDigest(`oci:${y}:t`), app.digest);
    });

    it("inspects and copies a two-platform archive (lading copy --all) with lading's digest", async () => {
      const file = join(work, 'lading-multi.tar');
      const copied = await ladingJson<CopyJson>('copy', '--all', '-o', 'json', `oci:${src}:multi`, `oci-archive:${file}:t`);
      assert.equal(copied.descriptor.digest, multi.digest);
      assert.equal(copied.manifests, 3);
      assert.equal(await skopeoRawDigest(`oci-archive:${file}:t`), multi.digest);
      const s = await skopeoInspect(
        `oci-archive:${file}:t`,
        '--override-os',
        'linux',
        '--override-arch',
        'arm64',
        '--override-variant',
        'v8',
      );
      assert.equal(s.Architecture, 'arm64');
      const y = join(work, 'skopeo-from-lading-multi');
      await skopeoCopy('--all', '--preserve-digests', `oci-archive:${file}:t`, `oci:${y}:t`);
      assert.equal(await ladingDigest(`oci:${y}:t`), multi.digest);
      await assertFsckClean(y);
    });
  });

  describe('round trips', () => {
    it('a layout skopeo wrote from a lading archive comes back through lading unchanged', async () => {
      const archive = join(work, 'rt-lading.tar');
      await ladingOk('copy', `oci:${src}:app`, `oci-archive:${archive}:app`);

      // skopeo as it is used by default (recompressing), then lading copies skopeo's image on.
      const viaSkopeo = join(work, 'rt-skopeo');
      await skopeoCopy(`oci-archive:${archive}:app`, `oci:${viaSkopeo}:app`);
      const skopeoDigest = await ladingDigest(`oci:${viaSkopeo}:app`);
      assert.equal(skopeoDigest, (await skopeoInspect(`oci:${viaSkopeo}:app`)).Digest);
      const back = join(work, 'rt-back');
      await ladingOk('copy', `oci:${viaSkopeo}:app`, `oci:${back}:app`);
      assert.equal(await ladingDigest(`oci:${back}:app`), skopeoDigest);
      await assertFsckClean(back);
      const archive2 = join(work, 'rt-back.tar');
      await ladingOk('copy', `oci:${back}:app`, `oci-archive:${archive2}:app`);
      assert.equal((await skopeoInspect(`oci-archive:${archive2}:app`)).Digest, skopeoDigest);
      assert.equal(await skopeoRawDigest(`oci-archive:${archive2}:app`), skopeoDigest);

      // With --preserve-digests the full circle ends at lading's original image, single and index.
      const kept = join(work, 'rt-skopeo-kept');
      await skopeoCopy('--preserve-digests', `oci-archive:${archive}:app`, `oci:${kept}:app`);
      const multiArchive = join(work, 'rt-lading-multi.tar');
      await ladingOk('copy', '--all', `oci:${src}:multi`, `oci-archive:${multiArchive}:multi`);
      await skopeoCopy('--all', '--preserve-digests', `oci-archive:${multiArchive}:multi`, `oci:${kept}:multi`);
      const final = join(work, 'rt-final');
      await ladingOk('copy', `oci:${kept}:app`, `oci:${final}:app`);
      await ladingOk('copy', '--all', `oci:${kept}:multi`, `oci:${final}:multi`);
      assert.equal(await ladingDigest(`oci:${final}:app`), app.digest);
      assert.equal(await ladingDigest(`oci:${final}:multi`), multi.digest);
      assert.deepEqual(await ladingTags(`oci:${final}`), ['app', 'multi']);
      await assertFsckClean(final);
      assert.equal(await skopeoRawDigest(`oci:${final}:multi`), multi.digest);
      assert.equal((await skopeoInspect(`oci:${final}:app`)).Digest, app.digest);
    });
  });
});
