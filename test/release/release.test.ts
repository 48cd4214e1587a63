/**
 * `lading release new | info | extract` on OCI layouts: composing from components given by tag,
 * reproducible digests, multi-architecture releases, extracting and pinning tools (whiteouts, symlinks,
 * hardlinks, files replaced by upper layers), reading releases written with oc's files, and bad input
 * that must fail with a clear message and write nothing.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { composeRelease } from '../../src/release/compose.js';
import { showPinned } from '../../src/release/pin-show.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { lading, ladingJson, ladingOk } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { snapshot } from '../helpers/tree.js';
import { image, index } from './images.js';
import { ARCH, IMAGE, VERSION } from './markers.js';

const installerBinary = (label: string) => Buffer.concat([Buffer.from(`#!installer ${label}\n`), IMAGE, VERSION, ARCH, Buffer.from('\n')]);
const cliBinary = Buffer.concat([Buffer.from('#!cli\n'), VERSION, Buffer.from('\n')]);

interface Info {
  name: string;
  digest: string;
  pullSpec: string;
  platforms: string[];
  multi: boolean;
  created: string;
  components: { name: string; pullSpec: string; digest: string }[];
  metadata: { version: string; previous: string[]; metadata?: Record<string, unknown> };
  upgrades: string[];
}

/** Two components in one layout: installer (all three markers) and cli (the version marker), tagged. */
async function components(dir: string): Promise<{ src: string; installer: string; cli: string }> {
  const src = join(dir, 'src');
  const store = await LayoutStore.open(src, 'write');
  const installer = await image(store, [{ 'usr/bin/openshift-install': installerBinary('v1') }], { tags: ['installer'] });
  const cli = await image(store, [{ 'usr/bin/oc': cliBinary }, { 'etc/motd': 'hello' }], { tags: ['cli'] });
  await store.close();
  return { src, installer: installer.digest, cli: cli.digest };
}

function newArgs(src: string, to: string, ...extra: string[]): string[] {
  return [
    'release',
    'new',
    '--name',
    '4.15.0',
    '--to',
    to,
    '--component',
    `installer=oci:${src}:installer`,
    '--component',
    `cli=oci:${src}:cli`,
    '--tool',
    'openshift-install=installer:/usr/bin/openshift-install',
    '--tool',
    'oc=cli:/usr/bin/oc',
    ...extra,
  ];
}

describe('lading release (OCI layouts)', () => {
  it('composes a release pinning components by digest, and info lists them', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const out = await ladingOk(
      ...newArgs(
        c.src,
        `oci:${dir}/rel`,
        '--previous',
        '4.14.9',
        '--previous',
        '4.14.10',
        '--metadata',
        '{"url":"https://example.com/4.15.0"}',
      ),
    );
    const [line1, line2] = out.trim().split('\n');
    assert.match(line1!, /^sha256:[0-9a-f]{64} 4\.15\.0 1970-01-01T00:00:00Z$/);
    const digest = line1!.split(' ')[0]!;
    assert.equal(line2, `Pull spec: oci:${dir}/rel@${digest}`);
    const info = await ladingJson<Info>('release', 'info', `oci:${dir}/rel:4.15.0`, '-o', 'json');
    assert.equal(info.digest, digest);
    assert.equal(info.name, '4.15.0');
    assert.deepEqual(info.platforms, ['linux/amd64']);
    assert.deepEqual(info.components, [
      { name: 'cli', pullSpec: `oci:${c.src}@${c.cli}`, digest: c.cli },
      { name: 'installer', pullSpec: `oci:${c.src}@${c.installer}`, digest: c.installer },
    ]);
    assert.deepEqual(info.metadata.previous, ['4.14.10', '4.14.9']);
    assert.deepEqual(info.upgrades, ['4.14.9', '4.14.10']);
    assert.deepEqual(info.metadata.metadata, { url: 'https://example.com/4.15.0' });
    const text = await ladingOk('release', 'info', `oci:${dir}/rel`, '--pullspecs');
    assert.match(text, new RegExp(`^Name: +4\\.15\\.0$`, 'm'));
    assert.match(text, new RegExp(`^ {2}installer +oci:${c.src}@${c.installer}$`, 'm'));
    assert.match(text, /^ {2}Upgrades: 4\.14\.9, 4\.14\.10$/m);
    // skopeo reads the release image.
    const { run } = await import('../helpers/run.js');
    const sk = await run('skopeo', ['inspect', `oci:${dir}/rel:4.15.0`]);
    assert.equal(sk.code, 0, sk.stderr);
    assert.equal((JSON.parse(sk.stdout) as { Digest: string }).Digest, digest);
  });

  it('gives the same digest for the same inputs, anywhere; SOURCE_DATE_EPOCH changes it', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const a = await composeRelease({
      name: '1.2.3',
      to: `oci:${dir}/a`,
      components: [{ name: 'cli', ref: `oci:${c.src}:cli` }],
      created: 0,
    });
    const b = await composeRelease({
      name: '1.2.3',
      to: `oci:${dir}/b:other`,
      components: [{ name: 'cli', ref: `oci:${c.src}@${c.cli}` }],
      created: 0,
    });
    const later = await composeRelease({
      name: '1.2.3',
      to: `oci:${dir}/c`,
      components: [{ name: 'cli', ref: `oci:${c.src}:cli` }],
      created: 1700000000,
    });
    assert.equal(a.digest, b.digest);
    assert.notEqual(a.digest, later.digest);
    assert.equal(later.created, '2023-11-14T22:13:20Z');
  });

  it('extracts release-manifests/ and a tool pinned to the release', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const digest = (await ladingOk(...newArgs(c.src, `oci:${dir}/rel`))).split(' ')[0]!;
    await ladingOk('release', 'extract', `oci:${dir}/rel`, '--to', join(dir, 'manifests'));
    assert.deepEqual(await readdir(join(dir, 'manifests')), ['image-references', 'lading-tools', 'release-metadata']);
    const metadata = JSON.parse(await readFile(join(dir, 'manifests', 'release-metadata'), 'utf8')) as { version: string };
    assert.equal(metadata.version, '4.15.0');

    const r = await lading('release', 'extract', `oci:${dir}/rel`, '--command', 'openshift-install', '--to', join(dir, 'bin'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const bin = join(dir, 'bin', 'openshift-install');
    assert.equal((await stat(bin)).mode & 0o777, 0o755);
    assert.deepEqual((await showPinned(bin)).values, {
      image: { state: 'pinned', value: `oci:${dir}/rel@${digest}`, offset: 15 },
      version: { state: 'pinned', value: '4.15.0', offset: 15 + 327 },
      arch: { state: 'pinned', value: 'linux/amd64', offset: 15 + 327 + 93 },
    });
    // The cli carries only the version marker: the others are a warning, as in oc.
    const oc = await lading('release', 'extract', `oci:${dir}/rel`, '--command', 'oc', '--to', join(dir, 'bin'));
    assert.equal(oc.code, 0, oc.stderr);
    assert.equal(oc.stderr, 'warning: Unable to make all expected replacements in oc.  Remaining: release architecture, release image\n');
    assert.deepEqual((await showPinned(join(dir, 'bin', 'oc'))).values.version, { state: 'pinned', value: '4.15.0', offset: 6 });
  });

  it('builds a multi-architecture release: an index, components by index digest, tools pinned as "multi (os/arch)"', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    const store = await LayoutStore.open(src, 'write');
    const amd = await image(store, [{ 'usr/bin/openshift-install': installerBinary('amd64') }], {
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const arm = await image(store, [{ 'usr/bin/openshift-install': installerBinary('arm64') }], {
      platform: { os: 'linux', architecture: 'arm64' },
    });
    const idx = await index(store, [amd, arm], ['installer']);
    await store.close();
    const args = ['release', 'new', '--name', '4.16.0', '--to', `oci:${dir}/rel`, '--component', `installer=oci:${src}:installer`];
    const out = await ladingJson<{ digest: string; mediaType: string; platforms: string[] }>(
      ...args,
      '--tool',
      'openshift-install=installer:/usr/bin/openshift-install',
      '--platform',
      'linux/amd64',
      '--platform',
      'linux/arm64',
      '-o',
      'json',
    );
    assert.equal(out.mediaType, 'application/vnd.oci.image.index.v1+json');
    const info = await ladingJson<Info>('release', 'info', `oci:${dir}/rel`, '-o', 'json');
    assert.equal(info.multi, true);
    assert.deepEqual(info.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(info.components[0]!.digest, idx.digest);
    assert.equal(info.metadata.metadata?.['release.openshift.io/architecture'], 'multi');

    await ladingOk(
      'release',
      'extract',
      `oci:${dir}/rel`,
      '--command',
      'openshift-install',
      '--command-os',
      'linux/arm64',
      '--to',
      join(dir, 'bin'),
    );
    const bin = join(dir, 'bin', 'openshift-install');
    assert.match(await readFile(bin, 'latin1'), /^#!installer arm64/);
    const values = (await showPinned(bin)).values;
    assert.deepEqual(values.image, { state: 'pinned', value: `oci:${dir}/rel@${out.digest}`, offset: 18 });
    assert.deepEqual(values.arch, { state: 'pinned', value: 'multi (linux/arm64)', offset: 18 + 327 + 93 });

    // A single-architecture release picks the platform's own image out of a component index.
    const single = await ladingJson<Info>(
      'release',
      'new',
      '--name',
      '4.16.0',
      '--to',
      `oci:${dir}/rel-arm`,
      '--component',
      `installer=oci:${src}:installer`,
      '--platform',
      'linux/arm64',
      '-o',
      'json',
    );
    assert.equal(single.components[0]!.digest, arm.digest);
  });

  it('extracts the file the upper layers leave: replaced, whited out, under an opaque directory, symlinked, hardlinked', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    const store = await LayoutStore.open(src, 'write');
    const bin = installerBinary('top');
    await image(store, [{ 'usr/bin/tool': installerBinary('bottom') }, { 'usr/bin/tool': bin }], { tags: ['replaced'] });
    await image(store, [{ 'usr/bin/tool': bin }, { 'usr/bin/.wh.tool': '' }], { tags: ['whiteout'] });
    await image(store, [{ 'usr/bin/tool': bin }, { 'usr/.wh.bin': '' }], { tags: ['parent-whiteout'] });
    await image(store, [{ 'usr/bin/tool': bin }, { 'usr/bin/.wh..wh..opq': '', 'usr/bin/other': 'x' }], { tags: ['opaque'] });
    await image(store, [{ 'usr/bin/.wh..wh..opq': '', 'usr/bin/tool': bin }], { tags: ['opaque-same-layer'] });
    await image(store, [{ 'opt/real/tool': bin }, { 'usr/bin/tool': { symlink: '../../opt/real/tool' } }], { tags: ['symlink'] });
    await image(store, [{ 'opt/real/tool': bin, 'usr/bin/tool': { hardlink: 'opt/real/tool' } }], { tags: ['hardlink'] });
    await image(store, [{ 'usr/bin/tool': bin }, { usr: { symlink: '/elsewhere' } }], { tags: ['parent-replaced'] });
    await store.close();
    const extract = async (tag: string) => {
      return lading(
        'release',
        'new',
        '--name',
        '1.0.0',
        '--to',
        `oci:${dir}/relt-${tag}`,
        '--component',
        `c=oci:${src}:${tag}`,
        '--tool',
        'tool=c:/usr/bin/tool',
      );
    };
    for (const tag of ['replaced', 'opaque-same-layer', 'symlink', 'hardlink']) {
      const r = await extract(tag);
      assert.equal(r.code, 0, `${tag}: ${r.stderr}`);
      await ladingOk('release', 'extract', `oci:${dir}/relt-${tag}`, '--command', 'tool', '--to', join(dir, `bin-${tag}`));
      const got = await readFile(join(dir, `bin-${tag}`, 'tool'), 'latin1');
      assert.match(got, /^#!installer top\n/, tag);
      assert.equal((await showPinned(join(dir, `bin-${tag}`, 'tool'))).values.version.state, 'pinned', tag);
    }
    const reasons: Record<string, RegExp> = {
      whiteout: /\/usr\/bin\/tool was removed by the whiteout usr\/bin\/\.wh\.tool in layer/,
      'parent-whiteout': /\/usr\/bin\/tool was removed by the whiteout usr\/\.wh\.bin in layer/,
      opaque: /\/usr\/bin\/tool was removed by an opaque whiteout of \/usr\/bin in layer/,
      'parent-replaced': /\/usr is a symlink in layer .*, so \/usr\/bin\/tool cannot exist below it/,
    };
    for (const [tag, reason] of Object.entries(reasons)) {
      const r = await extract(tag);
      assert.equal(r.code, 1, tag);
      assert.match(r.stderr, /^lading: --tool tool: \/usr\/bin\/tool is not a file in component c \(oci:.*\) for linux\/amd64: /, tag);
      assert.match(r.stderr, reason, tag);
      await assert.rejects(stat(join(dir, `relt-${tag}`)), tag);
    }
  });

  it('reports a component tag that moved while the release was written; the digest resolved first wins', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    let moved = '';
    const r = await composeRelease({
      name: '1.0.0',
      to: `oci:${dir}/rel`,
      components: [{ name: 'cli', ref: `oci:${c.src}:cli` }],
      afterResolve: async () => {
        const store = await LayoutStore.open(c.src, 'write');
        moved = (await writeImage(store, { layers: [{ files: { 'usr/bin/oc': 'new build' } }] }, ['cli'])).digest;
        await store.close();
      },
    });
    assert.notEqual(moved, c.cli);
    assert.deepEqual(r.moved, [{ name: 'cli', input: `oci:${c.src}:cli`, pinned: c.cli, now: moved }]);
    assert.equal(r.components[0]!.digest, c.cli);
    const info = await ladingJson<Info>('release', 'info', `oci:${dir}/rel`, '-o', 'json');
    assert.equal(info.components[0]!.digest, c.cli);
  });

  it('composes from an image-references file (tags resolved, annotations kept), --component overriding it', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const refsFile = join(dir, 'refs.yaml');
    await writeFile(
      refsFile,
      [
        'kind: ImageStream',
        'apiVersion: image.openshift.io/v1',
        'metadata: {name: ignored}',
        'spec:',
        '  tags:',
        `  - {name: cli, annotations: {io.openshift.build.commit.id: abc123}, from: {kind: DockerImage, name: "oci:${c.src}:cli"}}`,
        `  - {name: installer, from: {kind: DockerImage, name: "oci:${c.src}:cli"}}`,
      ].join('\n'),
    );
    await ladingOk(
      'release',
      'new',
      '--name',
      '2.0.0',
      '--to',
      `oci:${dir}/rel`,
      '--from-references',
      refsFile,
      '--component',
      `installer=oci:${c.src}:installer`,
    );
    await ladingOk('release', 'extract', `oci:${dir}/rel`, '--to', join(dir, 'm'));
    const written = JSON.parse(await readFile(join(dir, 'm', 'image-references'), 'utf8')) as {
      metadata: { name: string };
      spec: { tags: { name: string; annotations?: Record<string, string>; from: { name: string } }[] };
    };
    assert.equal(written.metadata.name, '2.0.0');
    assert.deepEqual(
      written.spec.tags.map((t) => [t.name, t.from.name, t.annotations]),
      [
        ['cli', `oci:${c.src}@${c.cli}`, { 'io.openshift.build.commit.id': 'abc123' }],
        ['installer', `oci:${c.src}@${c.installer}`, undefined],
      ],
    );
    // The extracted image-references composes the very same release again.
    const again = await ladingJson<{ digest: string }>(
      'release',
      'new',
      '--name',
      '2.0.0',
      '--to',
      `oci:${dir}/again`,
      '--from-references',
      join(dir, 'm', 'image-references'),
      '-o',
      'json',
    );
    const first = await ladingJson<{ digest: string }>('release', 'info', `oci:${dir}/rel`, '-o', 'json');
    assert.equal(again.digest, first.digest);
  });

  it('shows what changed between two releases', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const store = await LayoutStore.open(c.src, 'write');
    const cli2 = await image(store, [{ 'usr/bin/oc': 'v2' }], { tags: ['cli2'] });
    await store.close();
    await ladingOk(
      'release',
      'new',
      '--name',
      '1.0.0',
      '--to',
      `oci:${dir}/old`,
      '--component',
      `cli=oci:${c.src}:cli`,
      '--component',
      `installer=oci:${c.src}:installer`,
    );
    await ladingOk(
      'release',
      'new',
      '--name',
      '1.1.0',
      '--previous',
      '1.0.0',
      '--to',
      `oci:${dir}/new`,
      '--component',
      `cli=oci:${c.src}:cli2`,
      '--component',
      `extra=oci:${c.src}:installer`,
    );
    const changes = await ladingJson<{
      upgradeFrom: boolean;
      added: { name: string }[];
      removed: { name: string }[];
      changed: { name: string; to: string }[];
    }>('release', 'info', `oci:${dir}/new`, '--changes-from', `oci:${dir}/old`, '-o', 'json');
    assert.equal(changes.upgradeFrom, true);
    assert.deepEqual(
      changes.added.map((a) => a.name),
      ['extra'],
    );
    assert.deepEqual(
      changes.removed.map((a) => a.name),
      ['installer'],
    );
    assert.deepEqual(changes.changed, [{ name: 'cli', from: `oci:${c.src}@${c.cli}`, to: `oci:${c.src}@${cli2.digest}` }]);
    const text = await ladingOk('release', 'info', `oci:${dir}/new`, '--changes-from', `oci:${dir}/old`);
    assert.match(text, /Upgrade From: Yes/);
    assert.match(text, /Images Added:\n {2}extra/);
  });

  it('reads a release whose payload files are the ones oc writes', async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'ocp'), 'write');
    const fixture = (n: string) => readFile(new URL(`../fixtures/release/${n}`, import.meta.url));
    await writeImage(
      store,
      {
        layers: [
          { files: { 'usr/bin/cluster-version-operator': 'cvo', 'manifests/0000_00_cvo.yaml': 'kind: Namespace\n' } },
          {
            files: {
              'release-manifests/image-references': await fixture('oc-image-references'),
              'release-manifests/release-metadata': await fixture('oc-release-metadata'),
            },
          },
        ],
      },
      ['4.15.0-x86_64'],
    );
    await store.close();
    const info = await ladingJson<Info>('release', 'info', `oci:${dir}/ocp:4.15.0-x86_64`, '-o', 'json');
    assert.equal(info.name, '4.15.0');
    assert.deepEqual(
      info.components.map((x) => x.name),
      ['cli', 'cluster-version-operator', 'installer'],
    );
    assert.ok(info.components.every((x) => x.pullSpec.startsWith('quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:')));
    assert.deepEqual(info.upgrades, ['4.14.9', '4.14.10', '4.14.11']);
    const text = await ladingOk('release', 'info', `oci:${dir}/ocp:4.15.0-x86_64`);
    assert.match(text, /^ {4}url: https:\/\/access\.redhat\.com\/errata\/RHSA-2024:0041$/m);
  });

  it("refuses payloads that are not releases or break the CVO's rules, writing nothing", async () => {
    const dir = await tempDir();
    const store = await LayoutStore.open(join(dir, 'bad'), 'write');
    const meta = (v: string) => `{"kind":"cincinnati-metadata-v0","version":"${v}","previous":[]}`;
    const refs = (name: string, from: string) =>
      JSON.stringify({
        kind: 'ImageStream',
        apiVersion: 'image.openshift.io/v1',
        metadata: { name },
        spec: { tags: [{ name: 'cli', from: { kind: 'DockerImage', name: from } }] },
      });
    const pinned = `quay.io/o/cli@sha256:${'d'.repeat(64)}`;
    await writeImage(store, { layers: [{ files: { 'usr/bin/app': 'x' } }] }, ['plain']);
    await writeImage(
      store,
      {
        layers: [
          { files: { 'release-manifests/image-references': refs('1.0.0', pinned), 'release-manifests/release-metadata': meta('1.0.1') } },
        ],
      },
      ['names-differ'],
    );
    await writeImage(
      store,
      {
        layers: [
          {
            files: {
              'release-manifests/image-references': refs('1.0.0', 'quay.io/o/cli:latest'),
              'release-manifests/release-metadata': meta('1.0.0'),
            },
          },
        ],
      },
      ['by-tag'],
    );
    await writeImage(store, { layers: [{ files: { 'release-manifests/image-references': refs('1.0.0', pinned) } }] }, ['no-metadata']);
    await writeImage(
      store,
      {
        layers: [
          { files: { 'release-manifests/image-references': refs('1.0.0', pinned), 'release-manifests/release-metadata': meta('1.0.0') } },
          { files: { '.wh.release-manifests': '' } },
        ],
      },
      ['whited-out'],
    );
    await store.close();
    const cases: [string, RegExp][] = [
      [
        'plain',
        /has no release-manifests\/ with image-references and release-metadata: it is not a release image \(\/release-manifests\/image-references is in none of the 1 layers\)/,
      ],
      ['names-differ', /version from image-references "1\.0\.0" differs from release-metadata "1\.0\.1"/],
      ['by-tag', /image-references should only contain pointers to images by digest: cli is quay\.io\/o\/cli:latest/],
      ['no-metadata', /has no \/release-manifests\/release-metadata/],
      [
        'whited-out',
        /it is not a release image \(\/release-manifests\/image-references was removed by the whiteout \.wh\.release-manifests/,
      ],
    ];
    const out = join(dir, 'out');
    for (const [tag, message] of cases) {
      for (const args of [
        ['info', `oci:${dir}/bad:${tag}`],
        ['extract', `oci:${dir}/bad:${tag}`, '--to', out],
      ]) {
        const r = await lading('release', ...args);
        assert.equal(r.code, 1, `${tag} ${args[0]}`);
        assert.match(r.stderr, message, `${tag} ${args[0]}`);
      }
    }
    await assert.rejects(stat(out));
  });

  it('refuses bad input to release new and writes nothing', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const store = await LayoutStore.open(c.src, 'write');
    await image(store, [{ a: 'arm' }], { platform: { os: 'linux', architecture: 'arm64' } }).then((arm) =>
      index(store, [arm], ['arm-only']),
    );
    await store.close();
    const before = await snapshot(dir);
    const to = `oci:${dir}/rel`;
    const cases: [string[], number, RegExp][] = [
      [['--name', '4.15', '--to', to, '--component', `cli=oci:${c.src}:cli`], 2, /--name "4\.15" is not a semantic version/],
      [['--name', '1.0.0', '--to', to], 2, /a release needs components/],
      [['--name', '1.0.0', '--to', to, '--component', 'cli'], 2, /--component takes NAME=REF/],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:nope`],
        1,
        /cannot resolve component cli \(oci:.*:nope\): tag "nope" not found/,
      ],
      [['--name', '1.0.0', '--to', `${to}@sha256:${'a'.repeat(64)}`, '--component', `cli=oci:${c.src}:cli`], 2, /name a tag or nothing/],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--previous', 'x'],
        2,
        /--previous "x" is not a semantic version/,
      ],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--metadata', '[1]'],
        2,
        /invalid --metadata: expected a JSON object/,
      ],
      [
        ['--name', '1.0.0', '--to', to, '--component', `arm=oci:${c.src}:arm-only`],
        1,
        /component arm \(oci:.*:arm-only\) is an index without linux\/amd64 \(it has: linux\/arm64\)/,
      ],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--tool', 'oc=cli:/usr/bin/missing'],
        1,
        /--tool oc: \/usr\/bin\/missing is not a file in component cli .* is in none of the 2 layers/,
      ],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--tool', 'oc=nope:/usr/bin/oc'],
        2,
        /--tool oc: there is no component named nope \(components: cli\)/,
      ],
      [['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--tool', 'oc=cli:/etc'], 1, /\/etc is a directory/],
      [
        ['--name', '1.0.0', '--to', to, '--component', `cli=oci:${c.src}:cli`, '--tool', 'oc=cli:/usr/bin/oc@linux/arm64'],
        1,
        /component cli \(oci:.*\) is an image for linux\/amd64, not linux\/arm64/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await lading('release', 'new', ...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.equal(await snapshot(dir), before);
  });

  it('refuses extract --command for a tool it does not have, or a platform the tool lacks, writing nothing', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    await ladingOk(...newArgs(c.src, `oci:${dir}/rel`));
    const out = join(dir, 'bin');
    const none = await lading('release', 'extract', `oci:${dir}/rel`, '--command', 'kubectl', '--to', out);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no tool named kubectl \(it has: oc, openshift-install\)/);
    const arm = await lading('release', 'extract', `oci:${dir}/rel`, '--command', 'oc', '--command-os', 'linux/arm64', '--to', out);
    assert.equal(arm.code, 1);
    assert.match(arm.stderr, /has oc for linux\/amd64, not linux\/arm64: pass --command-os/);
    await assert.rejects(stat(out));
  });

  it('refuses to pin a release pull spec longer than the marker holds', async () => {
    const dir = await tempDir();
    const c = await components(dir);
    const deep = join(dir, 'x'.repeat(120), 'y'.repeat(120));
    await ladingOk(...newArgs(c.src, `oci:${deep}`));
    const r = await lading('release', 'extract', `oci:${deep}`, '--command', 'openshift-install', '--to', join(dir, 'bin'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the release image value has \d+ bytes, but the maximum replacement length is 326/);
    await assert.rejects(stat(join(dir, 'bin')));
  });
});
