/**
 * The tar reader over a local file read in place (FileByteSource: headers by pread, unread content
 * skipped without reading it, a whole-file check run at the end) must read exactly what it reads from
 * a stream: the same entries and bytes, the same refusals of cut archives, and the check's failure.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FileByteSource } from '../../src/fs/byte-source.js';
import { readTar, readTarEntries } from '../../src/fs/tar-reader.js';
import { compareNames } from '../../src/fs/tree.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, EOF, pad, rawEntry, rawHeader, type ReadEntry } from './fs-helpers.js';

const FIXTURES = new URL('../fixtures/fs/', import.meta.url);

async function inPlace(tar: Buffer, atEnd: () => Promise<void> = async () => undefined): Promise<ReadEntry[]> {
  const path = join(await tempDir(), 'layer.tar');
  await writeFile(path, tar);
  const fh = await open(path, 'r');
  try {
    const out: ReadEntry[] = [];
    await readTar(new FileByteSource(fh.fd, tar.length, atEnd), async (header, content) => {
      out.push({ header, content: await collect(content) });
    });
    return out;
  } finally {
    await fh.close();
  }
}

async function streamed(tar: Buffer): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  await readTar(Readable.from([tar]), async (header, content) => {
    out.push({ header, content: await collect(content) });
  });
  return out;
}

/** Files around every block and window boundary (the source reads headers through an 8 KiB window). */
function sampleTar(): Buffer {
  const sizes = [0, 1, 63, 64, 65, 511, 512, 513, 4095, 4096, 4097, 8191, 8192, 8193, 40_000, 70_000, 300_000];
  const parts = sizes.map((n, i) => rawEntry({ name: `d/f${i}` }, Buffer.alloc(n, i + 1).toString('latin1')));
  return Buffer.concat([rawEntry({ name: 'd/', type: '5' }, ''), ...parts, EOF]);
}

describe('tar reader in place', () => {
  it('reads the same entries and bytes as from a stream, whether content is read or skipped', async () => {
    const tar = sampleTar();
    const want = await streamed(tar);
    const got = await inPlace(tar);
    assert.deepEqual(
      got.map((e) => [
        e.header.path,
        e.header.offset,
        e.content.length,
        e.content.equals(want.find((w) => w.header.path === e.header.path)!.content),
      ]),
      want.map((e) => [e.header.path, e.header.offset, e.content.length, true]),
    );
    // Unread content is skipped: only every other entry read, the rest still parse at the right offsets.
    const path = join(await tempDir(), 'l.tar');
    await writeFile(path, tar);
    const fh = await open(path, 'r');
    const seen: string[] = [];
    let n = 0;
    await readTarEntries(new FileByteSource(fh.fd, tar.length, async () => undefined), async (h, content) => {
      if (n++ % 2 === 0) seen.push(`${h.path}:${(await collect(content())).length}`);
      else seen.push(`${h.path}:skipped`);
    });
    await fh.close();
    assert.equal(seen.length, want.length);
    assert.equal(seen[2], `d/f1:${want[2]!.content.length}`);
  });

  it('accepts the umoci 0.4.7 layer without padding, and refuses a cut archive as the stream reader does', async () => {
    const insert = gunzipSync(readFileSync(new URL('umoci-insert-layer.tar.gz', FIXTURES)));
    assert.deepEqual(
      (await inPlace(insert)).map((e) => e.header.path),
      (await streamed(insert)).map((e) => e.header.path),
    );
    const whole = Buffer.concat([
      rawEntry({ name: 'first' }, 'one'),
      rawHeader({ name: 'victim', size: 2000 }),
      pad(Buffer.alloc(2000, 1)),
      EOF,
    ]);
    await assert.rejects(
      inPlace(whole.subarray(0, 1024 + 700)),
      /^.*truncated tar stream: the content of victim is cut short: 188 of 2000 bytes$/,
    );
    await assert.rejects(
      inPlace(whole.subarray(0, 1024 + 100)),
      /truncated tar stream: the header at offset 1024 is cut short \(after first\)/,
    );
  });

  it("fails with the end check's error (the file's digest), after reading every entry", async () => {
    let entries = 0;
    await assert.rejects(
      inPlace(sampleTar(), async () => {
        entries = -1;
        throw new Error('blob in test: sha256:00 is corrupt');
      }).then((r) => (entries = r.length)),
      /is corrupt/,
    );
    assert.equal(entries, -1, 'the check runs at the end of the archive');
  });

  it('orders names by UTF-8 bytes, characters above U+FFFF included', () => {
    const names = ['b', 'a', '\u{1F600}', '\uFFFD', '\uE000', 'ab', '', 'é', 'a\u{10000}', 'a\uFFFF'];
    const bytewise = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual([...names].sort(compareNames), bytewise);
    assert.ok(compareNames('\u{1F600}', '\uFFFD') > 0, 'U+1F600 (F0 9F 98 80) sorts after U+FFFD (EF BF BD)');
  });
});
