/**
 * `lading bound-images pull` against a real docker-registry: every bound image lands in an OCI layout
 * (readable by skopeo), a pull that fails halfway (one bound image missing from the registry) leaves the
 * layout exactly as it was (or absent, when it did not exist), and the same command succeeds once the
 * image is there.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { lading, ladingJson, ok } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import { declaring, writeBootable } from './bootable-image.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const SOURCE = 'io.lading.mirror.source';

interface IndexJson {
  manifests: { digest: string; annotations?: Record<string, string> }[];
}

describe('bound-images pull', () => {
  let reg: RegistryInstance;
  let work: string;
  let client: RegistryClient;
  let boot: string;
  let dbDigest: string;

  const push = async (repo: string, tag: string, files: Record<string, string>): Promise<Descriptor> =>
    writeImage(new RegistryStore(client, reg.host, repo, 'push'), { layers: [{ files: { 'shared/base': 'common layer\n' } }, { files }] }, [
      tag,
    ]);

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient();
    work = await mkdtemp(join(tmpdir(), 'lading-bound-pull-'));
    await push('apps/app', '1', { 'srv/app': 'app v1\n' });
    dbDigest = (await push('apps/db', '2', { 'srv/db': 'db v2\n' })).digest;
    const tools = new RegistryStore(client, reg.host, 'apps/tools', 'push');
    const amd = await writeImage(tools, {
      layers: [{ files: { 'bin/tool': 'amd64\n' } }],
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const arm = await writeImage(tools, {
      layers: [{ files: { 'bin/tool': 'arm64\n' } }],
      platform: { os: 'linux', architecture: 'arm64' },
    });
    await writeIndex(tools, [amd, arm], ['3']);
    boot = join(work, 'boot');
    const store = await LayoutStore.open(boot, 'write');
    const R = reg.host;
    await writeBootable(store, declaring({ app: `${R}/apps/app:1`, db: `${R}/apps/db@${dbDigest}`, tools: `${R}/apps/tools:3` }), ['good']);
    await writeBootable(
      store,
      declaring({ app: `${R}/apps/app:1`, db: `${R}/apps/db@${dbDigest}`, late: `${R}/apps/late:9`, tools: `${R}/apps/tools:3` }),
      ['missing-one'],
    );
    await store.close();
  });
  after(async () => {
    await client.close();
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** `lading bound-images pull` of the image tagged `tag` into the layout `dir` (plain HTTP registry). */
  const pullArgs = (tag: string, dir: string, ...extra: string[]) => [
    'bound-images',
    'pull',
    `oci:${boot}:${tag}`,
    '--store',
    `oci:${dir}`,
    '--tls-verify=false',
    ...extra,
  ];

  /** A layout holding one unrelated image, as a site's store would. */
  async function existingStore(name: string): Promise<string> {
    const dir = join(work, name);
    const s = await LayoutStore.open(dir, 'write');
    await writeImage(s, { layers: [{ files: { keep: 'me\n' } }] }, ['keep']);
    await s.close();
    return dir;
  }

  it('pulls every bound image into the layout, named as a mirror names them', async () => {
    const dir = await existingStore('store-ok');
    const out = await ladingJson<{ images: { image: string; destination: string; digest: string }[] }>(
      ...pullArgs('good', dir, '-q', '-o', 'json'),
    );
    assert.equal(out.images.length, 3);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
    const R = reg.host;
    const byName = Object.fromEntries(
      index.manifests.map((m) => [m.annotations?.[REF_NAME] ?? `untagged ${m.annotations?.[SOURCE]}`, m.digest]),
    );
    assert.deepEqual(
      Object.keys(byName).sort(),
      [`${R}/apps/app:1`, `${R}/apps/tools:3`, 'keep', `untagged ${R}/apps/db@${dbDigest}`].sort(),
    );
    assert.equal(byName[`untagged ${R}/apps/db@${dbDigest}`], dbDigest);
    // The index is kept whole by default (two platforms), so its digest is the registry's.
    const toolsDigest = (await new RegistryStore(client, R, 'apps/tools', 'pull').resolve('3')).digest;
    assert.equal(byName[`${R}/apps/tools:3`], toolsDigest);
    const fsck = await lading('fsck', `oci:${dir}`);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const inspected = JSON.parse(await ok('skopeo', 'inspect', '--raw', `oci:${dir}:${R}/apps/app:1`)) as { layers: unknown[] };
    assert.equal(inspected.layers.length, 2);
  });

  it('narrows bound images to --bound-platform when asked', async () => {
    const dir = join(work, 'store-arm');
    await ladingJson(...pullArgs('good', dir, '-q', '-o', 'json', '--bound-platform', 'linux/arm64'));
    const tools = await ladingJson<{ mediaType: string }>('inspect', `oci:${dir}:${reg.host}/apps/tools:3`, '-o', 'json');
    assert.equal(tools.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  it('fails halfway without changing the layout, and succeeds on retry', async () => {
    const dir = await existingStore('store-retry');
    const before = await snapshot(dir);
    const args = pullArgs('missing-one', dir, '--image-jobs', '4');
    const r = await lading(...args, '--progress', 'json');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    // Other images had blobs written into the layout before the run gave up: they were removed again.
    assert.match(r.stderr, /"type":"blob","digest":"sha256:[0-9a-f]+","size":\d+,"action":"copied"/);
    assert.match(
      r.stderr,
      new RegExp(
        `bound image ${reg.host.replace(/\./g, '\\.')}/apps/late:9 could not be pulled: .*; oci:${dir} is unchanged, run the command again to retry`,
      ),
    );
    assert.equal(await snapshot(dir), before, 'the layout is byte for byte as it was');

    await push('apps/late', '9', { 'srv/late': 'late\n' });
    const retry = await lading(...args, '-q', '-o', 'json');
    assert.equal(retry.code, 0, retry.stderr);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
    assert.equal(index.manifests.length, 5);
    assert.ok(index.manifests.some((m) => m.annotations?.[REF_NAME] === `${reg.host}/apps/late:9`));
  });

  it('leaves no directory behind when the layout did not exist', async () => {
    const dir = join(work, 'never');
    const store = await LayoutStore.open(boot, 'write');
    await writeBootable(store, declaring({ app: `${reg.host}/apps/app:1`, gone: `${reg.host}/apps/gone:1` }), ['gone']);
    await store.close();
    const r = await lading(...pullArgs('gone', dir, '-q'));
    assert.equal(r.code, 1);
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  it('refuses a broken declaration before pulling anything, and a store that is not a layout', async () => {
    const store = await LayoutStore.open(boot, 'write');
    await writeBootable(
      store,
      { ...declaring({ app: `${reg.host}/apps/app:1` }), 'usr/lib/bootc/bound-images.d/bad.image': { link: '/nowhere.image' } },
      ['broken'],
    );
    await store.close();
    const dir = join(work, 'store-broken');
    const r = await lading(...pullArgs('broken', dir, '-q'));
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'lading: bound image /usr/lib/bootc/bound-images.d/bad.image: dangling link to /nowhere.image: /nowhere.image does not exist; nothing was pulled\n',
    );
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    const usage = await lading('bound-images', 'pull', `oci:${boot}:good`, '--store', `docker://${reg.host}/x`);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--store takes oci:DIR \(no tag\)/);
  });
});
