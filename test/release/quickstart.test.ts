/** `lading quickstart` (npm start): its first steps still run, and the release steps build, compose, inspect and extract a pinned tool. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { showPinned } from '../../src/release/pin-show.js';
import { ladingOk, run } from '../helpers/run.js';
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
  });
});
