/**
 * Pinning streams: a binary larger than the memory bound is pinned, and read back with --show, while the
 * lading process stays under 300 MiB resident. An implementation that loaded the file would need more
 * than the file's size. (The file is sparse, so making it costs no disk writes; the copy does write it.)
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, run } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { IMAGE, VERSION } from './markers.js';

const FILE_BYTES = 384 << 20;
const LIMIT_KIB = 300 * 1024;
const PRELOAD = fileURLToPath(new URL('../helpers/report-rss.mjs', import.meta.url));

async function measured(...args: string[]): Promise<{ kib: number; stdout: string }> {
  const r = await run(process.execPath, ['--import', PRELOAD, CLI, ...args]);
  assert.equal(r.code, 0, r.stderr);
  const kib = Number(/maxrss-kib=(\d+)/.exec(r.stderr)?.[1]);
  assert.ok(kib > 0, 'the child reported its peak RSS');
  return { kib, stdout: r.stdout };
}

describe('pin memory', () => {
  it(`pins a ${FILE_BYTES >> 20} MiB binary, markers near its end, within ${LIMIT_KIB >> 10} MiB RSS`, async () => {
    const dir = await tempDir();
    const input = join(dir, 'big');
    const fh = await open(input, 'w');
    await fh.truncate(FILE_BYTES);
    await fh.write(Buffer.concat([IMAGE, VERSION]), 0, IMAGE.length + VERSION.length, FILE_BYTES - 4096);
    await fh.close();
    const pinned = await measured(
      'pin',
      input,
      '--release-image',
      'quay.io/x/release@sha256:' + 'e'.repeat(64),
      '--release-version',
      '9.9.9',
      '-o',
      join(dir, 'out'),
    );
    assert.ok(pinned.kib < LIMIT_KIB, `pin peak RSS ${pinned.kib >> 10} MiB`);
    const shown = await measured('pin', '--show', join(dir, 'out'), '-o', 'json');
    assert.ok(shown.kib < LIMIT_KIB, `--show peak RSS ${shown.kib >> 10} MiB`);
    const values = (JSON.parse(shown.stdout) as { values: Record<string, { value?: string; offset?: number }> }).values;
    assert.equal(values.version?.value, '9.9.9');
    assert.equal(values.image?.offset, FILE_BYTES - 4096);
  });
});
