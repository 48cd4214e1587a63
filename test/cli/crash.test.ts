/**
 * `kill -9` in the middle of a large copy into a layout: what is left must pass fsck, gc must clear the
 * debris, and running the same copy again must finish the job, reusing the blobs that had landed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeImage } from '../../src/build/image-writer.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { CLI, lading } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const LAYERS = 6;
const LAYER_BYTES = 48 << 20;

describe('kill -9 during a copy', () => {
  it('leaves a layout that fsck passes and a re-run completes', async () => {
    const dir = await tempDir();
    const src = await LayoutStore.open(join(dir, 'src'), 'write');
    const layers = Array.from({ length: LAYERS }, (_, i) => ({ files: { [`data/${i}`]: randomBytes(LAYER_BYTES) } }));
    const image = await writeImage(src, { layers }, ['big']);
    await src.close();
    const dst = join(dir, 'dst');

    // --no-link makes the copy stream every byte, so it is slow enough to interrupt.
    const child = spawn(process.execPath, [CLI, 'copy', '--no-link', '-q', `oci:${dir}/src:big`, `oci:${dst}:big`], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let landed = 0;
    for (let i = 0; i < 2000 && landed === 0; i++) {
      await sleep(2);
      landed = (await readdir(join(dst, 'blobs', 'sha256')).catch(() => [])).length;
    }
    child.kill('SIGKILL');
    assert.equal(await exited, null, 'the copy was killed before it finished');
    assert.ok(landed > 0, 'at least one blob had landed before the kill');

    const fsck = await lading('fsck', `oci:${dst}`);
    assert.equal(fsck.code, 0, `fsck after the kill: ${fsck.stdout}${fsck.stderr}`);
    assert.deepEqual((await lading('ls', `oci:${dst}`)).stdout, '', 'the tag was not written for a half-copied image');

    const again = await lading('copy', '--no-link', '-q', '-o', 'json', `oci:${dir}/src:big`, `oci:${dst}:big`);
    assert.equal(again.code, 0, again.stderr);
    const result = JSON.parse(again.stdout) as { descriptor: { digest: string }; blobs: { copied: number; skipped: number } };
    assert.equal(result.descriptor.digest, image.digest);
    assert.equal(result.blobs.copied + result.blobs.skipped, LAYERS + 1);
    assert.ok(result.blobs.skipped >= 1, `blobs that landed before the kill are reused (skipped ${result.blobs.skipped})`);
    assert.equal((await lading('digest', `oci:${dst}:big`)).stdout.trim(), image.digest);
    // gc clears what the killed process left (its temp file) and nothing the image needs.
    const gc = await lading('gc', '-o', 'json', `oci:${dst}`);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual((JSON.parse(gc.stdout) as { removed: unknown[] }).removed, []);
    assert.deepEqual(await readdir(dst), ['blobs', 'index.json', 'oci-layout'], 'no debris is left');
    const final = await lading('fsck', `oci:${dst}`);
    assert.equal(final.code, 0, final.stdout);
    assert.match(final.stdout, new RegExp(`${LAYERS + 2} blobs`));
  });
});
