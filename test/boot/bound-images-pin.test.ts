/**
 * `lading bound-images pin` against a real docker-registry: tags become the digests the registry
 * serves now, in one new layer that umoci unpacks; pinning is reproducible (same digests, same image)
 * and idempotent (a pinned image comes back unchanged); a moved tag gives a new image; a tag the registry
 * does not have is an error that writes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { lading, ladingJson, ok } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import type { RootSpec } from './root-builder.js';
import { writeBootable } from './bootable-image.js';

const SYS = 'usr/share/containers/systemd';
const DIR = 'usr/lib/bootc/bound-images.d';
const FIXED = `sha256:${'34'.repeat(32)}`;

interface PinJson {
  descriptor: { digest: string };
  original: { digest: string };
  changes: { source: string; file: string; from: string; to: string }[];
  alreadyPinned: { source: string; image: string }[];
}

interface ListEntry {
  image: string;
  file: string;
  digest: string | null;
  warnings: string[];
}

describe('bound-images pin', () => {
  let reg: RegistryInstance;
  let client: RegistryClient;
  let work: string;
  let layout: string;
  let spec: RootSpec;

  const digestOfTag = async (repo: string, tag: string) => (await new RegistryStore(client, reg.host, repo, 'pull').resolve(tag)).digest;
  const pin = (...args: string[]) => ladingJson<PinJson>('bound-images', 'pin', ...args, '--tls-verify=false', '-o', 'json');

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient();
    work = await mkdtemp(join(tmpdir(), 'lading-bound-pin-'));
    await writeImage(new RegistryStore(client, reg.host, 'apps/app', 'push'), { layers: [{ files: { app: 'v1\n' } }] }, ['1']);
    const tools = new RegistryStore(client, reg.host, 'apps/tools', 'push');
    const amd = await writeImage(tools, { layers: [{ files: { tool: 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await writeImage(tools, { layers: [{ files: { tool: 'arm64\n' } }], platform: { os: 'linux', architecture: 'arm64' } });
    await writeIndex(tools, [amd, arm], ['3']);
    const R = reg.host;
    spec = {
      'etc/os-release': 'ID=test\n',
      // A unit with comments, a continuation and a later Image= that wins: only that line is rewritten.
      [`${SYS}/app.image`]: `# app\n[Unit]\nDescription=app\n\n[Image]\nImage=old\\\n  value\nImage=${R}/apps/app:1\nAuthFile=/etc/app-auth.json\n`,
      'etc/app-auth.json': '{"auths":{}}\n',
      [`${SYS}/web.container`]: '[Container]\nImage=tools.image\nExec=/bin/tool\n',
      [`${SYS}/tools.image`]: `[Image]\nImage=${R}/apps/tools:3\n`,
      [`${SYS}/fixed.image`]: `[Image]\nImage=quay.io/example/fixed:1@${FIXED}\n`,
      [`${DIR}/app.image`]: { link: `/${SYS}/app.image` },
      [`${DIR}/again.image`]: { link: `../../../share/containers/systemd/app.image` },
      [`${DIR}/web.container`]: { link: `/${SYS}/web.container` },
      [`${DIR}/fixed.image`]: { link: `/${SYS}/fixed.image` },
    };
    layout = join(work, 'layout');
    const store = await LayoutStore.open(layout, 'write');
    await writeBootable(store, spec, ['os']);
    await store.close();
  });
  after(async () => {
    await client.close();
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('rewrites tags to the digests the registry serves, in a new layer umoci unpacks', async () => {
    const R = reg.host;
    const app = await digestOfTag('apps/app', '1');
    const tools = await digestOfTag('apps/tools', '3');
    const result = await pin(`oci:${layout}:os`, '--to', `oci:${layout}:pinned`);
    assert.deepEqual(
      result.changes.map((c) => [c.source, c.from, c.to]),
      [
        [`/${DIR}/again.image`, `${R}/apps/app:1`, `${R}/apps/app@${app}`],
        [`/${DIR}/app.image`, `${R}/apps/app:1`, `${R}/apps/app@${app}`],
        [`/${DIR}/web.container`, `${R}/apps/tools:3`, `${R}/apps/tools@${tools}`],
      ],
    );
    assert.deepEqual(result.alreadyPinned, [{ source: `/${DIR}/fixed.image`, image: `quay.io/example/fixed:1@${FIXED}` }]);

    const listed = await ladingJson<(ListEntry & { authFile?: unknown })[]>('bound-images', 'list', `oci:${layout}:pinned`, '-o', 'json');
    // The auth file is not a unit file: it was read back from its layer.
    assert.deepEqual(listed[0]?.authFile, { path: '/etc/app-auth.json', foundIn: 'image', resolved: '/etc/app-auth.json' });
    assert.deepEqual(
      listed.map((b) => [b.image, b.digest, b.warnings]),
      [
        [`${R}/apps/app@${app}`, app, []],
        [`${R}/apps/app@${app}`, app, []],
        [`quay.io/example/fixed:1@${FIXED}`, FIXED, []],
        [`${R}/apps/tools@${tools}`, tools, []],
      ],
    );

    const bundle = join(work, 'bundle');
    await ok('umoci', 'unpack', '--rootless', '--image', `${layout}:pinned`, bundle);
    assert.equal(
      await readFile(join(bundle, 'rootfs', SYS, 'app.image'), 'utf8'),
      `# app\n[Unit]\nDescription=app\n\n[Image]\nImage=old\\\n  value\nImage=${R}/apps/app@${app}\nAuthFile=/etc/app-auth.json\n`,
    );
    assert.equal(await readFile(join(bundle, 'rootfs', SYS, 'web.container'), 'utf8'), '[Container]\nImage=tools.image\nExec=/bin/tool\n');
    assert.equal(await readFile(join(bundle, 'rootfs', SYS, 'tools.image'), 'utf8'), `[Image]\nImage=${R}/apps/tools@${tools}\n`);

    const before = await ladingJson<{ layers: unknown[]; config: { digest: string } }>('inspect', `oci:${layout}:os`, '-o', 'json');
    const after = await ladingJson<{ layers: unknown[] }>('inspect', `oci:${layout}:pinned`, '-o', 'json');
    assert.equal(after.layers.length, before.layers.length + 1);
    const fsck = await lading('fsck', `oci:${layout}`);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  });

  it('is reproducible, and a pinned image comes back unchanged', async () => {
    const first = await pin(`oci:${layout}:os`, '--to', `oci:${join(work, 'other')}:p`);
    const second = await pin(`oci:${layout}:os`, '--to', `oci:${layout}:pinned-again`);
    assert.equal(first.descriptor.digest, second.descriptor.digest);
    const again = await pin(`oci:${layout}:pinned-again`, '--to', `oci:${layout}:pinned-twice`);
    assert.equal(again.descriptor.digest, second.descriptor.digest);
    assert.deepEqual(again.changes, []);
  });

  it('gives a new image when a tag moves', async () => {
    const before = await pin(`oci:${layout}:os`, '--to', `oci:${layout}:before-move`);
    await writeImage(new RegistryStore(client, reg.host, 'apps/app', 'push'), { layers: [{ files: { app: 'v2\n' } }] }, ['1']);
    const moved = await pin(`oci:${layout}:os`, '--to', `oci:${layout}:after-move`);
    assert.notEqual(moved.descriptor.digest, before.descriptor.digest);
    assert.equal(moved.changes[0]?.to, `${reg.host}/apps/app@${await digestOfTag('apps/app', '1')}`);
  });

  it('pins an index platform by platform, keeping the platforms with nothing to pin', async () => {
    const store = await LayoutStore.open(layout, 'write');
    const amd = await writeBootable(store, spec, []);
    const arm = await writeBootable(store, { 'etc/os-release': 'ID=arm\n' }, []);
    await writeIndex(
      store,
      [
        { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
      ],
      ['multi'],
    );
    await store.close();
    const result = await pin(`oci:${layout}:multi`, '--to', `oci:${layout}:multi-pinned`);
    assert.equal(result.changes.length, 3);
    const index = await ladingJson<{ mediaType: string; manifests: { digest: string; platform: string }[] }>(
      'inspect',
      `oci:${layout}:multi-pinned`,
      '-o',
      'json',
    );
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    const byPlatform = Object.fromEntries(index.manifests.map((m) => [m.platform, m.digest]));
    assert.notEqual(byPlatform['linux/amd64'], amd.digest);
    assert.equal(byPlatform['linux/arm64'], arm.digest);
    const pinnedAmd = await ladingJson<ListEntry[]>(
      'bound-images',
      'list',
      `oci:${layout}:multi-pinned`,
      '--platform',
      'linux/amd64',
      '-o',
      'json',
    );
    assert.ok(pinnedAmd.every((b) => b.digest !== null));
    const fsck = await lading('fsck', `oci:${layout}`);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  });

  it('writes nothing when a tag cannot be resolved', async () => {
    const store = await LayoutStore.open(layout, 'write');
    await writeBootable(
      store,
      { ...spec, [`${SYS}/gone.image`]: `[Image]\nImage=${reg.host}/apps/gone:1\n`, [`${DIR}/gone.image`]: { link: `/${SYS}/gone.image` } },
      ['gone'],
    );
    await store.close();
    const untouched = await snapshot(layout);
    const r = await lading('bound-images', 'pin', `oci:${layout}:gone`, '--to', `oci:${layout}:gone-pinned`, '--tls-verify=false');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /apps\/gone/);
    assert.equal(await snapshot(layout), untouched);
  });
});
