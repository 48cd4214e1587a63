/**
 * `lading diff`: identical images exit 0; each kind of difference (tar entry mode, owner, mtime, content,
 * presence, link target; config fields; annotations; compression; index platforms) is reported as a line
 * a person can act on, and exit 1. Also the failing side of `build --check`: two builds that differ give
 * NOT_REPRODUCIBLE with the first difference.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type BuildOptions, buildImage } from '../../src/build/build.js';
import { assertReproducible, compareBuilds } from '../../src/build/check.js';
import { type DiffReport, diffImages } from '../../src/build/diff.js';
import { isLadingError } from '../../src/errors.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { lading } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { write } from './build-helpers.js';

const SPEC = (mode: string, extra = '') => `base: scratch
platforms: [linux/amd64]
layers:
  - files:
      - {src: ./app, dest: /usr/bin/app, mode: "${mode}"}
      - {src: ./conf/, dest: /etc/app/}
${extra}config:
  env: {A: "1"}
`;

/** Builds `spec` (text) in a fresh context into oci:<dir>/<name>; returns the layout path. */
async function build(dir: string, name: string, spec: string, options: BuildOptions = {}, app = 'app\n'): Promise<string> {
  const ctx = join(dir, `ctx-${name}`);
  await write(join(ctx, 'app'), app);
  await write(join(ctx, 'conf/a.conf'), 'a\n');
  await write(join(ctx, 'conf/b.conf'), 'b\n');
  await writeFile(join(ctx, 'spec.yaml'), spec);
  const layout = join(dir, name);
  const store = await LayoutStore.open(layout, 'write');
  await buildImage(join(ctx, 'spec.yaml'), store, ['v1'], { cacheDir: false, ...options });
  await store.close();
  return layout;
}

async function diff(a: string, b: string, options = {}): Promise<DiffReport> {
  const sa = await LayoutStore.open(a, 'read');
  const sb = await LayoutStore.open(b, 'read');
  try {
    return await diffImages({ store: sa, ref: 'v1' }, { store: sb, ref: 'v1' }, options);
  } finally {
    await sa.close();
    await sb.close();
  }
}

const messages = (r: DiffReport) => r.differences.map((d) => d.message);

describe('lading diff', () => {
  it('says identical and exits 0 for the same image built twice; exits 1 and names each difference otherwise', async () => {
    const dir = await tempDir();
    const a = await build(dir, 'a', SPEC('0755'));
    const b = await build(dir, 'b', SPEC('0755'));
    const same = await lading('diff', `oci:${a}:v1`, `oci:${b}:v1`);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /^A: oci:.*@sha256:[0-9a-f]{64}\nB: oci:.*\nidentical\n$/);

    const c = await build(dir, 'c', SPEC('0700'));
    const differ = await lading('diff', `oci:${a}:v1`, `oci:${c}:v1`);
    assert.equal(differ.code, 1);
    assert.match(differ.stdout, /^layer 1 \/usr\/bin\/app: mode 0755 != 0700$/m);
    assert.match(differ.stdout, /^config: rootfs\.diff_ids\[0\] "sha256:[0-9a-f]+" != "sha256:[0-9a-f]+"$/m);
    const json = JSON.parse((await lading('diff', `oci:${a}:v1`, `oci:${c}:v1`, '-o', 'json')).stdout) as DiffReport;
    assert.equal(json.identical, false);
    assert.deepEqual(
      json.differences.find((d) => d.field === 'mode'),
      {
        image: '',
        part: 'layer 1',
        path: '/usr/bin/app',
        field: 'mode',
        a: 0o755,
        b: 0o700,
        message: 'layer 1 /usr/bin/app: mode 0755 != 0700',
      },
    );
  });

  it('reports times, contents, sizes, owners, links and entries only on one side', async () => {
    const dir = await tempDir();
    const extra = (owner: string, target: string) =>
      `  - files:\n      - {dest: /var/lib/app, type: directory, ${owner}}\n      - {dest: /usr/bin/link, type: symlink, target: ${target}}\n`;
    const a = await build(dir, 'a', SPEC('0755', extra('uid: 1, gid: 1', 'app')), { sourceDateEpoch: 0 });
    const b = await build(dir, 'b', SPEC('0755', extra('uid: 2, gid: 1', 'other')), { sourceDateEpoch: 86400 }, 'app, changed\n');
    const r = await diff(a, b);
    const m = messages(r);
    assert.ok(m.includes('layer 1 /usr/bin/app: mtime 0 (1970-01-01T00:00:00Z) != 86400 (1970-01-02T00:00:00Z)'), m.join('\n'));
    assert.ok(m.includes('layer 1 /usr/bin/app: size 4 != 13'), m.join('\n'));
    assert.ok(
      m.some((x) => /^layer 1 \/usr\/bin\/app: content "sha256:[0-9a-f]{64}" != "sha256:[0-9a-f]{64}"$/.test(x)),
      m.join('\n'),
    );
    assert.ok(m.includes('layer 2 /var/lib/app: uid 1 != 2'), m.join('\n'));
    assert.ok(m.includes('layer 2 /usr/bin/link: linkTarget "app" != "other"'), m.join('\n'));
    assert.ok(m.includes('config: created "1970-01-01T00:00:00Z" != "1970-01-02T00:00:00Z"'), m.join('\n'));
    assert.ok(m.includes('config: history[1].created "1970-01-01T00:00:00Z" != "1970-01-02T00:00:00Z"'), m.join('\n'));
    assert.ok(
      m.includes('manifest: annotations["org.opencontainers.image.created"] "1970-01-01T00:00:00Z" != "1970-01-02T00:00:00Z"'),
      m.join('\n'),
    );

    const c = await build(
      dir,
      'c',
      SPEC('0755').replace('      - {src: ./conf/, dest: /etc/app/}\n', '      - {src: ./conf/a.conf, dest: /etc/app/}\n'),
    );
    const d = await build(dir, 'd', SPEC('0755'));
    const only = messages(await diff(c, d));
    assert.ok(only.includes('layer 1 /etc/app/b.conf: entry only in B (file, 2 bytes)'), only.join('\n'));
    assert.ok(messages(await diff(d, c)).includes('layer 1 /etc/app/b.conf: entry only in A (file, 2 bytes)'));
  });

  it('says when the same layer content was only compressed differently', async () => {
    const dir = await tempDir();
    const a = await build(dir, 'a', SPEC('0755'), { compression: 'gzip' });
    const b = await build(dir, 'b', SPEC('0755'), { compression: 'none' });
    const m = messages(await diff(a, b));
    assert.ok(
      m.some((x) => /^layer 1: blob \(same content, compressed differently\) "sha256:[0-9a-f]+" != "sha256:[0-9a-f]+"$/.test(x)),
      m.join('\n'),
    );
    assert.ok(m.includes('layer 1: mediaType "application/vnd.oci.image.layer.v1.tar+gzip" != "application/vnd.oci.image.layer.v1.tar"'));
    assert.ok(m.some((x) => x.startsWith('manifest: annotations["io.lading.build.compressor"] "gzip:')));
    assert.ok(!m.some((x) => x.includes('/usr/bin/app')), 'equal diff_ids: the tars are not compared');
  });

  it('compares indexes by platform, and an index with an image', async () => {
    const dir = await tempDir();
    const multi = (platforms: string) => SPEC('0755').replace('platforms: [linux/amd64]', `platforms: [${platforms}]`);
    const a = await build(dir, 'a', multi('linux/amd64, linux/arm64'));
    const b = await build(dir, 'b', multi('linux/amd64, linux/riscv64'));
    const m = messages(await diff(a, b));
    assert.deepEqual(m, [
      `index: manifest for linux/arm64 only in A (${JSON.stringify((await indexOf(a))[1])})`,
      `index: manifest for linux/riscv64 only in B (${JSON.stringify((await indexOf(b))[1])})`,
    ]);
    const single = await build(dir, 'c', SPEC('0755'));
    assert.deepEqual(messages(await diff(a, single)), ['manifest: kind "index" != "manifest"']);
    // --platform compares one image of each.
    const c = await build(dir, 'd', multi('linux/amd64, linux/arm64'), {}, 'other\n');
    const arm = await diff(a, c, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.ok(arm.differences.length > 0);
    assert.ok(arm.differences.every((d) => d.image === 'linux/arm64'));
    assert.ok(messages(arm).includes('linux/arm64 layer 1 /usr/bin/app: size 4 != 6'), messages(arm).join('\n'));
  });

  it('build --check fails with the first difference when two builds differ', async () => {
    const dir = await tempDir();
    await write(join(dir, 'ctx/app'), 'app\n');
    await writeFile(join(dir, 'ctx/spec.yaml'), SPEC('0755').replace('      - {src: ./conf/, dest: /etc/app/}\n', ''));
    const report = await compareBuilds(join(dir, 'ctx/spec.yaml'), { sourceDateEpoch: 0 }, { sourceDateEpoch: 1 });
    assert.equal(report.reproducible, false);
    assert.notEqual(report.builds[0].digest, report.builds[1].digest);
    assert.throws(
      () => assertReproducible(report, 'spec.yaml'),
      (e: unknown) => {
        assert.ok(isLadingError(e, 'NOT_REPRODUCIBLE'));
        assert.match(
          e.message,
          /^spec\.yaml is not reproducible: two builds from copies of its inputs gave sha256:[0-9a-f]{64} and sha256:[0-9a-f]{64}; first difference: manifest: annotations\["org\.opencontainers\.image\.created"\] "1970-01-01T00:00:00Z" != "1970-01-01T00:00:01Z" \(and \d+ more; run lading diff on the two builds for all\)$/,
        );
        return true;
      },
    );
    const same = await compareBuilds(join(dir, 'ctx/spec.yaml'), {}, {});
    assert.equal(same.reproducible, true);
    assertReproducible(same, 'spec.yaml');
  });

  it('refuses what it cannot read', async () => {
    const dir = await tempDir();
    const r = await lading('diff', `oci:${dir}/missing:v1`, `oci:${dir}/missing:v1`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such directory/);
    const u = await lading('diff', 'oci:x', 'oci:y', '--platform', 'amd64');
    assert.equal(u.code, 2);
    assert.match(u.stderr, /invalid platform "amd64"/);
  });
});

async function indexOf(layout: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  const root = (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!;
  const index = JSON.parse(await readFile(join(layout, 'blobs/sha256', root.digest.slice(7)), 'utf8')) as {
    manifests: { digest: string }[];
  };
  return index.manifests.map((m) => m.digest);
}
