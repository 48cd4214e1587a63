/**
 * `lading mirror` against real registries: a mirror set into one layout, an archive, and a registry
 * prefix; replaying a carried mirror into the disconnected registry; keep-going, shards, keep-host,
 * dry runs, re-runs; and the ImageDigestMirrorSet and mapping list written afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { SOURCE_ANNOTATION } from '../../src/copy/mirror-names.js';
import type { Descriptor, ImageIndex } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { lading, ladingDigest, ladingJson, ladingOk } from '../helpers/run.js';

interface MirrorJson {
  images: { source: string; destination: string; digest?: string; error?: string; result?: { bytes: number; manifests: number } }[];
  failed: number;
}

describe('lading mirror', () => {
  let work: string;
  let src: RegistryInstance;
  let site: RegistryInstance;
  let multi: Descriptor;
  let single: Descriptor;
  let arm: Descriptor;
  let set: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-mirror-'));
    [src, site] = await Promise.all([startRegistry(), startRegistry()]);
    const layout = await LayoutStore.open(join(work, 'build'), 'write');
    const base = { 'etc/os-release': 'shared base layer\n'.repeat(500) };
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 's390x' },
    ];
    const children = [];
    for (const p of platforms)
      children.push(
        await writeImage(layout, { platform: p, layers: [{ files: base }, { files: { [`bin/${p.architecture}`]: p.architecture } }] }),
      );
    arm = children[1] as Descriptor;
    multi = await writeIndex(layout, children, ['multi']);
    single = await writeImage(layout, { layers: [{ files: base }, { files: { 'db/data': 'db' } }] }, ['db']);
    await layout.close();
    await ladingOk('copy', '-q', '--all', `oci:${work}/build:multi`, `docker://${src.host}/org/app:1.2`);
    await ladingOk('copy', '-q', `oci:${work}/build:db`, `docker://${src.host}/org/db:9`);
    set = join(work, 'set.yaml');
    await writeFile(
      set,
      [
        'images:',
        `  - name: docker://${src.host}/org/app:1.2`,
        `  - name: ${src.host}/org/db@${single.digest}`,
        `  - name: ${src.host}/org/app:1.2`,
        '    platforms: [linux/amd64, linux/arm64]',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await Promise.all([src?.stop(), site?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it('mirrors a set into ONE layout: each blob once, ref names skopeo can read, digest-only images untagged', async () => {
    const out = join(work, 'carry');
    const report = await ladingJson<MirrorJson>('mirror', '-o', 'json', '-f', set, '--to', `oci:${out}`, '--results', join(work, 'r1'));
    assert.equal(report.failed, 0);
    assert.equal(report.images.length, 2, 'the same source twice is one image (platform lists merge)');
    assert.equal(
      await ladingDigest(`oci:${out}:${src.host}/org/app:1.2`),
      multi.digest,
      'all platforms were asked for, so the index keeps its digest',
    );
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as ImageIndex;
    const db = index.manifests.find((m) => m.digest === single.digest);
    assert.equal(db?.annotations?.['org.opencontainers.image.ref.name'], undefined, 'a digest-only source gets no tag');
    assert.equal(db?.annotations?.[SOURCE_ANNOTATION], `${src.host}/org/db@${single.digest}`);
    // 3 platform manifests + index + db manifest; 3 configs + db config; shared base + 3 + 1 layers.
    const blobs = await readdir(join(out, 'blobs', 'sha256'));
    assert.equal(blobs.length, 5 + 4 + 5, 'the shared base layer is stored once');
    assert.match((await lading('fsck', `oci:${out}`)).stdout, /ok/);
    const mapping = await readFile(join(work, 'r1', 'mapping.txt'), 'utf8');
    assert.match(mapping, new RegExp(`^${src.host}/org/app:1.2=oci:${out}:${src.host}/org/app:1.2$`, 'm'));
  });

  it('replays a carried layout into the disconnected registry under the same names, and writes the IDMS', async () => {
    const carry = join(work, 'carry2');
    await ladingOk('mirror', '-q', '-f', set, '--to', `oci:${carry}`, '--results', join(work, 'r2'));
    const results = join(work, 'r3');
    const report = await ladingJson<MirrorJson>(
      'mirror',
      '-o',
      'json',
      '--from',
      `oci:${carry}`,
      '--to',
      `docker://${site.host}/mirror`,
      '--results',
      results,
    );
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    assert.equal(await ladingDigest(`docker://${site.host}/mirror/org/app:1.2`), multi.digest);
    assert.equal(await ladingDigest(`docker://${site.host}/mirror/org/db@${single.digest}`), single.digest);
    const idms = parseYaml(await readFile(join(results, 'imagedigestmirrorset.yaml'), 'utf8')) as {
      kind: string;
      spec: { imageDigestMirrors: { source: string; mirrors: string[] }[] };
    };
    assert.equal(idms.kind, 'ImageDigestMirrorSet');
    assert.deepEqual(idms.spec.imageDigestMirrors, [
      { mirrors: [`${site.host}/mirror/org/app`], source: `${src.host}/org/app` },
      { mirrors: [`${site.host}/mirror/org/db`], source: `${src.host}/org/db` },
    ]);
    const mapping = (await readFile(join(results, 'mapping.txt'), 'utf8')).trim().split('\n');
    assert.deepEqual(mapping, [
      `${src.host}/org/app:1.2=${site.host}/mirror/org/app:1.2`,
      `${src.host}/org/db@${single.digest}=${site.host}/mirror/org/db@${single.digest}`,
    ]);

    const again = await ladingJson<MirrorJson>(
      'mirror',
      '-o',
      'json',
      '--from',
      `oci:${carry}`,
      '--to',
      `docker://${site.host}/mirror`,
      '--results',
      results,
    );
    assert.deepEqual(
      again.images.map((i) => [i.result?.manifests, i.result?.bytes]),
      [
        [0, 0],
        [0, 0],
      ],
      'a re-run pushes and moves nothing',
    );
  });

  it('carries a mirror in an archive, registry to registry with --keep-host, and a platform subset', async () => {
    const archive = join(work, 'carry.tar');
    const subset = join(work, 'subset.yaml');
    await writeFile(subset, `images:\n  - name: ${src.host}/org/app:1.2\n    platforms: [linux/arm64]\n`);
    await ladingOk('mirror', '-q', '-f', subset, '--to', `oci-archive:${archive}`, '--results', join(work, 'r4'));
    assert.equal(
      await ladingDigest(`oci-archive:${archive}:${src.host}/org/app:1.2`),
      arm.digest,
      'one platform asked for: its manifest alone',
    );
    await ladingOk(
      'mirror',
      '-q',
      '--from',
      `oci-archive:${archive}`,
      '--to',
      `docker://${site.host}/fromtar`,
      '--results',
      join(work, 'r5'),
    );
    assert.equal(await ladingDigest(`docker://${site.host}/fromtar/org/app:1.2`), arm.digest);

    await ladingOk('mirror', '-q', '-f', set, '--keep-host', '--to', `docker://${site.host}/kh`, '--results', join(work, 'r6'));
    const hostPart = src.host.replace(':', '-');
    assert.equal(await ladingDigest(`docker://${site.host}/kh/${hostPart}/org/app:1.2`), multi.digest);
  });

  it('keeps going past a missing image and lists exactly what failed; without --keep-going it fails', async () => {
    const broken = join(work, 'broken.yaml');
    await writeFile(broken, `images:\n  - name: ${src.host}/org/app:1.2\n  - name: ${src.host}/org/nope:1\n`);
    const r = await lading('mirror', '--keep-going', '-f', broken, '--to', `oci:${work}/kg`, '--results', join(work, 'r7'));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /1 images mirrored .* 1 failed/);
    assert.match(r.stdout, new RegExp(`failed: ${src.host}/org/nope:1: .*not found`));
    assert.equal(await ladingDigest(`oci:${work}/kg:${src.host}/org/app:1.2`), multi.digest, 'the good image landed');
    assert.match(r.stderr.trim().split('\n').at(-1) ?? '', /^lading: 1 of 2 images failed to mirror$/);
  });

  it('splits the work into shards that together cover every image once', async () => {
    const many = join(work, 'many.yaml');
    const names = Array.from({ length: 8 }, (_, i) => `${src.host}/org/db:${i}`);
    for (const n of names) await ladingOk('copy', '-q', `oci:${work}/build:db`, `docker://${n}`);
    await writeFile(many, `images:\n${names.map((n) => `  - name: ${n}\n`).join('')}`);
    const seen: string[] = [];
    for (const shard of ['1/3', '2/3', '3/3']) {
      const r = await ladingJson<MirrorJson>(
        'mirror',
        '-o',
        'json',
        '--shard',
        shard,
        '-f',
        many,
        '--to',
        `oci:${work}/shards`,
        '--results',
        join(work, 'r8'),
      );
      seen.push(...r.images.map((i) => i.source));
    }
    assert.deepEqual(seen.sort(), [...names].sort());
  });

  it('a dry run prints the plan and writes nothing', async () => {
    const r = await ladingJson<MirrorJson>(
      'mirror',
      '-o',
      'json',
      '--dry-run',
      '-f',
      set,
      '--to',
      `oci:${work}/dry`,
      '--results',
      join(work, 'r9'),
    );
    assert.equal(r.failed, 0);
    assert.ok((r.images[0]?.result?.manifests ?? 0) > 0, 'the plan lists the manifests it would push');
    assert.deepEqual(await readdir(work).then((d) => d.filter((n) => n === 'dry' || n === 'r9')), []);
  });
});
