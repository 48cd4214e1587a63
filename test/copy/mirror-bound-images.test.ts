/**
 * `lading mirror` (and `release mirror`) carry the bound images of bootable images, against a real
 * docker-registry holding a bootable image (containers.bootc=1) that declares two bound images, one by
 * tag and one by digest: they land in the target beside it, by digest, marked as its bound images in the
 * plan, the report, the layout's index.json and the mapping/IDMS outputs; `--no-bound-images` leaves them
 * out; a bound image missing at its source fails its declaring image before any of it is written (the
 * target stays as it was and fsck-clean); a re-run moves nothing; a carried layout replays with the marks.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { writeImage } from '../../src/build/image-writer.js';
import { releaseMirror } from '../../src/cli/release-signature-commands.js';
import { BOUND_OF_ANNOTATION, SOURCE_ANNOTATION } from '../../src/copy/mirror-names.js';
import { createSimpleSignature, loadSigningKeyFile } from '../../src/sign/openpgp-sign.js';
import { writeSignature } from '../../src/sign/signature-store.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { declaring, writeBootable } from '../boot/bootable-image.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { lading, ladingJson } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import { newGpg } from '../sign/gpg.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

interface Outcome {
  source: string;
  destination: string;
  digest?: string;
  error?: string;
  boundOf?: string;
  declaredIn?: string;
  bound?: { source: string; image: string; file: string }[];
  result?: { bytes: number; blobs: Record<string, number> };
}
interface MirrorJson {
  images: Outcome[];
  failed: number;
}
interface IndexEntry {
  digest: string;
  annotations?: Record<string, string>;
}

describe('mirror carries bound images', () => {
  let reg: RegistryInstance;
  let client: RegistryClient;
  let work: string;
  let R: string;
  const digests = { app: '', db: '', plain: '', boot: '', broken: '', unlabelled: '', authed: '' };
  let set: string;

  before(async () => {
    reg = await startRegistry();
    R = reg.host;
    client = new RegistryClient({ tlsVerify: false });
    work = await mkdtemp(join(tmpdir(), 'lading-mirror-bound-'));
    const push = (repo: string) => new RegistryStore(client, R, repo, 'push');
    digests.app = (await writeImage(push('apps/app'), { layers: [{ files: { 'srv/app': 'app v1\n' } }] }, ['1'])).digest;
    digests.db = (await writeImage(push('apps/db'), { layers: [{ files: { 'srv/db': 'db v2\n' } }] }, ['2'])).digest;
    digests.plain = (await writeImage(push('apps/plain'), { layers: [{ files: { 'srv/plain': 'plain\n' } }] }, ['1'])).digest;
    digests.boot = (
      await writeBootable(push('os/boot'), declaring({ app: `${R}/apps/app:1`, db: `${R}/apps/db@${digests.db}` }), ['1'])
    ).digest;
    digests.broken = (
      await writeBootable(push('os/broken'), declaring({ app: `${R}/apps/app:1`, missing: `${R}/apps/missing:9` }), ['1'])
    ).digest;
    // AuthFile= naming a file only the machine that runs the image has (nor the image, nor this host).
    const authed = declaring({ app: `${R}/apps/app:1` });
    authed['usr/share/containers/systemd/app.image'] = `[Image]\nImage=${R}/apps/app:1\nAuthFile=/run/lading-test-nowhere/auth.json\n`;
    digests.authed = (await writeBootable(push('os/authed'), authed, ['1'])).digest;
    // The same declarations in an image without the bootc label: bootc would never read them.
    digests.unlabelled = (await writeBootable(push('os/unlabelled'), declaring({ app: `${R}/apps/app:1` }), ['1'], {})).digest;
    set = join(work, 'set.yaml');
    await writeFile(set, `images:\n  - name: ${R}/os/boot:1\n  - name: ${R}/apps/plain:1\n  - name: ${R}/os/unlabelled:1\n`);
  });
  after(async () => {
    await client?.close();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const index = async (dir: string): Promise<IndexEntry[]> => {
    const store = await LayoutStore.open(dir, 'read');
    try {
      return (await store.readIndex()).manifests as IndexEntry[];
    } finally {
      await store.close();
    }
  };
  const mirrorJson = (...args: string[]) => ladingJson<MirrorJson>('mirror', '-o', 'json', '--tls-verify=false', ...args);

  it('puts the bootable image and its bound images in the layout, marked as its bound images; a re-run moves nothing', async () => {
    const out = join(work, 'carry');
    const report = await mirrorJson('-f', set, '--to', `oci:${out}`, '--results', join(work, 'r1'));
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    const by = Object.fromEntries(report.images.map((i) => [i.source, i]));
    assert.deepEqual(Object.keys(by).sort(), [
      `${R}/apps/app:1`,
      `${R}/apps/db@${digests.db}`,
      `${R}/apps/plain:1`,
      `${R}/os/boot:1`,
      `${R}/os/unlabelled:1`,
    ]);
    assert.equal(by[`${R}/apps/app:1`]?.boundOf, `${R}/os/boot:1`);
    assert.equal(by[`${R}/apps/app:1`]?.declaredIn, '/usr/share/containers/systemd/app.image');
    assert.equal(by[`${R}/apps/db@${digests.db}`]?.boundOf, `${R}/os/boot:1`);
    assert.deepEqual(
      by[`${R}/os/boot:1`]?.bound?.map((b) => b.source),
      [`${R}/apps/app:1`, `${R}/apps/db@${digests.db}`],
    );
    assert.equal(by[`${R}/os/unlabelled:1`]?.bound, undefined, 'an image without the bootc label declares nothing bootc reads');

    // By digest, in the layout: the tag resolved at the source, the digest-pinned one untagged.
    const entries = await index(out);
    const named = (name: string) => entries.find((e) => e.annotations?.[REF_NAME] === name);
    assert.equal(named(`${R}/os/boot:1`)?.digest, digests.boot);
    assert.equal(named(`${R}/apps/app:1`)?.digest, digests.app);
    assert.equal(named(`${R}/apps/app:1`)?.annotations?.[BOUND_OF_ANNOTATION], `${R}/os/boot:1`);
    const db = entries.find((e) => e.digest === digests.db);
    assert.equal(db?.annotations?.[SOURCE_ANNOTATION], `${R}/apps/db@${digests.db}`);
    assert.equal(db?.annotations?.[BOUND_OF_ANNOTATION], `${R}/os/boot:1`);
    assert.equal(named(`${R}/os/boot:1`)?.annotations?.[BOUND_OF_ANNOTATION], undefined);
    const fsck = await lading('fsck', `oci:${out}`);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const mapping = await readFile(join(work, 'r1', 'mapping.txt'), 'utf8');
    assert.match(mapping, new RegExp(`^${R}/apps/app:1=oci:${out}:${R}/apps/app:1$`, 'm'));

    const again = await mirrorJson('-f', set, '--to', `oci:${out}`, '--results', join(work, 'r1'));
    assert.equal(again.failed, 0);
    assert.equal(again.images.length, 5);
    for (const i of again.images) {
      assert.equal(i.result?.bytes, 0, `${i.source} moved bytes on a re-run`);
      assert.equal((i.result?.blobs.copied ?? 0) + (i.result?.blobs.linked ?? 0), 0, `${i.source} copied blobs on a re-run`);
    }
  });

  it('the plan lists bound images under their image, naming the file declaring each', async () => {
    const r = await lading(
      'mirror',
      '--dry-run',
      '--tls-verify=false',
      '-f',
      set,
      '--to',
      `oci:${work}/dry`,
      '--results',
      join(work, 'r2'),
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`plan   ${R}/os/boot:1 -> oci:${work}/dry:${R}/os/boot:1  ${digests.boot}`));
    assert.ok(at >= 0, r.stdout);
    assert.match(
      lines[at + 1] ?? '',
      new RegExp(`^  plan   bound image ${R}/apps/app:1 \\(declared in /usr/share/containers/systemd/app.image\\) -> .*  ${digests.app}$`),
    );
    assert.match(lines[at + 2] ?? '', new RegExp(`^  plan   bound image ${R}/apps/db@${digests.db} \\(declared in .*db.image\\)`));
    assert.equal(lines.filter((l) => l.includes(`${R}/apps/app:1`)).length, 1, 'a bound image is listed once, under its image');
    assert.match(r.stdout, /dry run: 5 images mirrored/);
  });

  it("an AuthFile= missing here does not stop a mirror (it names the running host's file), though list refuses it", async () => {
    const out = join(work, 'authed');
    const one = join(work, 'authed.yaml');
    await writeFile(one, `images:\n  - name: ${R}/os/authed:1\n`);
    const report = await mirrorJson('-f', one, '--to', `oci:${out}`, '--results', join(work, 'r-authed'));
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    assert.deepEqual(report.images.map((i) => i.source).sort(), [`${R}/apps/app:1`, `${R}/os/authed:1`]);
    const list = await lading('bound-images', 'list', `docker://${R}/os/authed:1`, '--tls-verify=false');
    assert.equal(list.code, 1, list.stdout);
    assert.match(list.stderr, /AuthFile=\/run\/lading-test-nowhere\/auth\.json is in neither the image/);
  });

  it('--no-bound-images leaves them behind', async () => {
    const out = join(work, 'without');
    const report = await mirrorJson('--no-bound-images', '-f', set, '--to', `oci:${out}`, '--results', join(work, 'r3'));
    assert.equal(report.failed, 0);
    assert.deepEqual(report.images.map((i) => i.source).sort(), [`${R}/apps/plain:1`, `${R}/os/boot:1`, `${R}/os/unlabelled:1`]);
    const held = new Set((await index(out)).map((e) => e.digest));
    assert.ok(held.has(digests.boot));
    assert.ok(!held.has(digests.app) && !held.has(digests.db));
  });

  it('a bound image missing at its source fails its image with one line naming it and its file; nothing of it is written', async () => {
    const broken = join(work, 'broken.yaml');
    await writeFile(broken, `images:\n  - name: ${R}/os/broken:1\n  - name: ${R}/apps/plain:1\n`);
    // An existing target stays exactly as it was.
    const existing = join(work, 'existing');
    const store = await LayoutStore.open(existing, 'write');
    await writeImage(store, { layers: [{ files: { keep: 'me\n' } }] }, ['keep']);
    await store.close();
    const before = await snapshot(existing);
    const r = await lading('mirror', '--tls-verify=false', '-f', broken, '--to', `oci:${existing}`, '--results', join(work, 'r4'));
    assert.equal(r.code, 1);
    const failure = r.stdout.split('\n').filter((l) => l.startsWith('  failed: '));
    assert.equal(failure.length, 1, r.stdout);
    assert.match(
      failure[0] ?? '',
      new RegExp(
        `^  failed: ${R}/os/broken:1: bound image ${R}/apps/missing:9 \\(declared in /usr/share/containers/systemd/missing.image\\): .*(not found|unknown)`,
        'i',
      ),
    );
    assert.equal(await snapshot(existing), before, 'the target is unchanged');

    // With --keep-going the others land; the broken image and its bound images do not.
    const kg = join(work, 'kg');
    const k = await lading(
      'mirror',
      '--keep-going',
      '--tls-verify=false',
      '-f',
      broken,
      '--to',
      `oci:${kg}`,
      '--results',
      join(work, 'r5'),
    );
    assert.equal(k.code, 1);
    assert.match(k.stdout, /1 images mirrored to .*, 1 failed/);
    const held = new Set((await index(kg)).map((e) => e.digest));
    assert.ok(held.has(digests.plain));
    assert.ok(!held.has(digests.broken), 'the declaring image is not there');
    assert.ok(!held.has(digests.app), 'nor the bound image it does have');
    const fsck = await lading('fsck', `oci:${kg}`);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  });

  it('into a registry: the IDMS and mapping name the bound repositories; a carried layout replays with the marks', async () => {
    const results = join(work, 'r6');
    const report = await mirrorJson('-f', set, '--to', `docker://${R}/site`, '--results', results);
    assert.equal(report.failed, 0, JSON.stringify(report.images.map((i) => i.error)));
    const idms = parseYaml(await readFile(join(results, 'imagedigestmirrorset.yaml'), 'utf8')) as {
      spec: { imageDigestMirrors: { source: string; mirrors: string[] }[] };
    };
    const mirrors = Object.fromEntries(idms.spec.imageDigestMirrors.map((m) => [m.source, m.mirrors]));
    for (const repo of ['apps/app', 'apps/db', 'os/boot']) assert.deepEqual(mirrors[`${R}/${repo}`], [`${R}/site/${repo}`]);
    const mapping = await readFile(join(results, 'mapping.txt'), 'utf8');
    assert.match(mapping, new RegExp(`^${R}/apps/db@${digests.db}=${R}/site/apps/db@${digests.db}$`, 'm'));
    const site = new RegistryStore(client, R, 'site/apps/app', 'pull');
    assert.equal((await site.resolve('1')).digest, digests.app);

    // Replaying the layout of the first test: bound images stay marked as such.
    const replay = await mirrorJson('--from', `oci:${work}/carry`, '--to', `docker://${R}/replayed`, '--results', join(work, 'r7'));
    assert.equal(replay.failed, 0, JSON.stringify(replay.images.map((i) => i.error)));
    assert.equal(replay.images.find((i) => i.source === `${R}/apps/app:1`)?.boundOf, `${R}/os/boot:1`);
    assert.equal((await new RegistryStore(client, R, 'replayed/apps/db', 'pull').resolve(digests.db)).digest, digests.db);
  });

  it('release mirror carries the bound images of a bootable component', async () => {
    const dir = join(work, 'release');
    await mkdir(dir);
    const gpgHome = join(dir, 'gnupg');
    await mkdir(gpgHome, { mode: 0o700 });
    const gpg = await newGpg(gpgHome);
    try {
      const fpr = await gpg.genKey('Release <release@example.com>');
      const keyring = await gpg.exportPublic(fpr);
      const imageReferences = JSON.stringify({
        kind: 'ImageStream',
        apiVersion: 'image.openshift.io/v1',
        spec: { tags: [{ name: 'os', from: { kind: 'DockerImage', name: `${R}/os/boot@${digests.boot}` } }] },
      });
      const rel = await writeImage(
        new RegistryStore(client, R, 'ocp/release', 'push'),
        { layers: [{ files: { 'release-manifests/image-references': imageReferences, 'release-manifests/release-metadata': '{}' } }] },
        ['4.0'],
      );
      const key = await loadSigningKeyFile(await gpg.exportSecret(fpr));
      const sigs = join(dir, 'sigs');
      const signature = await createSimpleSignature({ digest: rel.digest, identity: `${R}/ocp/release:4.0`, key });
      await writeSignature({ layout: 'openshift', base: sigs }, { digest: rel.digest }, signature);

      const out = join(dir, 'mirror');
      const report = await releaseMirror(`docker://${R}/ocp/release:4.0`, {
        to: `oci:${out}`,
        store: [sigs],
        keyring: [keyring],
        images: true,
        tlsVerify: 'false',
      });
      assert.deepEqual(report.images === 'skipped' ? undefined : [report.images.copied, report.images.boundImages], [4, 2]);
      assert.match(report.lines.join('\n'), /Mirrored 4 image\(s\) to .* \(2 of them bound images of bootable components\)/);
      const held = new Set((await index(out)).map((e) => e.digest));
      for (const d of [rel.digest, digests.boot, digests.app, digests.db]) assert.ok(held.has(d), `${d} is in the mirror`);

      const without = join(dir, 'without');
      await releaseMirror(`docker://${R}/ocp/release:4.0`, {
        to: `oci:${without}`,
        store: [sigs],
        keyring: [keyring],
        images: true,
        boundImages: false,
        tlsVerify: 'false',
      });
      const held2 = new Set((await index(without)).map((e) => e.digest));
      assert.ok(held2.has(digests.boot) && !held2.has(digests.app));
    } finally {
      await gpg.stopAgent();
    }
  });
});
