/**
 * Streams end to end: a layer much larger than the memory bound crosses a real registry both ways
 * (chunked upload, then download) while the lading process stays under 300 MiB resident. A copy that
 * buffered the layer whole would need more than the layer's size.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeImage } from '../../src/build/image-writer.js';
import type { Descriptor } from '../../src/oci/types.js';
import { LayoutStore } from '../../src/store/layout/layout-store.js';
import { type RegistryInstance, startRegistry } from '../helpers/registry.js';
import { CLI, ladingDigest, run } from '../helpers/run.js';

const LAYER_BYTES = 640 << 20;
const LIMIT_KIB = 300 * 1024;
const PRELOAD = fileURLToPath(new URL('../helpers/report-rss.mjs', import.meta.url));

async function copyMeasured(...args: string[]): Promise<number> {
  const r = await run(process.execPath, ['--import', PRELOAD, CLI, 'copy', '-q', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const kib = Number(/maxrss-kib=(\d+)/.exec(r.stderr)?.[1]);
  assert.ok(kib > 0, 'the child reported its peak RSS');
  return kib;
}

describe('memory', () => {
  let work: string;
  let registry: RegistryInstance;
  let image: Descriptor;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'lading-memory-'));
    registry = await startRegistry();
    const store = await LayoutStore.open(join(work, 'src'), 'write');
    image = await writeImage(store, { layers: [{ files: { big: randomBytes(LAYER_BYTES) } }] }, ['big']);
    await store.close();
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it(`copies a ${LAYER_BYTES >> 20} MiB layer to a registry and back within ${LIMIT_KIB >> 10} MiB RSS`, async () => {
    const up = await copyMeasured(`oci:${work}/src:big`, `docker://${registry.host}/mem/big:1`);
    assert.ok(up < LIMIT_KIB, `upload peak RSS ${up >> 10} MiB`);
    const down = await copyMeasured(`docker://${registry.host}/mem/big:1`, `oci:${work}/dst:big`);
    assert.ok(down < LIMIT_KIB, `download peak RSS ${down >> 10} MiB`);
    assert.equal(await ladingDigest(`oci:${work}/dst:big`), image.digest);
  });
});
