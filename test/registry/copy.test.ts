/**
 * `lading copy` against real registries (docker-registry 2.8: one plain HTTP, one TLS with a throwaway CA):
 * every pair of docker://, oci: and oci-archive: for a single image and a two-platform index; interop with
 * skopeo both ways; a blob large enough for chunked uploads; re-runs that push nothing; --dry-run that
 * writes nothing; referrers (tag schema, since 2.8 has no referrers API) and cosign tags carried along;
 * TLS verification with --cert-dir and --tls-verify=false.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { type CopyResult, CopySession } from '../../src/copy/copy-session.js';
import { isLadingError } from '../../src/errors.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { type Digest, digestOf, parseDigest } from '../../src/oci/digest.js';
import { EMPTY_DESCRIPTOR, MediaType } from '../../src/oci/media-types.js';
import { Annotation, type Descriptor, type ImageIndex, type ImageManifest } from '../../src/oci/types.js';
import { fsckLayout } from '../../src/store/layout/fsck.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { type ImageSummary, inspectImage } from '../../src/store/inspect.js';
import { openStore, parseTransportRef, refWithinStore } from '../../src/store/transport.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { skopeoFlags, startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { lading, ladingDigest, ladingJson, ladingOk, ok } from '../helpers/run.js';

interface CopyJson {
  source: string;
  destination: string;
  dryRun: boolean;
  descriptor: Descriptor;
  manifests: number;
  blobs: { skipped: number; mounted: number; linked: number; copied: number };
  bytes: number;
  attached: number;
  plan: { digest: string; size: number; kind: 'manifest' | 'blob'; action: string }[];
}

interface InspectJson {
  digest: string;
  mediaType: string;
  layers?: { digest: string; mediaType: string; size: number }[];
  manifests?: { digest: string; platform?: string }[];
}

/** `lading copy -q -o json …`, failing the test with lading's stderr when it fails. */
function copy(...args: string[]): Promise<CopyJson> {
  return ladingJson<CopyJson>('copy', '-q', '-o', 'json', ...args);
}

/** `lading fsck oci:DIR` exits 0 and says ok. */
async function assertLadingFsck(layout: string): Promise<void> {
  const r = await lading('fsck', `oci:${layout}`);
  assert.equal(r.code, 0, `lading fsck oci:${layout} failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: ok\n$/);
}

/*
 * Each `lading` run costs a Node start-up (about half a second, more on a loaded machine), so most checks
 * below run the same library code `lading digest` and `lading fsck` run, in-process; a few go through the CLI.
 */

/** What `lading digest REF` prints, computed in-process (trusting `certDir` for the TLS registry). */
async function digestAt(ref: string, certDir?: string): Promise<string> {
  const client = new RegistryClient(certDir !== undefined ? { certDir } : {});
  try {
    const t = parseTransportRef(ref);
    const store = await openStore(t, 'read', { registry: client });
    try {
      return (await store.resolve(refWithinStore(t))).digest;
    } finally {
      await store.close();
    }
  } finally {
    await client.close();
  }
}

/** What `lading inspect -o json REF` prints, computed in-process. */
async function inspectAt(ref: string): Promise<ImageSummary> {
  const t = parseTransportRef(ref);
  const store = await openStore(t, 'read');
  try {
    return await inspectImage(store, refWithinStore(t));
  } finally {
    await store.close();
  }
}

/** What `lading fsck` checks, in-process: no problems. */
async function assertFsckClean(layout: string): Promise<void> {
  const store = await LayoutStore.open(layout, 'read');
  try {
    const report = await fsckLayout(store);
    assert.deepEqual(report.problems, [], `fsck of ${layout}`);
    assert.ok(report.referenced > 0);
  } finally {
    await store.close();
  }
}

/** A setup copy, in-process, with the engine `lading copy` runs (not the subject of the test it serves). */
async function setupCopy(srcRef: string, dstRef: string, options: { all?: boolean; certDir?: string } = {}): Promise<CopyResult> {
  const client = new RegistryClient(options.certDir !== undefined ? { certDir: options.certDir } : {});
  try {
    const s = parseTransportRef(srcRef);
    const d = parseTransportRef(dstRef);
    const srcStore = await openStore(s, 'read', { registry: client });
    const dstStore = await openStore(d, 'write', { registry: client });
    try {
      const result = await new CopySession().copy(srcStore, refWithinStore(s), dstStore, {
        ...(options.all && { platforms: 'all' as const }),
        tags: [refWithinStore(d) ?? 'latest'],
      });
      await dstStore.close();
      return result;
    } catch (e) {
      await dstStore.abort();
      throw e;
    } finally {
      await srcStore.close();
    }
  } finally {
    await client.close();
  }
}

const sha256 = (b: string | Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function referrersTagOf(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm}-${encoded}`;
}

async function readIndexJson(layout: string): Promise<ImageIndex> {
  return JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
}

/** Runs `fn` on a registry repository with an in-process client (trusting the registry's CA, if it has one). */
async function withRegistry<T>(r: RegistryInstance, repo: string, fn: (s: RegistryStore) => Promise<T>): Promise<T> {
  const client = new RegistryClient(r.certDir !== undefined ? { certDir: r.certDir } : {});
  try {
    return await fn(new RegistryStore(client, r.host, repo, 'pull'));
  } finally {
    await client.close();
  }
}

async function resolvesTo(r: RegistryInstance, repo: string, ref: string): Promise<string | undefined> {
  return withRegistry(r, repo, (s) =>
    s.resolve(ref).then(
      (d) => d.digest,
      (e: unknown) => {
        if (isLadingError(e, 'NOT_FOUND')) return undefined;
        throw e;
      },
    ),
  );
}

describe('lading copy with registries', () => {
  let reg: RegistryInstance;
  let tls: RegistryInstance;
  let work: string;
  /** Source layout: `app` (two layers), `multi` (linux/amd64 + linux/arm64/v8 index), `big` (one 40 MiB layer). */
  let src: string;
  let app: Descriptor;
  let multi: Descriptor;
  let amd: Descriptor;
  let arm: Descriptor;
  let big: Descriptor;
  let certFlags: string[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-copy-reg-'));
    src = join(work, 'src');
    const store = await LayoutStore.open(src, 'write');
    app = await writeImage(
      store,
      {
        layers: [{ files: { 'etc/app.conf': 'name=app\n' } }, { files: { 'usr/bin/app': randomBytes(64 * 1024) } }],
        config: { Cmd: ['app'] },
      },
      ['app'],
    );
    amd = await writeImage(store, { layers: [{ files: { arch: 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
    arm = await writeImage(store, {
      layers: [{ files: { arch: 'arm64\n' } }],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    multi = await writeIndex(store, [amd, arm], ['multi']);
    // Random bytes, so neither compression nor a registry's earlier content can shortcut it.
    big = await writeImage(store, { layers: [{ files: { 'big.bin': randomBytes(40 << 20) } }] }, ['big']);
    await store.close();
    [reg, tls] = await Promise.all([startRegistry(), startRegistry({ tls: true })]);
    certFlags = ['--cert-dir', tls.certDir!];
  });
  after(async () => {
    await Promise.all([reg?.stop(), tls?.stop()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  for (const kind of ['app', 'multi'] as const) {
    it(`copies ${kind === 'app' ? 'a single image' : 'a two-platform index'} with --all between every pair of transports`, async () => {
      const want = kind === 'app' ? app.digest : multi.digest;
      const blobCount = kind === 'app' ? 3 : 4; // app: config + 2 layers; multi: 2 × (config + layer)
      const R = reg.host;
      const T = tls.host;

      // oci → docker
      const pushed = await copy('--all', `oci:${src}:${kind}`, `docker://${R}/pairs/${kind}-a:v1`);
      assert.equal(pushed.descriptor.digest, want);
      assert.equal(pushed.blobs.copied, blobCount);
      assert.equal(pushed.manifests, kind === 'app' ? 1 : 3);
      // Through the CLI once (for the single image); the rest of the checks run the same code in-process.
      const viaCli = kind === 'app';
      assert.equal(await (viaCli ? ladingDigest : digestAt)(`docker://${R}/pairs/${kind}-a:v1`), want, 'digest of docker://');

      // docker → docker, same registry: cross-repository mounts, no bytes
      const mounted = await copy('--all', `docker://${R}/pairs/${kind}-a:v1`, `docker://${R}/pairs/${kind}-b:v1`);
      assert.equal(mounted.descriptor.digest, want);
      assert.ok(mounted.blobs.mounted > 0, `nothing mounted: ${JSON.stringify(mounted.blobs)}`);
      assert.equal(mounted.blobs.copied, 0);
      assert.equal(mounted.bytes, 0);
      assert.equal(await digestAt(`docker://${R}/pairs/${kind}-b:v1`), want);

      // docker → docker, across registries (HTTP → HTTPS with a private CA)
      const across = await copy(...certFlags, '--all', `docker://${R}/pairs/${kind}-b:v1`, `docker://${T}/pairs/${kind}-c:v1`);
      assert.equal(across.descriptor.digest, want);
      assert.equal(across.blobs.copied, blobCount);
      assert.equal(await digestAt(`docker://${T}/pairs/${kind}-c:v1`, tls.certDir), want);

      // docker → oci
      const layout = join(work, `${kind}-layout`);
      const pulled = await copy(...certFlags, '--all', `docker://${T}/pairs/${kind}-c:v1`, `oci:${layout}:v1`);
      assert.equal(pulled.descriptor.digest, want);
      assert.equal(await (viaCli ? ladingDigest : digestAt)(`oci:${layout}:v1`), want, 'digest of oci:');
      await (viaCli ? assertLadingFsck : assertFsckClean)(layout);

      // docker → oci-archive
      const archive = join(work, `${kind}.tar`);
      const archived = await copy('--all', `docker://${R}/pairs/${kind}-b:v1`, `oci-archive:${archive}:v1`);
      assert.equal(archived.descriptor.digest, want);
      assert.equal(await digestAt(`oci-archive:${archive}:v1`), want);

      // oci-archive → docker
      const back = await copy('--all', `oci-archive:${archive}:v1`, `docker://${R}/pairs/${kind}-d:v1`);
      assert.equal(back.descriptor.digest, want);
      assert.equal(await digestAt(`docker://${R}/pairs/${kind}-d:v1`), want);

      if (kind === 'multi') {
        // The index came whole: both children are in the registry and the layout.
        for (const child of [amd, arm]) {
          assert.equal(await digestAt(`docker://${R}/pairs/multi-d@${child.digest}`), child.digest);
          assert.equal(await digestAt(`docker://${T}/pairs/multi-c@${child.digest}`, tls.certDir), child.digest);
        }
        const inspected = await inspectAt(`docker://${R}/pairs/multi-d:v1`);
        assert.deepEqual(inspected.manifests?.map((m) => m.platform).sort(), ['linux/amd64', 'linux/arm64/v8']);
      }
    });
  }

  it('skopeo reads what lading pushes, byte for byte, and lading reads what skopeo pushes', async () => {
    const R = reg.host;
    await copy(`oci:${src}:app`, `docker://${R}/interop/lading:1`);
    await setupCopy(`oci:${src}:multi`, `docker://${R}/interop/lading:multi`, { all: true });
    const layout = await LayoutStore.open(src, 'read');
    try {
      for (const [tag, desc] of [
        ['1', app],
        ['multi', multi],
      ] as const) {
        const raw = await ok('skopeo', 'inspect', '--raw', ...skopeoFlags(reg, 'plain'), `docker://${R}/interop/lading:${tag}`);
        assert.equal(sha256(raw), desc.digest, `skopeo inspect --raw of :${tag} hashes to lading's digest`);
        assert.equal(raw, Buffer.from(await layout.fetchManifest(desc)).toString('utf8'));
      }
    } finally {
      await layout.close();
    }
    // skopeo pulls what lading pushed into a layout lading fscks clean.
    const skopeoLayout = join(work, 'skopeo-pulled');
    await ok(
      'skopeo',
      'copy',
      '--quiet',
      '--preserve-digests',
      ...skopeoFlags(reg, 'src'),
      `docker://${R}/interop/lading:1`,
      `oci:${skopeoLayout}:1`,
    );
    assert.equal(await digestAt(`oci:${skopeoLayout}:1`), app.digest);
    await assertFsckClean(skopeoLayout);

    // What skopeo pushes, lading reads and copies.
    await ok(
      'skopeo',
      'copy',
      '--quiet',
      '--preserve-digests',
      ...skopeoFlags(reg, 'dest'),
      `oci:${src}:app`,
      `docker://${R}/interop/skopeo:1`,
    );
    await ok(
      'skopeo',
      'copy',
      '--quiet',
      '--all',
      '--preserve-digests',
      ...skopeoFlags(reg, 'dest'),
      `oci:${src}:multi`,
      `docker://${R}/interop/skopeo:multi`,
    );
    assert.equal(await ladingDigest(`docker://${R}/interop/skopeo:1`), app.digest);
    assert.equal(await digestAt(`docker://${R}/interop/skopeo:multi`), multi.digest);
    const inspected = await ladingJson<InspectJson>('inspect', '-o', 'json', `docker://${R}/interop/skopeo:1`);
    const skopeoView = JSON.parse(await ok('skopeo', 'inspect', ...skopeoFlags(reg, 'plain'), `docker://${R}/interop/skopeo:1`)) as {
      Layers: string[];
    };
    assert.equal(inspected.digest, app.digest);
    assert.equal(inspected.layers?.length, 2);
    assert.deepEqual(
      inspected.layers?.map((l) => l.digest),
      skopeoView.Layers,
    );
    const dst = join(work, 'from-skopeo');
    const single = await copy(`docker://${R}/interop/skopeo:1`, `oci:${dst}:1`);
    assert.equal(single.descriptor.digest, app.digest);
    const index = await setupCopy(`docker://${R}/interop/skopeo:multi`, `oci:${dst}:multi`, { all: true });
    assert.equal(index.descriptor.digest, multi.digest);
    const dstStore = await LayoutStore.open(dst, 'read');
    assert.deepEqual(await dstStore.tags(), ['1', 'multi']);
    await dstStore.close();
    await assertFsckClean(dst);
  });

  it('a 40 MiB layer goes up in one streamed PATCH and comes back with the same digest', async () => {
    // Through a transparent proxy, to see how the upload went.
    const proxy = await startFaultProxy(reg);
    try {
      const up = await copy(`oci:${src}:big`, `docker://${proxy.host}/large/img:1`);
      assert.equal(up.descriptor.digest, big.digest);
      assert.equal(up.blobs.copied, 2);
      assert.ok(up.bytes > 40 << 20, `bytes ${up.bytes}`);
      const uploads = proxy.log.filter((e) => e.path.includes('/v2/large/img/blobs/uploads/'));
      // The config: POST, PUT with the bytes. The layer: POST, one PATCH with all 40 MiB, PUT.
      assert.deepEqual(uploads.map((e) => `${e.method} ${e.status}`).sort(), ['PATCH 202', 'POST 202', 'POST 202', 'PUT 201', 'PUT 201']);
    } finally {
      await proxy.stop();
    }
    assert.equal(await digestAt(`docker://${reg.host}/large/img:1`), big.digest);
    const layout = join(work, 'large');
    const down = await copy(`docker://${reg.host}/large/img:1`, `oci:${layout}:1`);
    assert.equal(down.descriptor.digest, big.digest);
    assert.equal(down.blobs.copied, 2);
    assert.equal(await digestAt(`oci:${layout}:1`), big.digest);
    const inspected = await inspectAt(`oci:${layout}:1`);
    assert.ok((inspected.layers?.[0]?.size ?? 0) > 40 << 20);
    await assertFsckClean(layout);
  });

  it('re-running a docker→docker copy pushes nothing', async () => {
    const R = reg.host;
    await setupCopy(`oci:${src}:multi`, `docker://${R}/rerun/src:1`, { all: true });
    const first = await setupCopy(`docker://${R}/rerun/src:1`, `docker://${tls.host}/rerun/dst:1`, { all: true, certDir: tls.certDir! });
    assert.equal(first.manifests, 3);
    assert.equal(first.blobs.copied, 4);
    const second = await copy('--all', `docker://${R}/rerun/src:1`, `docker://${tls.host}/rerun/dst:1`, ...certFlags);
    assert.equal(second.descriptor.digest, multi.digest);
    assert.equal(second.manifests, 0);
    assert.equal(second.blobs.copied, 0);
    assert.equal(second.bytes, 0);
    assert.ok(!second.plan.some((p) => p.action === 'pushed' || p.action === 'copied'), JSON.stringify(second.plan));
  });

  it('--dry-run into an empty repository plans every blob as copied and writes nothing', async () => {
    const dst = `docker://${reg.host}/dry/empty:1`;
    const plan = await copy('--dry-run', `oci:${src}:app`, dst);
    assert.equal(plan.dryRun, true);
    const blobs = plan.plan.filter((p) => p.kind === 'blob');
    assert.equal(blobs.length, 3);
    assert.ok(
      blobs.every((p) => p.action === 'copied'),
      JSON.stringify(blobs),
    );
    assert.deepEqual(
      plan.plan.filter((p) => p.kind === 'manifest').map((p) => [p.digest, p.action]),
      [[app.digest, 'pushed']],
    );
    const r = await lading('digest', dst);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /not found|manifest unknown/i);
    // No blob went up either.
    for (const b of blobs) {
      const has = await withRegistry(reg, 'dry/empty', (s) =>
        s.has({ mediaType: 'application/octet-stream', digest: b.digest as Digest, size: b.size }),
      );
      assert.equal(has, false, `blob ${b.digest} was pushed by a dry run`);
    }
  });

  describe('referrers and cosign tags', () => {
    let subject: Descriptor;
    let referrer: Descriptor;
    let signature: Descriptor;
    const artifactType = 'application/vnd.example.sbom.v1+json';

    before(async () => {
      const pushed = await setupCopy(`oci:${src}:app`, `docker://${reg.host}/ref/src:t`);
      subject = { mediaType: pushed.descriptor.mediaType, digest: pushed.descriptor.digest, size: pushed.descriptor.size };
      const client = new RegistryClient();
      try {
        const store = new RegistryStore(client, reg.host, 'ref/src', 'push');
        const empty: Descriptor = {
          mediaType: EMPTY_DESCRIPTOR.mediaType,
          digest: EMPTY_DESCRIPTOR.digest as Digest,
          size: EMPTY_DESCRIPTOR.size,
        };
        await store.pushBlob(empty, Readable.from([Buffer.from('{}')]));
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType,
          config: { ...EMPTY_DESCRIPTOR, digest: EMPTY_DESCRIPTOR.digest as Digest },
          layers: [{ ...EMPTY_DESCRIPTOR, digest: EMPTY_DESCRIPTOR.digest as Digest }],
          subject,
          annotations: { 'org.example.kind': 'sbom' },
        };
        const bytes = canonicalJsonBytes(manifest);
        referrer = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.byteLength };
        await store.pushManifest(referrer, bytes);

        // A legacy cosign signature: a manifest under the tag sha256-<hex>.sig, with no subject.
        const payload = Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subject.digest } } }));
        const layer: Descriptor = {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: digestOf(payload),
          size: payload.byteLength,
          annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' },
        };
        await store.pushBlob(layer, Readable.from([payload]));
        const sig = canonicalJsonBytes({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: EMPTY_DESCRIPTOR.digest, size: 2 },
          layers: [layer],
        });
        signature = { mediaType: MediaType.ociManifest, digest: digestOf(sig), size: sig.byteLength };
        await store.pushManifest(signature, sig, { tags: [`${referrersTagOf(subject.digest)}.sig`] });
      } finally {
        await client.close();
      }
    });

    it('pushing a manifest with a subject to a registry without the referrers API writes the sha256-<hex> index', async () => {
      const index = await withRegistry(
        reg,
        'ref/src',
        async (s) =>
          JSON.parse(Buffer.from(await s.fetchManifest(await s.resolve(referrersTagOf(subject.digest)))).toString('utf8')) as ImageIndex,
      );
      assert.equal(index.mediaType, MediaType.ociIndex);
      assert.deepEqual(
        index.manifests.map((m) => [m.digest, m.artifactType]),
        [[referrer.digest, artifactType]],
      );
      assert.equal(index.manifests[0]?.annotations?.['org.example.kind'], 'sbom');
    });

    it('copy --all brings the referrer and the .sig tag to another registry; --no-referrers leaves them', async () => {
      const tag = referrersTagOf(subject.digest);
      const result = await copy(...certFlags, '--all', `docker://${reg.host}/ref/src:t`, `docker://${tls.host}/ref/dst:t`);
      assert.equal(result.descriptor.digest, subject.digest);
      assert.equal(result.attached, 2);
      const listed = await withRegistry(tls, 'ref/dst', async (s) => {
        const index = JSON.parse(Buffer.from(await s.fetchManifest(await s.resolve(tag))).toString('utf8')) as ImageIndex;
        return index.manifests.map((m) => [m.digest, m.artifactType]);
      });
      assert.deepEqual(listed, [[referrer.digest, artifactType]]);
      assert.equal(await resolvesTo(tls, 'ref/dst', `${tag}.sig`), signature.digest);
      assert.equal(await resolvesTo(tls, 'ref/dst', referrer.digest), referrer.digest);

      const bare = await copy(...certFlags, '--all', '--no-referrers', `docker://${reg.host}/ref/src:t`, `docker://${tls.host}/ref/none:t`);
      assert.equal(bare.descriptor.digest, subject.digest);
      assert.equal(bare.attached, 0);
      assert.equal(await resolvesTo(tls, 'ref/none', tag), undefined);
      assert.equal(await resolvesTo(tls, 'ref/none', `${tag}.sig`), undefined);
      assert.equal(await resolvesTo(tls, 'ref/none', referrer.digest), undefined);
    });

    it('copy --all into a layout records the referrer untagged and keeps the .sig tag', async () => {
      const layout = join(work, 'referrers');
      const result = await copy('--all', `docker://${reg.host}/ref/src:t`, `oci:${layout}:t`);
      assert.equal(result.attached, 2);
      const index = await readIndexJson(layout);
      const entries = index.manifests.map((m) => [m.digest, m.annotations?.[Annotation.refName] ?? null]);
      assert.deepEqual(
        entries.sort(),
        [
          [subject.digest, 't'],
          [referrer.digest, null],
          [signature.digest, `${referrersTagOf(subject.digest)}.sig`],
        ].sort(),
      );
      await assertFsckClean(layout);
    });
  });

  describe('TLS', () => {
    it('works with --cert-dir', async () => {
      const r = await copy(...certFlags, `oci:${src}:app`, `docker://${tls.host}/tls/certdir:1`);
      assert.equal(r.descriptor.digest, app.digest);
      assert.equal(await resolvesTo(tls, 'tls/certdir', '1'), app.digest);
    });

    it('without --cert-dir fails with one line naming the certificate and --cert-dir', async () => {
      const r = await lading('copy', '-q', `oci:${src}:app`, `docker://${tls.host}/tls/nocert:1`);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /certificate/i);
      assert.match(lines[0]!, /--cert-dir/);
      assert.ok(lines[0]!.includes(tls.host), lines[0]);
      assert.equal(await resolvesTo(tls, 'tls/nocert', '1'), undefined);
    });

    it('lading digest takes --cert-dir too, and without it names the certificate problem', async () => {
      await setupCopy(`oci:${src}:app`, `docker://${tls.host}/tls/digest:1`, { certDir: tls.certDir! });
      assert.equal((await ladingOk('digest', ...certFlags, `docker://${tls.host}/tls/digest:1`)).trim(), app.digest);
      const r = await lading('digest', `docker://${tls.host}/tls/digest:1`);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /certificate.*--cert-dir/i);
    });

    it('works with --tls-verify=false', async () => {
      const r = await copy('--tls-verify=false', `oci:${src}:app`, `docker://${tls.host}/tls/noverify:1`);
      assert.equal(r.descriptor.digest, app.digest);
    });
  });
});
