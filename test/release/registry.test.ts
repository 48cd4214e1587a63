/**
 * Releases in a real registry (docker-registry): composed from components pushed there, read by
 * `skopeo inspect`, listed by `lading release info`, tools extracted from it; then the release and its
 * components carried into one OCI layout, and the tool extracted there with the registry gone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { showPinned } from '../../src/release/pin-show.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type RegistryInstance, skopeoFlags, startRegistry } from '../helpers/registry.js';
import { lading, ladingJson, ladingOk, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { image } from './images.js';
import { ARCH, IMAGE, VERSION } from './markers.js';

describe('lading release with a registry', () => {
  let reg: RegistryInstance;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg.stop());

  it('composes a release from components in the registry; skopeo reads it; info lists every component by digest; tools extract', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    const store = await LayoutStore.open(src, 'write');
    const installer = await image(store, [{ 'usr/bin/openshift-install': Buffer.concat([Buffer.from('#!i\n'), IMAGE, VERSION, ARCH]) }], {
      tags: ['installer'],
    });
    const cli = await image(store, [{ 'usr/bin/oc': Buffer.concat([Buffer.from('#!c\n'), VERSION]) }], { tags: ['cli'] });
    await store.close();
    const tls = ['--tls-verify', 'false'];
    const host = reg.host;
    await ladingOk('copy', '-q', ...tls, `oci:${src}:installer`, `docker://${host}/ocp/art-dev:installer`);
    await ladingOk('copy', '-q', ...tls, `oci:${src}:cli`, `docker://${host}/ocp/art-dev:cli`);

    const composed = await ladingJson<{ digest: string; pullSpec: string }>(
      'release',
      'new',
      ...tls,
      '--name',
      '4.15.0',
      '--to',
      `docker://${host}/ocp/release:4.15.0-x86_64`,
      '--component',
      `installer=docker://${host}/ocp/art-dev:installer`,
      '--component',
      `cli=${host}/ocp/art-dev:cli`,
      '--tool',
      'openshift-install=installer:/usr/bin/openshift-install',
      '-o',
      'json',
    );
    assert.equal(composed.pullSpec, `${host}/ocp/release@${composed.digest}`);

    const sk = JSON.parse(await ok('skopeo', 'inspect', ...skopeoFlags(reg, 'plain'), `docker://${host}/ocp/release:4.15.0-x86_64`)) as {
      Digest: string;
      Labels: Record<string, string>;
    };
    assert.equal(sk.Digest, composed.digest);
    assert.equal(sk.Labels['io.openshift.release'], '4.15.0');

    const info = await ladingJson<{ digest: string; components: { name: string; pullSpec: string; digest: string }[] }>(
      'release',
      'info',
      ...tls,
      `docker://${host}/ocp/release:4.15.0-x86_64`,
      '-o',
      'json',
    );
    assert.equal(info.digest, composed.digest);
    assert.deepEqual(info.components, [
      { name: 'cli', pullSpec: `${host}/ocp/art-dev@${cli.digest}`, digest: cli.digest },
      { name: 'installer', pullSpec: `${host}/ocp/art-dev@${installer.digest}`, digest: installer.digest },
    ]);

    await ladingOk(
      'release',
      'extract',
      ...tls,
      `docker://${host}/ocp/release@${composed.digest}`,
      '--command',
      'openshift-install',
      '--to',
      join(dir, 'bin'),
    );
    const values = (await showPinned(join(dir, 'bin', 'openshift-install'))).values;
    assert.deepEqual(values.image, { state: 'pinned', value: `${host}/ocp/release@${composed.digest}`, offset: 4 });
    assert.deepEqual(values.version, { state: 'pinned', value: '4.15.0', offset: 4 + 327 });
    assert.deepEqual(values.arch, { state: 'pinned', value: 'linux/amd64', offset: 4 + 327 + 93 });

    // Carried to a disconnected site: release and components in one layout, the registry gone.
    const site = join(dir, 'site');
    await ladingOk('copy', '-q', ...tls, `docker://${host}/ocp/release@${composed.digest}`, `oci:${site}:4.15.0`);
    for (const c of info.components) await ladingOk('copy', '-q', ...tls, `docker://${c.pullSpec}`, `oci:${site}:${c.name}`);
    await reg.stop();
    const r = await lading('release', 'extract', `oci:${site}:4.15.0`, '--command', 'openshift-install', '--to', join(dir, 'site-bin'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await showPinned(join(dir, 'site-bin', 'openshift-install'))).values.image, {
      state: 'pinned',
      value: `oci:${site}@${composed.digest}`,
      offset: 4,
    });
  });
});
