/** `lading boot seal|check`: the CLI, with real UKIs; a refused seal leaves the target untouched. */
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { lading, ladingJson, ladingOk } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { BASE, bytes, tree, writeImage } from '../composefs/image-helpers.js';
import { makeUki } from './uki-helpers.js';

describe('lading boot seal and check', () => {
  let reg: RegistryInstance;
  before(async () => (reg = await startRegistry()));
  after(() => reg.stop());

  it('seals a UKI that names the bootable digest, and check passes on the result', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree({ ...BASE, 'usr/bin/a': bytes(2000, 1), 'boot/initrd': bytes(800, 2) })], { compression: 'gzip' });
    const ref = `oci:${layout}:os`;
    const bootable = (await ladingOk('composefs', 'digest', '--bootable', ref)).trim();
    const uki = await makeUki(dir, 'linux', `composefs.digest=v1-sha512-12:${bootable}`);
    const out = await ladingOk('boot', 'seal', ref, '--uki', uki, '--to', `oci:${layout}:sealed`);
    assert.match(
      out,
      new RegExp(
        `^ok {2}/boot/EFI/Linux/linux\\.efi {2}v1-sha512-12:${bootable}\\nsha256:[0-9a-f]{64} {2}oci:.*:sealed {2}\\(sealed sha256:`,
      ),
    );
    const check = await ladingJson<{ ok: boolean; ukis: { path: string; kargs: { expected: string }[] }[] }>(
      'boot',
      'check',
      `oci:${layout}:sealed`,
      '-o',
      'json',
    );
    assert.equal(check.ok, true);
    assert.deepEqual(
      check.ukis.map((u) => [u.path, u.kargs[0]!.expected]),
      [['/boot/EFI/Linux/linux.efi', bootable]],
    );
    assert.match(
      await ladingOk('boot', 'check', `oci:${layout}:sealed`),
      /^ok {2}\/boot\/EFI\/Linux\/linux\.efi .*\n1 UKI names the bootable composefs digest of sha256:/,
    );
    // The bootable digest did not move; the plain one did (the UKI is in /boot).
    assert.equal((await ladingOk('composefs', 'digest', '--bootable', `oci:${layout}:sealed`)).trim(), bootable);
    assert.notEqual(
      (await ladingOk('composefs', 'digest', `oci:${layout}:sealed`)).trim(),
      (await ladingOk('composefs', 'digest', ref)).trim(),
    );
  });

  it('refuses a wrong digest, a bad UKI or bad options, leaving the target untouched', async () => {
    const dir = await tempDir();
    const layout = join(dir, 'layout');
    await writeImage(layout, 'os', [tree({ ...BASE, 'usr/bin/a': bytes(2000, 3) })]);
    const ref = `oci:${layout}:os`;
    const wrong = 'ab'.repeat(64);
    const uki = await makeUki(dir, 'wrong.efi', `composefs.digest=v1-sha512-12:${wrong}`);
    const notPe = join(dir, 'text.efi');
    await writeFile(notPe, 'MZ but nothing else');
    const target = join(dir, 'target');
    const cases: [string[], number, RegExp][] = [
      [
        ['seal', ref, '--uki', uki, '--to', `oci:${target}:x`],
        1,
        new RegExp(`names composefs digest v1-sha512-12:${wrong}, but .* has bootable digest [0-9a-f]{128}: .*nothing was written`),
      ],
      [['seal', ref, '--uki', notPe, '--to', `oci:${target}:x`], 1, /text\.efi is not a valid PE\/UKI file: truncated/],
      [['seal', ref, '--uki', join(dir, 'missing.efi'), '--to', `oci:${target}:x`], 1, /cannot read the UKI .*missing\.efi: no such file/],
      [['seal', ref, '--uki', uki, '--to', `oci:${target}@sha256:${'0'.repeat(64)}`], 2, /names a digest/],
      [['seal', ref, '--uki', uki, '--to', `oci:${target}:x`, '--compression', 'lz4'], 2, /--compression takes gzip, zstd or none/],
      [['seal', ref, '--uki', uki, '--to', `oci:${target}:x`, '--name', 'a/b.efi'], 2, /give a file name ending in \.efi/],
      [['check', ref], 1, /holds no UKI \(\/boot\/EFI\/Linux\/\*\.efi\): nothing to check/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await lading('boot', ...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      await assert.rejects(stat(target), /ENOENT/, `${args.join(' ')} touched the target`);
    }
  });
});
