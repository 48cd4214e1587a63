/** Output into a pipe whose reader has gone (`lading ls | head`): exit quietly, as Unix tools do. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeImage } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { CLI, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

describe('stdout closed early', () => {
  it('ends the command with its own exit code and nothing on stderr', async () => {
    const dir = join(await tempDir(), 'layout');
    const store = await LayoutStore.open(dir, 'write');
    const tags = Array.from({ length: 200 }, (_, i) => `tag-${String(i).padStart(3, '0')}-${'x'.repeat(40)}`);
    await writeImage(store, { layers: [{ files: { a: 'a' } }] }, tags);
    await store.close();
    // `true` exits without reading: every write lading makes meets a closed pipe (EPIPE).
    const script = `"${process.execPath}" "${CLI}" ls "oci:${dir}" | true; echo "lading exit $\{PIPESTATUS[0]}" >&2`;
    const r = await run('bash', ['-c', script]);
    assert.equal(r.stderr.trim(), 'lading exit 0', r.stderr);
  });
});
