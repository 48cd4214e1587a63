/**
 * What `lading mirror` asks of registries, counted by transparent proxies in front of a real source and a
 * real target docker-registry: a base layer shared by several repositories goes up once and is mounted
 * into the others, even when the images are copied at the same time; and a re-run with nothing changed
 * costs a fixed handful of requests per image, the referrers API probed once per registry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import type { Descriptor, ImageManifest } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type FaultProxy, type ProxyLogEntry, startFaultProxy } from '../helpers/fault-proxy.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { ladingDigest, ladingJson, ladingOk } from '../helpers/run.js';

interface MirrorJson {
  images: { source: string; error?: string; result?: { blobs: Record<string, number>; bytes: number } }[];
  failed: number;
}

const REPOS = ['one', 'two', 'three'];

describe('mirror requests', () => {
  let work: string;
  let source: RegistryInstance;
  let target: RegistryInstance;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let base: Descriptor;
  const images = new Map<string, Descriptor>();
  let set: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-mirror-requests-'));
    [source, target] = await Promise.all([startRegistry(), startRegistry()]);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(source), startFaultProxy(target)]);
    const layout = await LayoutStore.open(join(work, 'build'), 'write');
    // A base layer over the single-PUT size, so that a duplicate upload would be a streamed one.
    const shared = { 'base/blob': randomBytes(9 << 20) };
    for (const repo of REPOS) {
      const desc = await writeImage(layout, { layers: [{ files: shared }, { files: { [`app/${repo}`]: repo } }] }, [repo]);
      images.set(repo, desc);
      const manifest = JSON.parse(Buffer.from(await layout.fetchManifest(desc)).toString('utf8')) as ImageManifest;
      base = manifest.layers[0] as Descriptor;
    }
    await layout.close();
    await Promise.all(REPOS.map((r) => ladingOk('copy', '-q', `oci:${work}/build:${r}`, `docker://${source.host}/org/${r}:1`)));
    set = join(work, 'set.yaml');
    await writeFile(set, `images:\n${REPOS.map((r) => `  - name: ${srcProxy.host}/org/${r}:1\n`).join('')}`);
  });

  after(async () => {
    await Promise.all([srcProxy?.stop(), dstProxy?.stop()]);
    await Promise.all([source?.stop(), target?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  /** `lading mirror` of a set file into `prefix` of the target, through the counting proxy. */
  const mirror = (file = set, prefix = 'm') =>
    ladingJson<MirrorJson>(
      'mirror',
      '--no-bound-images',
      '-o',
      'json',
      '--image-jobs',
      '3',
      '-f',
      file,
      '--to',
      `docker://${dstProxy.host}/${prefix}`,
      '--results',
      work,
    );
  const kinds = (log: ProxyLogEntry[]) => log.map((e) => `${e.method} ${kind(e.path)}`).sort();

  it('uploads a layer shared by three repositories once and mounts it into the other two', async () => {
    const report = await mirror();
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    for (const r of REPOS) assert.equal(await ladingDigest(`docker://${target.host}/m/org/${r}:1`), images.get(r)?.digest);

    const hex = base.digest.slice('sha256:'.length);
    const commits = dstProxy.log.filter((e) => e.method === 'PUT' && e.path.includes(`digest=sha256%3A${hex}`));
    assert.equal(commits.length, 1, `the base layer was committed ${commits.length} times`);
    const streamed = dstProxy.log.filter((e) => e.method === 'PATCH');
    assert.equal(streamed.length, 1, 'only the base layer is over the single-PUT size, and it went up once');
    const mounts = dstProxy.log.filter((e) => e.method === 'POST' && e.path.includes(`mount=sha256%3A${hex}`));
    assert.deepEqual(
      mounts.map((e) => e.status),
      [201, 201],
      'mounted into the two other repositories',
    );
    const total = (k: string) => report.images.reduce((n, i) => n + (i.result?.blobs[k] ?? 0), 0);
    assert.equal(total('mounted'), 2);
    assert.equal(total('copied'), 1 + 3 + 3, 'the base once, and each image its own layer and config');
    assert.equal(
      report.images.reduce((n, i) => n + (i.result?.bytes ?? 0), 0),
      base.size + (await sizesOfOwnBlobs()),
      'bytes count what moved, the base layer once',
    );
  });

  it('a re-run with nothing changed: a manifest check on each side and one tag list per image, the referrers API probed once', async () => {
    srcProxy.log.length = 0;
    dstProxy.log.length = 0;
    const report = await mirror();
    assert.equal(report.failed, 0);
    assert.ok(report.images.every((i) => i.result?.bytes === 0));
    assert.deepEqual(kinds(srcProxy.log), ['GET referrers', ...REPOS.map(() => 'GET tags/list'), ...REPOS.map(() => 'HEAD manifests')]);
    assert.deepEqual(
      kinds(dstProxy.log),
      REPOS.map(() => 'HEAD manifests'),
    );
  });

  it('a re-run of images named by digest asks only the target for the manifest: two requests per image', async () => {
    const byDigest = join(work, 'by-digest.yaml');
    await writeFile(byDigest, `images:\n${REPOS.map((r) => `  - name: ${srcProxy.host}/org/${r}@${images.get(r)?.digest}\n`).join('')}`);
    srcProxy.log.length = 0;
    dstProxy.log.length = 0;
    const report = await mirror(byDigest);
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    assert.ok(report.images.every((i) => i.result?.bytes === 0));
    assert.deepEqual(kinds(srcProxy.log), ['GET referrers', ...REPOS.map(() => 'GET tags/list')], 'no manifest request to the source');
    assert.deepEqual(
      dstProxy.log.map((e) => `${e.method} ${e.path}`).sort(),
      REPOS.map((r) => `HEAD /v2/m/org/${r}/manifests/${images.get(r)?.digest}`).sort(),
    );
  });

  it('an image named by digest that the target lacks is still copied from the source', async () => {
    const byDigest = join(work, 'by-digest-new.yaml');
    const one = REPOS[0] as string;
    await writeFile(byDigest, `images:\n  - name: ${srcProxy.host}/org/${one}@${images.get(one)?.digest}\n`);
    const report = await mirror(byDigest, 'other');
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    assert.equal(await ladingDigest(`docker://${target.host}/other/org/${one}@${images.get(one)?.digest}`), images.get(one)?.digest);
  });

  /** Each image's own layer and config: what moves besides the shared base. */
  async function sizesOfOwnBlobs(): Promise<number> {
    const layout = await LayoutStore.open(join(work, 'build'), 'read');
    try {
      let n = 0;
      for (const desc of images.values()) {
        const m = JSON.parse(Buffer.from(await layout.fetchManifest(desc)).toString('utf8')) as ImageManifest;
        n += m.config.size + m.layers.slice(1).reduce((a, l) => a + l.size, 0);
      }
      return n;
    } finally {
      await layout.close();
    }
  }
});

function kind(path: string): string {
  const p = path.split('?')[0] ?? '';
  if (p.includes('/referrers/')) return 'referrers';
  if (p.endsWith('/tags/list')) return 'tags/list';
  if (p.includes('/manifests/')) return 'manifests';
  if (p.includes('/blobs/')) return 'blobs';
  return p;
}
