/**
 * `lading bound-images list --root DIR`: JSON shape, every problem reported with exit 1 and nothing on
 * stdout, AuthFile= found in the host root, and usage errors (exit 2).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lading, ladingJson } from '../helpers/run.js';
import { hostRoot } from './root-builder.js';

const SYS = 'usr/share/containers/systemd';
const DIR = 'usr/lib/bootc/bound-images.d';

describe('bound-images list --root', () => {
  it('prints {image, file, source, tag, digest, warnings} per bound image', async () => {
    const { dir } = await hostRoot({
      [`${SYS}/a.image`]: '[Image]\nImage=quay.io/org/a:1.0\nAuthFile=/etc/registry/auth.json\n',
      [`${DIR}/a.image`]: { link: `/${SYS}/a.image` },
    });
    const { dir: host } = await hostRoot({ 'etc/registry/auth.json': '{"auths":{"quay.io":{"auth":"c2VjcmV0OnNlY3JldA=="}}}' });
    const out = await ladingJson<Record<string, unknown>[]>('bound-images', 'list', '--root', dir, '--host-root', host, '-o', 'json');
    assert.deepEqual(out, [
      {
        image: 'quay.io/org/a:1.0',
        file: `/${SYS}/a.image`,
        source: `/${DIR}/a.image`,
        tag: '1.0',
        digest: null,
        warnings: ['floating reference: quay.io/org/a:1.0 has no digest, so tag 1.0 can move; pin it by digest (lading bound-images pin)'],
        reference: 'quay.io/org/a:1.0',
        authFile: { path: '/etc/registry/auth.json', foundIn: 'host', resolved: '/etc/registry/auth.json' },
      },
    ]);
  });

  it('reports every broken entry on stderr, prints nothing on stdout, and exits 1', async () => {
    const { dir } = await hostRoot({
      [`${SYS}/ok.image`]: '[Image]\nImage=quay.io/org/ok:1\n',
      [`${DIR}/ok.image`]: { link: `/${SYS}/ok.image` },
      [`${DIR}/a.image`]: { link: '/missing.image' },
      [`${DIR}/b.txt`]: { link: `/${SYS}/ok.image` },
      [`${SYS}/c.image`]: '[Image]\nImage=quay.io/org/c:%v\n',
      [`${DIR}/c.image`]: { link: `/${SYS}/c.image` },
    });
    for (const output of ['text', 'json']) {
      const r = await lading('bound-images', 'list', '--root', dir, '-o', output);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        [
          `lading: bound image /${DIR}/a.image: dangling link to /missing.image: /missing.image does not exist`,
          `lading: bound image /${DIR}/b.txt: invalid file extension: the link must be named NAME.image or NAME.container`,
          `lading: bound image /${DIR}/c.image: /${SYS}/c.image: Image=: Systemd specifiers are not supported by bound images: quay.io/org/c:%v`,
          '',
        ].join('\n'),
      );
    }
  });

  it('says so when nothing is declared', async () => {
    const { dir } = await hostRoot({ 'etc/os-release': 'ID=x\n' });
    const r = await lading('bound-images', 'list', '--root', dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'no bound images declared\n');
    assert.deepEqual(await ladingJson('bound-images', 'list', '--root', dir, '-o', 'json'), []);
  });

  it('needs exactly one of REF and --root', async () => {
    const { dir } = await hostRoot({});
    for (const args of [[], ['oci:/x', '--root', dir], ['--root', dir, '--platform', 'linux/arm64']]) {
      const r = await lading('bound-images', 'list', ...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(
        r.stderr,
        /^lading: (give an image reference or --root DIR \(one of them\)|--platform applies to an image, not to --root)\n$/,
      );
    }
  });
});
