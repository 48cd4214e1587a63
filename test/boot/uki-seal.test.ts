/**
 * Sealing a UKI into an image and checking the UKIs an image holds, as library calls: real UKIs (objcopy
 * and the systemd-boot stub) naming the right digest are sealed and pass `checkBoot`; a wrong digest is
 * refused before anything is written; malformed UKIs and images without one are errors.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkBoot } from '../../src/boot/check.js';
import { prepareSeal, writeSeal } from '../../src/boot/seal.js';
import { imageComposefs, verityOf } from '../../src/composefs/image-digest.js';
import { isLadingError } from '../../src/errors.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, bytes, tree, withLayout, writeImage } from '../composefs/image-helpers.js';
import { makeUki } from './uki-helpers.js';

const digestOfImage = (layout: string, tag: string, algorithm: 'sha256' | 'sha512', bootable: boolean, formatVersion: 1 | 2 = 1) =>
  withLayout(layout, tag, async (store, desc) => (await imageComposefs(store, desc, { algorithm, formatVersion, bootable })).digest);

const check = (layout: string, tag: string) => withLayout(layout, tag, (store, desc) => checkBoot(store, desc));

async function seal(layout: string, tag: string, uki: string, target: string, targetTag: string) {
  return withLayout(layout, tag, async (src, desc) => {
    const plan = await prepareSeal(src, desc, { uki });
    const dst = await LayoutStore.open(target, 'write');
    const written = await writeSeal(src, dst, plan, { tags: [targetTag], compression: 'gzip' });
    await dst.close();
    return { plan, written };
  });
}

const OS = { ...BASE, 'usr/bin/tool': bytes(5000, 1), 'usr/lib/os-release': 'ID=test\n', 'boot/vmlinuz': bytes(3000, 2) };

describe('boot seal and check', () => {
  it('seals a UKI naming the bootable digest; the sealed image passes check and records the digests', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree(OS)]);
    const bootable = await digestOfImage(layout, 'os', 'sha512', true);
    const uki = await makeUki(dir, '6.12.efi', `root=composefs composefs.digest=v1-sha512-12:${bootable} rw`);
    const sealed = join(dir, 'sealed');
    const { plan, written } = await seal(layout, 'os', uki, sealed, 'v1');
    assert.equal(plan.path, '/boot/EFI/Linux/6.12.efi');
    assert.deepEqual(plan.otherUkis, []);
    assert.deepEqual(
      plan.kargs.map((k) => [k.ok, k.expected]),
      [[true, bootable]],
    );

    // The bootable digest is the same with the UKI in /boot; check passes on the sealed image.
    assert.equal(await digestOfImage(sealed, 'v1', 'sha512', true), bootable);
    const result = await check(sealed, 'v1');
    assert.equal(result.ok, true);
    assert.equal(result.manifest.digest, written.descriptor.digest);
    assert.deepEqual(
      result.ukis.map((u) => [u.path, u.kargs[0]!.digest]),
      [['/boot/EFI/Linux/6.12.efi', bootable]],
    );

    // The manifest annotations (composefs OCI sealing spec, inline mode) name the sealed image's digests.
    const manifest = JSON.parse(await readFile(join(sealed, 'blobs', 'sha256', written.descriptor.digest.slice(7)), 'utf8')) as {
      annotations: Record<string, string>;
      config: { digest: string; annotations: Record<string, string> };
      layers: { mediaType: string }[];
    };
    assert.deepEqual(manifest.annotations, {
      'composefs.merged.bootable.erofs.v1.fsverity-sha512-12': bootable,
      'composefs.merged.erofs.v1.fsverity-sha512-12': await digestOfImage(sealed, 'v1', 'sha512', false),
    });
    const config = await readFile(join(sealed, 'blobs', 'sha256', manifest.config.digest.slice(7)));
    assert.deepEqual(manifest.config.annotations, { 'composefs.config.fsverity-sha512-12': verityOf(config, 'sha512') });
    assert.equal(manifest.layers.length, 2);
    const history = (JSON.parse(config.toString()) as { history: { created_by: string; comment?: string }[] }).history;
    assert.equal(history.at(-1)!.created_by, 'lading boot seal');

    // Sealing is reproducible: the same inputs give the same image.
    const again = await seal(layout, 'os', uki, join(dir, 'again'), 'v1');
    assert.equal(again.written.descriptor.digest, written.descriptor.digest);
  });

  it('refuses a UKI naming another digest, before anything is written; a v2 argument is checked against format 2', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree(OS)]);
    const bootable = await digestOfImage(layout, 'os', 'sha512', true);
    const plain = await digestOfImage(layout, 'os', 'sha512', false);
    const uki = await makeUki(dir, 'wrong.efi', `composefs.digest=v1-sha512-12:${plain}`);
    await assert.rejects(
      withLayout(layout, 'os', (src, desc) => prepareSeal(src, desc, { uki })),
      (e: unknown) =>
        isLadingError(e, 'DIGEST_MISMATCH') &&
        e.message.includes(plain) &&
        e.message.includes(bootable) &&
        /nothing was written/.test(e.message),
    );
    // composefs-rs's legacy format 2: the V1 digest under a v2 argument is refused, the V2 one sealed.
    const bootableV2 = await digestOfImage(layout, 'os', 'sha512', true, 2);
    assert.notEqual(bootableV2, bootable);
    const v2wrong = await makeUki(dir, 'v2wrong.efi', `composefs.digest=v2-sha512-12:${bootable}`);
    await assert.rejects(
      withLayout(layout, 'os', (src, desc) => prepareSeal(src, desc, { uki: v2wrong })),
      (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH') && e.message.includes(`v2-sha512-12:${bootableV2}`),
    );
    const v2 = await makeUki(dir, 'v2.efi', `composefs.digest=v2-sha512-12:${bootableV2}`);
    const { plan } = await seal(layout, 'os', v2, join(dir, 'sealed-v2'), 'v2');
    assert.deepEqual(
      plan.kargs.map((k) => [k.version, k.ok]),
      [[2, true]],
    );
    const result = await check(join(dir, 'sealed-v2'), 'v2');
    assert.equal(result.ok, true);
  });

  it('checks legacy composefs= and SHA-256 arguments, and names both digests on a mismatch', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree(OS)]);
    const d512 = await digestOfImage(layout, 'os', 'sha512', true);
    const d256 = await digestOfImage(layout, 'os', 'sha256', true);
    const legacy = await readFile(await makeUki(dir, 'legacy.efi', `composefs=${d512}`));
    const s256 = await readFile(await makeUki(dir, 's256.efi', `composefs.digest=?v1-sha256-12:${d256}`));
    await writeImage(layout, 'good', [tree(OS), tree({ 'boot/EFI/Linux/legacy.efi': legacy, 'boot/EFI/Linux/s256.efi': s256 })]);
    const good = await check(layout, 'good');
    assert.deepEqual(
      good.ukis.map((u) => [u.path, u.kargs[0]!.algorithm, u.kargs[0]!.legacy, u.kargs[0]!.insecure, u.kargs[0]!.ok]),
      [
        ['/boot/EFI/Linux/legacy.efi', 'sha512', true, false, true],
        ['/boot/EFI/Linux/s256.efi', 'sha256', false, true, true],
      ],
    );

    // Sealing one more: the UKIs already there are reported.
    const third = await makeUki(dir, 'third.efi', `composefs.digest=v1-sha512-12:${d512}`);
    const sealed = await seal(layout, 'good', third, join(dir, 'sealed'), 'x');
    assert.deepEqual(sealed.plan.otherUkis, ['/boot/EFI/Linux/legacy.efi', '/boot/EFI/Linux/s256.efi']);
    assert.equal((await check(join(dir, 'sealed'), 'x')).ukis.length, 3);

    const wrong = 'ee'.repeat(64);
    const bad = await readFile(await makeUki(dir, 'bad.efi', `composefs.digest=v1-sha512-12:${wrong}`));
    await writeImage(layout, 'bad', [tree(OS), tree({ 'boot/EFI/Linux/bad.efi': bad })]);
    await assert.rejects(check(layout, 'bad'), (e: unknown) => {
      return (
        isLadingError(e, 'DIGEST_MISMATCH') &&
        e.message.includes(`/boot/EFI/Linux/bad.efi`) &&
        e.message.includes(wrong) &&
        e.message.includes(d512)
      );
    });
  });

  it('is an error without a UKI, or with a malformed one; a malformed file replaced by a later layer is not', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'none', [tree({ ...OS, 'boot/EFI/Linux/readme.txt': 'not a UKI' })]);
    await assert.rejects(
      check(layout, 'none'),
      (e: unknown) => isLadingError(e, 'NOT_FOUND') && /holds no UKI \(\/boot\/EFI\/Linux\/\*\.efi\)/.test(e.message),
    );

    const d512 = await digestOfImage(layout, 'none', 'sha512', true);
    const good = await readFile(await makeUki(dir, 'good.efi', `composefs.digest=v1-sha512-12:${d512}`));
    const truncated = good.subarray(0, 300);
    await writeImage(layout, 'broken', [tree({ ...OS, 'boot/EFI/Linux/x.efi': truncated })]);
    await assert.rejects(
      check(layout, 'broken'),
      (e: unknown) => isLadingError(e, 'INVALID_UKI') && /\/boot\/EFI\/Linux\/x\.efi is not a valid PE\/UKI file/.test(e.message),
    );
    await writeImage(layout, 'fixed', [tree({ ...OS, 'boot/EFI/Linux/x.efi': truncated }), tree({ 'boot/EFI/Linux/x.efi': good })]);
    assert.equal((await check(layout, 'fixed')).ok, true);
  });
});
