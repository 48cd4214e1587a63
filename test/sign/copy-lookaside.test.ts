/**
 * `lading copy` and `lading mirror` carry signatures, against a real docker-registry: the cosign `.sig`
 * tag travels with the image (the copy engine's referrers), and with --src-lookaside/--dest-lookaside the
 * simple signatures of the image and of each platform's image it lists arrive in the target lookaside
 * under the repository the image lands in, where `lading verify --lookaside` and `skopeo
 * standalone-verify` accept them. Only the manifests that landed get theirs; a re-run writes nothing new;
 * a carried mirror replays its signatures. Bad input: a non-signature in the source store, half the flag
 * pair, no repository to file under, a repository path with `..`: a clear error and nothing written.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage, writeIndex } from '../../src/build/image-writer.js';
import { isLadingError } from '../../src/errors.js';
import { placeLookasideSignatures, gatherLookasideSignatures } from '../../src/sign/lookaside-copy.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { RegistryClient } from '../../src/store/registry/client.js';
import { RegistryStore } from '../../src/store/registry/registry-store.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { CLI, lading, ladingJson, ladingOk, run } from '../helpers/run.js';
import { snapshot } from '../helpers/tree.js';
import { type Gpg, exec, newGpg } from './gpg.js';

const hex = (digest: string) => digest.slice('sha256:'.length);

interface CopyJson {
  attached: number;
  lookaside?: { found: number; copied: number; written: string[] };
}

describe('copy and mirror carry signatures', () => {
  let reg: RegistryInstance;
  let client: RegistryClient;
  let work: string;
  let gpg: Gpg;
  let R: string;
  let keyring: string;
  let fpr: string;
  let srcSigs: string;
  let index: string;
  let amd: string;
  let arm: string;
  let bad: string;

  before(async () => {
    reg = await startRegistry();
    R = reg.host;
    client = new RegistryClient({ tlsVerify: false });
    work = await mkdtemp(join(tmpdir(), 'lading-copy-sigs-'));
    const home = join(work, 'gnupg');
    await mkdir(home, { mode: 0o700 });
    gpg = await newGpg(home);
    fpr = await gpg.genKey('Signer <signer@example.com>');
    keyring = await gpg.exportPublic(fpr);
    const secret = await gpg.exportSecret(fpr);

    const app = new RegistryStore(client, R, 'org/app', 'push');
    const children = [];
    for (const architecture of ['amd64', 'arm64'])
      children.push(
        await writeImage(app, { platform: { os: 'linux', architecture }, layers: [{ files: { [`bin/${architecture}`]: 'x\n' } }] }),
      );
    [amd, arm] = children.map((c) => c.digest as string) as [string, string];
    index = (await writeIndex(app, children, ['1'])).digest;
    bad = (await writeImage(new RegistryStore(client, R, 'org/bad', 'push'), { layers: [{ files: { bad: 'bad\n' } }] }, ['1'])).digest;

    // Simple signatures of the index and of the amd64 image (none of arm64), in a lookaside directory.
    srcSigs = join(work, 'src-sigs');
    for (const d of [index, amd])
      await ladingOk('sign', `${R}/org/app@${d}`, '--identity', `${R}/org/app:1`, '--key', secret, '--lookaside', srcSigs);
    await mkdir(join(srcSigs, 'org', `bad@sha256=${hex(bad)}`), { recursive: true });
    await writeFile(join(srcSigs, 'org', `bad@sha256=${hex(bad)}`, 'signature-1'), '<html>not a signature</html>\n');

    // A cosign signature in the registry: the sha256-<index>.sig tag.
    const env = { ...process.env, COSIGN_PASSWORD: 'pw' };
    const keygen = await run(process.execPath, [CLI, 'keygen', '--cosign', '--output-prefix', join(work, 'cosign')], { env });
    assert.equal(keygen.code, 0, keygen.stderr);
    const signed = await run(
      process.execPath,
      [CLI, 'sign', `docker://${R}/org/app:1`, '--cosign-key', join(work, 'cosign.key'), '--tls-verify=false'],
      { env },
    );
    assert.equal(signed.code, 0, signed.stderr);
  });
  after(async () => {
    await gpg?.stopAgent();
    await client?.close();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const copy = (...args: string[]) => ladingJson<CopyJson>('copy', '-q', '--tls-verify=false', '-o', 'json', ...args);
  const sigDir = (base: string, repo: string, digest: string) =>
    join(base, ...repo.split('/').slice(0, -1), `${repo.split('/').at(-1)}@sha256=${hex(digest)}`);

  it('registry to registry: the .sig tag and the lookaside signatures of the index and each platform land under the new repository', async () => {
    const dst = join(work, 'dst-sigs');
    const copyWithSigs = () =>
      copy('--all', `docker://${R}/org/app:1`, `docker://${R}/mirror/app:1`, '--src-lookaside', srcSigs, '--dest-lookaside', dst);
    const r = await copyWithSigs();
    assert.ok(r.attached >= 1, 'the cosign signature came along');
    assert.ok((await new RegistryStore(client, R, 'mirror/app', 'pull').tags()).includes(`sha256-${hex(index)}.sig`));
    assert.deepEqual([r.lookaside?.found, r.lookaside?.copied], [2, 2]);
    for (const d of [index, amd]) {
      assert.deepEqual(await readdir(sigDir(dst, 'mirror/app', d)), ['signature-1']);
      assert.deepEqual(
        await readFile(join(sigDir(dst, 'mirror/app', d), 'signature-1')),
        await readFile(join(sigDir(srcSigs, 'org/app', d), 'signature-1')),
      );
    }
    assert.ok(!existsSync(sigDir(dst, 'mirror/app', arm)), 'arm64 had no signature to carry');
    // The signature names the original reference; the mirror is another repository, so check the key and digest only.
    const v = await lading(
      'verify',
      `docker://${R}/mirror/app@${index}`,
      '--keyring',
      keyring,
      '--lookaside',
      dst,
      '--identity-check',
      'none',
    );
    assert.equal(v.code, 0, v.stderr);

    // A re-run finds them there and writes nothing.
    const again = await copyWithSigs();
    assert.deepEqual([again.lookaside?.found, again.lookaside?.copied], [2, 0]);
    assert.deepEqual(await readdir(sigDir(dst, 'mirror/app', index)), ['signature-1']);
  });

  it('one platform into a layout: only its signature goes; lading verify and skopeo standalone-verify accept it there', async () => {
    const out = join(work, 'amd-layout');
    const dst = join(work, 'amd-sigs');
    const ref = `oci:${out}:${R}/org/app:1`;
    const r = await copy(`docker://${R}/org/app:1`, ref, '--src-lookaside', srcSigs, '--dest-lookaside', dst, '--platform', 'linux/amd64');
    assert.deepEqual([r.lookaside?.found, r.lookaside?.copied], [1, 1]);
    assert.deepEqual(
      await readdir(join(dst, 'org')),
      [`app@sha256=${hex(amd)}`],
      'the index did not land, so its signature did not either',
    );
    const v = await lading('verify', ref, '--keyring', keyring, '--lookaside', dst);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(amd));

    const manifest = join(work, 'amd-manifest.json');
    await writeFile(manifest, await readFile(join(out, 'blobs', 'sha256', hex(amd))));
    const signature = join(sigDir(dst, 'org/app', amd), 'signature-1');
    const s = await exec('skopeo', ['standalone-verify', manifest, `${R}/org/app:1`, fpr, signature], {
      ...process.env,
      GNUPGHOME: gpg.home,
    });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, new RegExp(`Signature verified.*${amd}`));
  });

  it('mirror carries them into a carried layout, and the replay into the site registry', async () => {
    const set = join(work, 'set.yaml');
    await writeFile(set, `images:\n  - name: ${R}/org/app:1\n`);
    const carry = join(work, 'carry');
    const carrySigs = join(work, 'carry-sigs');
    const m = await ladingJson<{ failed: number; lookaside: { copied: number } }>(
      'mirror',
      '-o',
      'json',
      '--tls-verify=false',
      '-f',
      set,
      '--to',
      `oci:${carry}`,
      '--results',
      work,
      '--src-lookaside',
      srcSigs,
      '--dest-lookaside',
      carrySigs,
    );
    assert.equal(m.failed, 0);
    assert.equal(m.lookaside.copied, 2);
    assert.deepEqual(await readdir(sigDir(carrySigs, 'org/app', index)), ['signature-1']);

    const siteSigs = join(work, 'site-sigs');
    const text = await ladingOk(
      'mirror',
      '--tls-verify=false',
      '--from',
      `oci:${carry}`,
      '--to',
      `docker://${R}/site`,
      '--results',
      work,
      '--src-lookaside',
      carrySigs,
      '--dest-lookaside',
      siteSigs,
    );
    assert.match(text, new RegExp(`lookaside: 2 of 2 signature\\(s\\) carried to ${siteSigs}`));
    assert.deepEqual(await readdir(sigDir(siteSigs, 'site/org/app', amd)), ['signature-1']);
    const v = await lading(
      'verify',
      `docker://${R}/site/org/app@${index}`,
      '--keyring',
      keyring,
      '--lookaside',
      siteSigs,
      '--identity-check',
      'none',
    );
    assert.equal(v.code, 0, v.stderr);
  });

  it('a non-signature in the source store: one line naming it, and neither the image nor any signature is written', async () => {
    const out = join(work, 'bad-layout');
    const dst = join(work, 'bad-sigs');
    const r = await lading(
      'copy',
      '-q',
      '--tls-verify=false',
      `docker://${R}/org/bad:1`,
      `oci:${out}:${R}/org/bad:1`,
      '--src-lookaside',
      srcSigs,
      '--dest-lookaside',
      dst,
    );
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', new RegExp(`not carrying signatures of org/bad@${bad}: signature .*signature-1: `));
    assert.ok(!existsSync(out) && !existsSync(dst));

    // The same through mirror: the image fails before any of it is copied.
    const set = join(work, 'bad.yaml');
    await writeFile(set, `images:\n  - name: ${R}/org/bad:1\n  - name: ${R}/org/app:1\n`);
    const existing = join(work, 'existing');
    const store = await LayoutStore.open(existing, 'write');
    await writeImage(store, { layers: [{ files: { keep: 'me\n' } }] }, ['keep']);
    await store.close();
    const before = await snapshot(existing);
    const m = await lading(
      'mirror',
      '--tls-verify=false',
      '-f',
      set,
      '--to',
      `oci:${existing}`,
      '--results',
      work,
      '--src-lookaside',
      srcSigs,
      '--dest-lookaside',
      dst,
    );
    assert.equal(m.code, 1);
    assert.match(m.stdout, new RegExp(`failed: ${R}/org/bad:1: not carrying signatures of org/bad@${bad}`));
    assert.equal(await snapshot(existing), before);
    assert.ok(!existsSync(dst));
  });

  it('half the flag pair, or no repository to file under: a usage error before anything is read', async () => {
    const half = await lading('copy', `docker://${R}/org/app:1`, `oci:${work}/half`, '--src-lookaside', srcSigs);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /--src-lookaside and --dest-lookaside go together/);
    const m = await lading('mirror', '-f', join(work, 'set.yaml'), '--to', `oci:${work}/half`, '--dest-lookaside', srcSigs);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /--src-lookaside and --dest-lookaside go together/);

    const layout = join(work, 'plain');
    const s = await LayoutStore.open(layout, 'write');
    await writeImage(s, { layers: [{ files: { a: 'a\n' } }] }, ['v1']);
    await s.close();
    const none = await lading(
      'copy',
      `oci:${layout}:v1`,
      `oci:${work}/plain2:v1`,
      '--src-lookaside',
      srcSigs,
      '--dest-lookaside',
      join(work, 'x'),
    );
    assert.equal(none.code, 2);
    assert.match(none.stderr, /neither .* nor .* names one: name a layout image like a registry image/);
    assert.ok(!existsSync(join(work, 'plain2')) && !existsSync(join(work, 'x')));
  });

  it('library: a repository path with ".." is refused, and nothing is written', async () => {
    const store = await LayoutStore.open(join(work, 'amd-layout'), 'read');
    const descriptor = await store.resolve(`${R}/org/app:1`);
    const refuse = (e: unknown) => isLadingError(e) && e.code === 'UNSAFE_PATH' && /"\.\."/.test(e.message);
    await assert.rejects(gatherLookasideSignatures({ from: srcSigs, repo: 'org/../../etc', store, descriptor }), refuse);
    const gathered = await gatherLookasideSignatures({ from: srcSigs, repo: 'org/app', store, descriptor });
    await store.close();
    const dst = join(work, 'dotdot');
    await assert.rejects(placeLookasideSignatures(gathered, { to: dst, toRepo: '../outside' }), refuse);
    assert.ok(!existsSync(dst) && !existsSync(join(work, 'outside')));
  });
});
