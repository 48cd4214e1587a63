/**
 * `lading quickstart` (npm start): its first steps still run, the release steps build, compose, inspect and
 * extract a pinned tool, and the signing steps sign the release, carry it with its signature to a second
 * layout and verify it there.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { showPinned } from '../../src/release/pin-show.js';
import { CLI, ladingOk, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

describe('lading quickstart', () => {
  it('runs every step, ending with a tool pinned to the release it composed', async () => {
    const dir = await tempDir();
    const out = await ladingOk('quickstart', '--dir', dir);
    for (const step of [
      '1. created',
      '2. copied',
      '3. packed',
      '4. unpacked',
      '5. inspected',
      '6. fsck',
      '7. built two component images',
      '9. release info: 1.0.0',
    ]) {
      assert.ok(out.includes(step), `missing step "${step}" in:\n${out}`);
    }
    const digest = /^8\. composed release 1\.0\.0 at oci:.*:1\.0\.0 {2}(sha256:[0-9a-f]{64})$/m.exec(out)?.[1];
    assert.ok(digest, out);
    assert.match(out, /^11\. fsck oci:.*\/release: 3 blobs, ok$/m);
    const tool = join(dir, 'bin', 'installer');
    const values = (await showPinned(tool)).values;
    assert.deepEqual(
      [values.image, values.version, values.arch].map((v) => (v.state === 'pinned' ? v.value : v.state)),
      [`oci:${join(dir, 'release')}@${digest}`, '1.0.0', 'linux/amd64'],
    );
    const ran = await run(process.execPath, [tool]);
    assert.equal(
      ran.stdout,
      `installer: release image oci:${join(dir, 'release')}@${digest}, release version 1.0.0, release architecture linux/amd64\n`,
    );

    // Signed, carried, verified at the site: the ConfigMap is oc's, and the site's copy verifies with the CLI too.
    assert.match(
      out,
      /^15\. verified at the site: sha256:[0-9a-f]{64} signed for quay\.example\/lading\/release:1\.0\.0 by Lading quickstart release key$/m,
    );
    const hex = digest.slice('sha256:'.length);
    const cm = JSON.parse(await readFile(join(dir, 'site-signatures', `signature-sha256-${hex.slice(0, 16)}.json`), 'utf8')) as {
      metadata: { name: string };
      binaryData: Record<string, string>;
    };
    assert.equal(cm.metadata.name, `sha256-${hex}`);
    assert.deepEqual(Object.keys(cm.binaryData), [`sha256-${hex}-1`]);
    const verify = [
      'verify',
      `oci:${join(dir, 'site-release')}:1.0.0`,
      '--keyring',
      join(dir, 'keys', 'release-key.pub.asc'),
      '--store',
      join(dir, 'signatures'),
      '--identity',
      'quay.example/lading/release:1.0.0',
    ];
    assert.match(await ladingOk(...verify), /1 signature\(s\) accepted/);
    // The same signature does not verify for another release name.
    const other = await run(process.execPath, [CLI, ...verify.slice(0, -1), 'quay.example/lading/release:2.0.0']);
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /quay\.example\/lading\/release:1\.0\.0/);
  });
});
