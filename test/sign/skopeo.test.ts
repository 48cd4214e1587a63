/**
 * skopeo (containers/image, gpgme) as the peer for simple signatures and the lookaside layout:
 * - `skopeo standalone-sign` signatures verify with `lading verify`, and `lading sign` signatures with
 *   `skopeo standalone-verify`;
 * - `skopeo copy --sign-by` into a registry writes a lookaside store that `lading verify --lookaside`
 *   reads (by digest: no registry contact needed), and the lookaside directory `lading sign --lookaside`
 *   writes satisfies `skopeo copy` under a signedBy policy (and fails it under another key, so skopeo
 *   really checked).
 */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type RegistryInstance, skopeoFlags, startRegistry } from '../helpers/registry.js';
import { lading, ladingOk } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { type Gpg, exec, newGpg } from './gpg.js';

async function image(dir: string, content: string): Promise<{ layout: string; digest: string; manifest: string }> {
  const layout = join(dir, 'layout');
  const store = await LayoutStore.open(layout, 'write');
  const desc = await writeImage(store, { layers: [{ files: { 'etc/motd': content } }] }, ['v1']);
  const bytes = await store.fetchManifest(desc);
  await store.close();
  const manifest = join(dir, 'manifest.json');
  await writeFile(manifest, bytes);
  return { layout, digest: desc.digest, manifest };
}

function skopeo(gpg: Gpg, args: string[]) {
  return exec('skopeo', args, { ...process.env, GNUPGHOME: gpg.home });
}

describe('simple signatures with skopeo as the peer', () => {
  it('skopeo standalone-sign -> lading verify; lading sign -> skopeo standalone-verify', async () => {
    const dir = await tempDir();
    const gpg = await newGpg();
    const fpr = await gpg.genKey('Skopeo Peer <peer@example.com>');
    const keyring = await gpg.exportPublic(fpr);
    const { digest, manifest } = await image(dir, 'standalone\n');
    const ref = 'registry.example.com/team/app:1.0';

    const theirs = join(dir, 'skopeo.sig');
    const s = await skopeo(gpg, ['standalone-sign', manifest, ref, fpr, '--output', theirs]);
    assert.equal(s.code, 0, s.stderr);
    const out = await ladingOk(
      'verify',
      `registry.example.com/team/app@${digest}`,
      '--keyring',
      keyring,
      '--signature',
      theirs,
      '-o',
      'json',
    );
    const report = JSON.parse(out) as { signatures: { payload: { identity: string } }[] };
    assert.equal(report.signatures[0]?.payload.identity, ref);
    // a tag reference checks the identity exactly: another tag is refused
    const other = await lading(
      'verify',
      `sha256:${digest.slice(7)}`,
      '--identity',
      'registry.example.com/team/app:2.0',
      '--keyring',
      keyring,
      '--signature',
      theirs,
    );
    assert.equal(other.code, 1);
    assert.match(other.stderr, /the signature is for registry.example.com\/team\/app:1.0, not registry.example.com\/team\/app:2.0/);

    const secret = await gpg.exportSecret(fpr);
    const ours = join(dir, 'lading.sig');
    await ladingOk('sign', digest, '--identity', ref, '--key', secret, '--sign-to', ours);
    const v = await skopeo(gpg, ['standalone-verify', manifest, ref, fpr, ours]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(`Signature verified.*${digest}`));
    // skopeo checks the identity too: our signature is not one for another reference
    const wrong = await skopeo(gpg, ['standalone-verify', manifest, 'registry.example.com/team/app:2.0', fpr, ours]);
    assert.notEqual(wrong.code, 0);
  });

  describe('the lookaside layout, with a registry', () => {
    let registry: RegistryInstance;
    before(async () => {
      registry = await startRegistry();
    });
    after(() => registry.stop());

    it('skopeo copy --sign-by writes a lookaside store that lading verify --lookaside reads', async () => {
      const dir = await tempDir();
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Copier <copier@example.com>');
      const { layout, digest } = await image(dir, 'lookaside from skopeo\n');
      const lookaside = join(dir, 'lookaside');
      const regd = join(dir, 'registries.d');
      await exec('mkdir', ['-p', regd], process.env);
      await writeFile(join(regd, 'default.yaml'), `default-docker:\n  lookaside: file://${lookaside}\n`);
      const dest = `${registry.host}/ns/app:1`;
      const c = await skopeo(gpg, [
        '--registries.d',
        regd,
        'copy',
        '--preserve-digests',
        ...skopeoFlags(registry, 'dest'),
        '--sign-by',
        fpr,
        `oci:${layout}:v1`,
        `docker://${dest}`,
      ]);
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(await readdir(join(lookaside, 'ns')), [`app@sha256=${digest.slice(7)}`]);
      const keyring = await gpg.exportPublic(fpr);
      // by digest, from a file:// store: the registry is not needed (stop it first? it is shared; the URL below is unreachable instead)
      const out = await ladingOk(
        'verify',
        `unreachable.invalid:5000/ns/app@${digest}`,
        '--identity',
        dest,
        '--keyring',
        keyring,
        '--lookaside',
        `file://${lookaside}`,
      );
      assert.match(out, /1 signature\(s\) accepted/);
      // the same repository on the real registry, by digest
      await ladingOk('verify', `${registry.host}/ns/app@${digest}`, '--keyring', keyring, '--lookaside', lookaside);
    });

    it('lading sign --lookaside satisfies skopeo copy under a signedBy policy; another key does not', async () => {
      const dir = await tempDir();
      const gpg = await newGpg();
      const fpr = await gpg.genKey('Lading Signer <signer@example.com>');
      const stranger = await gpg.genKey('Stranger <stranger@example.com>');
      const { layout, digest } = await image(dir, 'lookaside from lading\n');
      const ref = `${registry.host}/signed/app:1`;
      const push = await exec(
        'skopeo',
        ['copy', '--preserve-digests', ...skopeoFlags(registry, 'dest'), `oci:${layout}:v1`, `docker://${ref}`],
        process.env,
      );
      assert.equal(push.code, 0, push.stderr);
      const lookaside = join(dir, 'lookaside');
      await ladingOk(
        'sign',
        `docker://${registry.host}/signed/app@${digest}`,
        '--identity',
        ref,
        '--key',
        await gpg.exportSecret(fpr),
        '--lookaside',
        lookaside,
      );
      assert.deepEqual(await readdir(join(lookaside, 'signed', `app@sha256=${digest.slice(7)}`)), ['signature-1']);

      const regd = join(dir, 'registries.d');
      await exec('mkdir', ['-p', regd], process.env);
      await writeFile(join(regd, 'default.yaml'), `default-docker:\n  lookaside: file://${lookaside}\n`);
      const policyFor = async (key: string, name: string) => {
        const path = join(dir, name);
        await writeFile(
          path,
          JSON.stringify({
            default: [{ type: 'reject' }],
            transports: { docker: { [registry.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: key }] } },
          }),
        );
        return path;
      };
      const good = await policyFor(await gpg.exportPublic(fpr), 'good.json');
      const bad = await policyFor(await gpg.exportPublic(stranger), 'bad.json');
      const pull = (policy: string) =>
        exec(
          'skopeo',
          [
            '--policy',
            policy,
            '--registries.d',
            regd,
            'copy',
            '--remove-signatures',
            ...skopeoFlags(registry, 'src'),
            `docker://${ref}`,
            `oci:${join(dir, `pulled-${Math.random()}`)}:v1`,
          ],
          process.env,
        );
      const ok = await pull(good);
      assert.equal(ok.code, 0, ok.stderr);
      const refused = await pull(bad);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /signature|Source image rejected/i);
      // by tag: the digest comes from the registry, and the identity must be that exact tag
      assert.match(
        await ladingOk('verify', `docker://${ref}`, '--keyring', await gpg.exportPublic(fpr), '--lookaside', lookaside),
        /1 signature\(s\) accepted/,
      );
      const push2 = await exec(
        'skopeo',
        ['copy', '--preserve-digests', ...skopeoFlags(registry, 'dest'), `oci:${layout}:v1`, `docker://${registry.host}/signed/app:2`],
        process.env,
      );
      assert.equal(push2.code, 0, push2.stderr);
      const otherTag = await lading(
        'verify',
        `docker://${registry.host}/signed/app:2`,
        '--keyring',
        await gpg.exportPublic(fpr),
        '--lookaside',
        lookaside,
      );
      assert.equal(otherTag.code, 1);
      assert.match(otherTag.stderr, /the signature is for .*\/signed\/app:1, not .*\/signed\/app:2/);
      // Lading reads the same policy file the same way
      await ladingOk(
        'verify',
        `docker://${registry.host}/signed/app@${digest}`,
        '--identity',
        ref,
        '--policy',
        good,
        '--lookaside',
        lookaside,
      );
      const r = await lading(
        'verify',
        `docker://${registry.host}/signed/app@${digest}`,
        '--identity',
        ref,
        '--policy',
        bad,
        '--lookaside',
        lookaside,
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, /policy rejects .* signedBy: signature .*signature-1: it was signed by key/);
      assert.ok((await readFile(good, 'utf8')).includes('signedBy'));
    });
  });
});
