/**
 * `lading build`: golden digests of the fixture spec (drift in the tar writer, the compressors or the
 * JSON fails here), the same digest from two checkouts that differ in mtimes, umask, owner and creation
 * order, `--check`, multi-platform indexes, umoci and skopeo reading what is built, time from
 * SOURCE_DATE_EPOCH, and bases pinned by digest in an OCI layout and in a registry.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listRootfs, sha256Hex } from '../helpers/rootfs.js';
import { startRegistry, type RegistryInstance } from '../helpers/registry.js';
import { CLI, lading, ladingJson, ladingOk, ok, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import {
  blobJson,
  checkout,
  type ConfigJson,
  GOLDEN,
  type IndexJson,
  isRoot,
  layerEntries,
  type ManifestJson,
  rootOf,
  write,
} from './build-helpers.js';

interface Report {
  digest: string;
  mediaType: string;
  compressor: string;
  created: string;
  sourceDateEpoch: number;
  base?: { name: string; digest: string; floating: boolean };
  images: {
    platform: string;
    digest: string;
    base?: string;
    layers: { from: string; diffId: string; digest: string; cached?: boolean }[];
  }[];
}

// Pinned: the golden fixture built at SOURCE_DATE_EPOCH=1700000000. Change only with a reason (see the fixture README).
const EPOCH = '1700000000';
const GOLDEN_GZIP = 'sha256:e3cc2fd8dcfcf014f57cf17d9f7a24b2a3b12aac515c981611afb6bfda6c49a3';
const GOLDEN_ZSTD = 'sha256:4b397affb07fa126a508a66ce52cd28e73d69191c6fd1b703442324c36f1edbb';
const GOLDEN_NONE = 'sha256:8152a3806dc39ba0c3d14d8e86095f770d8da4f3daaa1ed2a47e1d4c2519e615';
const GOLDEN_AMD64_DIFF_IDS = [
  'sha256:0105f16da5d33897f2e9a7160564d51bced365b342a86aeef2fbadd4aa7f24b0',
  'sha256:7af1947b0a0c609f4ae1f12a396a14557d92bdb96e25dff2dc8c4715d9f79acc',
];

const cacheRoot = await tempDirOutsideTest();
process.env.XDG_CACHE_HOME = cacheRoot;
delete process.env.SOURCE_DATE_EPOCH;

async function tempDirOutsideTest(): Promise<string> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'lading-build-cache-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function buildJson(spec: string, to: string, ...flags: string[]): Promise<Report> {
  return ladingJson<Report>('build', spec, '--to', to, '-o', 'json', ...flags);
}

/** A one-platform spec over a small context, for umoci (which cannot unpack an index by tag). */
async function smallContext(dir: string): Promise<string> {
  await write(join(dir, 'bin/tool'), '#!/bin/sh\necho tool\n', 0o700); // executable under umask 077
  await write(join(dir, 'etc/tool.conf'), 'a = 1\n', 0o600);
  await write(join(dir, 'share/doc/README'), 'docs\n', 0o664);
  await writeFile(
    join(dir, 'spec.yaml'),
    `base: scratch
platforms: [linux/amd64]
layers:
  - files:
      - {src: ./bin/tool, dest: /usr/bin/tool}
      - {src: ./etc/tool.conf, dest: /etc/}
      - {src: ./share/, dest: /usr/share/tool, uid: 7, gid: 8}
  - files:
      - {dest: /var/lib/tool, type: directory, uid: 65532, gid: 65532, mode: "0700"}
      - {dest: /usr/bin/t, type: symlink, target: tool}
      - {dest: /usr/bin/tool2, type: hardlink, target: /usr/bin/tool}
      - {src: ./etc/tool.conf, dest: /etc/setuid-conf, mode: "4755", uid: 1, gid: 2}
config:
  entrypoint: [/usr/bin/tool]
  env: {PATH: /usr/bin}
`,
  );
  return join(dir, 'spec.yaml');
}

describe('lading build', () => {
  it('builds the golden fixture to pinned digests (gzip, zstd, uncompressed)', async () => {
    const dir = await tempDir();
    const gzip = await buildJson(join(GOLDEN, 'spec.yaml'), `oci:${dir}/gzip:v1`, '--source-date-epoch', EPOCH);
    const zstd = await buildJson(join(GOLDEN, 'spec.yaml'), `oci:${dir}/zstd:v1`, '--source-date-epoch', EPOCH, '--compression', 'zstd');
    const none = await buildJson(join(GOLDEN, 'spec.yaml'), `oci:${dir}/none:v1`, '--source-date-epoch', EPOCH, '--compression', 'none');
    const amd64 = gzip.images.find((i) => i.platform === 'linux/amd64')!;
    assert.deepEqual(
      amd64.layers.map((l) => l.diffId),
      GOLDEN_AMD64_DIFF_IDS,
      'the layer tars (diff_ids) changed: the tar writer or the input scan drifted',
    );
    assert.equal(gzip.digest, GOLDEN_GZIP, 'the gzip build changed (compressor, config or manifest drift)');
    assert.equal(zstd.digest, GOLDEN_ZSTD, 'the zstd build changed');
    assert.equal(none.digest, GOLDEN_NONE, 'the uncompressed build changed');
    // The diff_ids do not depend on the compressor.
    assert.deepEqual(
      zstd.images.map((i) => i.layers.map((l) => l.diffId)),
      gzip.images.map((i) => i.layers.map((l) => l.diffId)),
    );
    assert.match(gzip.compressor, /^gzip:fflate-0\.8\.3:level6:block1MiB$/);
  });

  it('gives the same digest from two checkouts with different mtimes, umask, owner and file order', async () => {
    const dir = await tempDir();
    await checkout(GOLDEN, join(dir, 'one'), { mtime: 1_000_000_000, umask: 0o022 });
    await checkout(GOLDEN, join(dir, 'two'), {
      mtime: 1_900_000_000,
      umask: 0o077,
      reverse: true,
      ...(isRoot && { owner: { uid: 1234, gid: 5678 } }),
    });
    const one = await buildJson(join(dir, 'one/spec.yaml'), `oci:${dir}/out-one`, '--source-date-epoch', EPOCH, '--no-cache');
    const two = await buildJson(join(dir, 'two/spec.yaml'), `oci:${dir}/out-two`, '--source-date-epoch', EPOCH, '--no-cache');
    assert.equal(one.digest, two.digest);
    assert.equal(one.digest, GOLDEN_GZIP);
    if (isRoot) assert.equal((await lstat(join(dir, 'two/config/app.conf'))).uid, 1234, 'the second checkout has another owner');
  });

  it('--check builds twice from perturbed copies and reports the digest', async () => {
    const r = await lading('build', join(GOLDEN, 'spec.yaml'), '--check', '--source-date-epoch', EPOCH);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `reproducible: ${GOLDEN_GZIP} (built twice from copies with different mtimes, umask and owner)\n`);
    const json = await ladingJson<{ reproducible: boolean; digest: string; builds: Report[] }>(
      'build',
      join(GOLDEN, 'spec.yaml'),
      '--check',
      '--source-date-epoch',
      EPOCH,
      '-o',
      'json',
    );
    assert.equal(json.reproducible, true);
    assert.deepEqual(
      json.builds.map((b) => b.digest),
      [GOLDEN_GZIP, GOLDEN_GZIP],
    );
  });

  it('makes an index with one image per platform, each from its own ${arch} input', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const report = await buildJson(join(GOLDEN, 'spec.yaml'), `oci:${out}:v1`, '--source-date-epoch', EPOCH);
    assert.equal(report.mediaType, 'application/vnd.oci.image.index.v1+json');
    const root = await rootOf(out);
    assert.equal(root.digest, report.digest);
    const index = await blobJson<IndexJson>(out, root.digest);
    assert.deepEqual(
      index.manifests.map((m) => m.platform),
      [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux' },
      ],
    );
    assert.equal(index.annotations?.['org.opencontainers.image.version'], '1.0.0');
    assert.equal(index.annotations?.['org.opencontainers.image.created'], '2023-11-14T22:13:20Z');
    for (const [i, arch] of ['amd64', 'arm64'].entries()) {
      const manifest = await blobJson<ManifestJson>(out, index.manifests[i]!.digest);
      const config = await blobJson<ConfigJson>(out, manifest.config.digest);
      assert.equal(config.architecture, arch);
      assert.equal(config.created, '2023-11-14T22:13:20Z');
      assert.deepEqual(
        config.history?.map((h) => h.created),
        ['2023-11-14T22:13:20Z', '2023-11-14T22:13:20Z'],
      );
      assert.equal(manifest.annotations?.['io.lading.build.compressor'], report.compressor);
      const app = (await layerEntries(out, manifest.layers[0]!)).find((e) => e.path === 'usr/bin/app');
      assert.equal(app?.content, `#!/bin/sh\necho "app for ${arch}"\n`);
    }
  });

  it('writes exactly the files, modes and owners of the spec, as umoci unpacks them', async () => {
    const dir = await tempDir();
    const spec = await smallContext(join(dir, 'ctx'));
    await buildJson(spec, `oci:${dir}/img:v1`);
    const bundle = join(dir, 'bundle');
    await ok('umoci', 'unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${dir}/img:v1`, bundle);
    const rootfs = join(bundle, 'rootfs');
    const h = (s: string) => sha256Hex(s);
    assert.deepEqual(await listRootfs(rootfs), {
      etc: { type: 'dir', mode: 0o755 },
      'etc/setuid-conf': { type: 'file', mode: 0o4755, content: h('a = 1\n') },
      'etc/tool.conf': { type: 'file', mode: 0o644, content: h('a = 1\n') },
      usr: { type: 'dir', mode: 0o755 },
      'usr/bin': { type: 'dir', mode: 0o755 },
      'usr/bin/t': { type: 'symlink', mode: 0o777, content: 'tool' },
      'usr/bin/tool': { type: 'file', mode: 0o755, content: h('#!/bin/sh\necho tool\n') },
      'usr/bin/tool2': { type: 'file', mode: 0o755, content: h('#!/bin/sh\necho tool\n') },
      'usr/share': { type: 'dir', mode: 0o755 },
      'usr/share/tool': { type: 'dir', mode: 0o755 },
      'usr/share/tool/doc': { type: 'dir', mode: 0o755 },
      'usr/share/tool/doc/README': { type: 'file', mode: 0o644, content: h('docs\n') },
      var: { type: 'dir', mode: 0o755 },
      'var/lib': { type: 'dir', mode: 0o755 },
      'var/lib/tool': { type: 'dir', mode: 0o700 },
    });
    const tool = await lstat(join(rootfs, 'usr/bin/tool'));
    assert.equal(tool.nlink, 2, 'tool and tool2 are one file');
    assert.equal((await lstat(join(rootfs, 'usr/bin/tool2'))).ino, tool.ino);
    assert.equal(tool.mtimeMs, 0);
    if (isRoot) {
      const owners: Record<string, [number, number]> = {
        'usr/bin/tool': [0, 0],
        'usr/share/tool': [7, 8],
        'usr/share/tool/doc/README': [7, 8],
        'var/lib/tool': [65532, 65532],
        'etc/setuid-conf': [1, 2],
        'etc/tool.conf': [0, 0],
        usr: [0, 0],
      };
      for (const [path, [uid, gid]] of Object.entries(owners)) {
        const st = await lstat(join(rootfs, path));
        assert.deepEqual([st.uid, st.gid], [uid, gid], path);
      }
    }
  });

  it('is read by skopeo inspect', async () => {
    const dir = await tempDir();
    const spec = await smallContext(join(dir, 'ctx'));
    const report = await buildJson(spec, `oci:${dir}/img:v1`, '--compression', 'zstd');
    const info = JSON.parse(await ok('skopeo', 'inspect', `oci:${dir}/img:v1`)) as {
      Digest: string;
      Created: string;
      Architecture: string;
      Os: string;
      Layers: string[];
      Env: string[];
    };
    assert.equal(info.Digest, report.digest);
    assert.equal(info.Created, '1970-01-01T00:00:00Z');
    assert.equal(info.Architecture, 'amd64');
    assert.deepEqual(
      info.Layers,
      report.images[0]!.layers.map((l) => l.digest),
    );
    assert.deepEqual(info.Env, ['PATH=/usr/bin']);
    const golden = join(dir, 'golden');
    const g = await buildJson(join(GOLDEN, 'spec.yaml'), `oci:${golden}:v1`);
    const raw = JSON.parse(await ok('skopeo', 'inspect', '--raw', `oci:${golden}:v1`)) as IndexJson;
    assert.equal(raw.manifests.length, 2);
    assert.equal(sha256Hex(await ok('skopeo', 'inspect', '--raw', `oci:${golden}:v1`)), g.digest.slice(7));
  });

  it('takes its time from SOURCE_DATE_EPOCH, or the flag, which wins; a malformed value is refused', async () => {
    const dir = await tempDir();
    const spec = await smallContext(join(dir, 'ctx'));
    const env = { ...process.env, SOURCE_DATE_EPOCH: '86400' };
    const r = await run(process.execPath, [CLI, 'build', spec, '--to', `oci:${dir}/a`, '-o', 'json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as Report;
    assert.equal(a.created, '1970-01-02T00:00:00Z');
    const root = await rootOf(join(dir, 'a'));
    const manifest = await blobJson<ManifestJson>(join(dir, 'a'), root.digest);
    const config = await blobJson<ConfigJson>(join(dir, 'a'), manifest.config.digest);
    assert.equal(config.created, '1970-01-02T00:00:00Z');
    for (const e of await layerEntries(join(dir, 'a'), manifest.layers[0]!)) assert.equal(e.mtime, 86400, e.path);

    const b = await run(process.execPath, [CLI, 'build', spec, '--to', `oci:${dir}/b`, '-o', 'json', '--source-date-epoch', '0'], { env });
    assert.equal((JSON.parse(b.stdout) as Report).created, '1970-01-01T00:00:00Z');

    const bad = await run(process.execPath, [CLI, 'build', spec, '--to', `oci:${dir}/c`], {
      env: { ...process.env, SOURCE_DATE_EPOCH: '1.5e9' },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SOURCE_DATE_EPOCH "1\.5e9" is not a time: give whole seconds since 1970-01-01/);
    assert.equal(existsSync(join(dir, 'c')), false);
  });

  it('prints what went in: base, each layer diff_id and digest, the compressor, the final digest', async () => {
    const dir = await tempDir();
    const spec = await smallContext(join(dir, 'ctx'));
    const out = await ladingOk('build', spec, '--to', `oci:${dir}/img:v1`);
    const json = await buildJson(spec, `oci:${dir}/img:v1`);
    assert.match(out, /^compressor {2}gzip:fflate-0\.8\.3:level6:block1MiB$/m);
    for (const l of json.images[0]!.layers) assert.ok(out.includes(`diff_id ${l.diffId}  blob ${l.digest}`), out);
    assert.ok(out.endsWith(`${json.digest}  oci:${dir}/img:v1\n`), out);
    assert.equal(json.images[0]!.layers[0]!.cached, true, 'the second build reuses the cached compressed layer');
  });
});

describe('lading build on a base image', () => {
  it('builds on a base pinned by digest in an OCI layout, carrying its layers, config and history', async () => {
    const dir = await tempDir();
    await write(join(dir, 'base-ctx/os-release'), 'ID=base\n');
    await writeFile(
      join(dir, 'base-ctx/spec.yaml'),
      `base: scratch
platforms: [linux/amd64, linux/arm64]
layers:
  - files: [{src: ./os-release, dest: /etc/os-release}]
config:
  env: {PATH: /bin, LANG: C}
  cmd: [/bin/sh]
  labels: {from: base}
`,
    );
    const base = await buildJson(join(dir, 'base-ctx/spec.yaml'), `oci:${dir}/base:v1`);
    await write(join(dir, 'app/bin/app'), 'app\n', 0o755);
    const spec = (baseRef: string, platforms: string) =>
      `base: ${baseRef}
platforms: [${platforms}]
layers:
  - files: [{src: ./bin/app, dest: /usr/bin/app}]
config:
  env: {PATH: /usr/bin}
  entrypoint: [/usr/bin/app]
  labels: {from: app}
`;
    await writeFile(join(dir, 'app/spec.yaml'), spec(`oci:../base@${base.digest}`, 'linux/amd64, linux/arm64'));
    const r = await buildJson(join(dir, 'app/spec.yaml'), `oci:${dir}/app-img:v1`);
    assert.deepEqual(r.base, { name: `oci:../base@${base.digest}`, digest: base.digest, floating: false });
    for (const [i, image] of r.images.entries()) {
      const baseImage = base.images[i]!;
      assert.equal(image.base, baseImage.digest);
      assert.deepEqual(
        image.layers.map((l) => l.from),
        ['base', 'spec'],
      );
      assert.equal(image.layers[0]!.digest, baseImage.layers[0]!.digest);
      const manifest = await blobJson<ManifestJson>(join(dir, 'app-img'), image.digest);
      assert.equal(manifest.annotations?.['org.opencontainers.image.base.digest'], baseImage.digest);
      assert.equal(manifest.annotations?.['org.opencontainers.image.base.name'], `oci:../base@${base.digest}`);
      const config = await blobJson<ConfigJson>(join(dir, 'app-img'), manifest.config.digest);
      assert.deepEqual(config.config.Env, ['PATH=/usr/bin', 'LANG=C']);
      assert.deepEqual(config.config.Entrypoint, ['/usr/bin/app']);
      assert.equal(config.config.Cmd, undefined, "an entrypoint drops the base's cmd, as in a Dockerfile");
      assert.deepEqual(config.config.Labels, { from: 'app' });
      assert.equal(config.rootfs.diff_ids.length, 2);
      assert.deepEqual(
        config.history?.map((h) => h.created_by),
        ['lading build: layer 1', 'lading build: layer 1'],
      );
    }

    // One platform of the base, unpacked by umoci: the base's files and the new ones.
    await writeFile(join(dir, 'app/one.yaml'), spec(`oci:../base@${base.digest}`, 'linux/arm64'));
    await buildJson(join(dir, 'app/one.yaml'), `oci:${dir}/one:v1`);
    await ok('umoci', 'unpack', '--rootless', '--image', `${dir}/one:v1`, join(dir, 'bundle'));
    const files = await listRootfs(join(dir, 'bundle/rootfs'));
    assert.deepEqual(Object.keys(files).sort(), ['etc', 'etc/os-release', 'usr', 'usr/bin', 'usr/bin/app']);
  });

  it('refuses a base named by tag unless --allow-floating-base, then records and prints the digest', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'base.yaml'), 'base: scratch\nlayers: [{files: []}]\nconfig: {env: {A: "1"}}\n');
    const base = await buildJson(join(dir, 'base.yaml'), `oci:${dir}/base:v1`);
    await writeFile(join(dir, 'spec.yaml'), 'base: oci:base:v1\n');
    const refused = await lading('build', join(dir, 'spec.yaml'), '--to', `oci:${dir}/out`);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /spec\.yaml line 1: base oci:base:v1 is not pinned by digest, and a tag can move: .*--allow-floating-base/,
    );
    assert.equal(existsSync(join(dir, 'out')), false);
    const text = await ladingOk('build', join(dir, 'spec.yaml'), '--to', `oci:${dir}/out`, '--allow-floating-base');
    assert.match(text, new RegExp(`^base {8}oci:base:v1 -> ${base.digest} {2}\\(floating tag: pin this digest\\)$`, 'm'));
    const root = await rootOf(join(dir, 'out'));
    const manifest = await blobJson<ManifestJson>(join(dir, 'out'), root.digest);
    assert.equal(manifest.annotations?.['org.opencontainers.image.base.digest'], base.digest);
  });

  it('refuses a base without the requested platform, writing nothing', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'base.yaml'), 'base: scratch\nplatforms: [linux/amd64]\nlayers: [{files: []}]\n');
    const base = await buildJson(join(dir, 'base.yaml'), `oci:${dir}/base:v1`);
    await writeFile(join(dir, 'spec.yaml'), `base: oci:base@${base.digest}\nplatforms: [linux/arm64]\n`);
    const r = await lading('build', join(dir, 'spec.yaml'), '--to', `oci:${dir}/out`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /base oci:base@sha256:[0-9a-f]{64} is a linux\/amd64 image, and the spec asks for linux\/arm64/);
    assert.equal(existsSync(join(dir, 'out')), false);

    await writeFile(join(dir, 'multi.yaml'), 'base: scratch\nplatforms: [linux/amd64, linux/arm64]\nlayers: [{files: []}]\n');
    const multi = await buildJson(join(dir, 'multi.yaml'), `oci:${dir}/multi:v1`);
    await writeFile(join(dir, 'spec2.yaml'), `base: oci:multi@${multi.digest}\nplatforms: [linux/amd64, linux/s390x]\n`);
    const r2 = await lading('build', join(dir, 'spec2.yaml'), '--to', `oci:${dir}/out`);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\)/);
    assert.equal(existsSync(join(dir, 'out')), false);
  });

  describe('with a registry', () => {
    let reg: RegistryInstance;
    before(async () => (reg = await startRegistry()));
    after(() => reg.stop());

    it('pushes to docker:// and builds on a registry base pinned by digest', async () => {
      const dir = await tempDir();
      await write(join(dir, 'base/hello'), 'hello\n');
      await writeFile(join(dir, 'base/spec.yaml'), 'base: scratch\nlayers:\n  - files: [{src: ./hello, dest: /hello}]\n');
      const base = await buildJson(join(dir, 'base/spec.yaml'), `docker://${reg.host}/base:1`, '--tls-verify=false');
      const info = JSON.parse(await ok('skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/base:1`)) as { Digest: string };
      assert.equal(info.Digest, base.digest);
      await write(join(dir, 'app/world'), 'world\n');
      await writeFile(
        join(dir, 'app/spec.yaml'),
        `base: docker://${reg.host}/base@${base.digest}\nlayers:\n  - files: [{src: ./world, dest: /world}]\n`,
      );
      const app = await buildJson(join(dir, 'app/spec.yaml'), `oci:${dir}/app-img:v1`, '--tls-verify=false');
      assert.equal(app.base?.digest, base.digest);
      assert.deepEqual(
        app.images[0]!.layers.map((l) => l.digest),
        [base.images[0]!.layers[0]!.digest, app.images[0]!.layers[1]!.digest],
      );
      await ok('umoci', 'unpack', '--rootless', '--image', `${dir}/app-img:v1`, join(dir, 'bundle'));
      assert.deepEqual(Object.keys(await listRootfs(join(dir, 'bundle/rootfs'))).sort(), ['hello', 'world']);
    });
  });
});
