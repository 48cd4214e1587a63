/**
 * The streaming tar reader against what real tools write: GNU tar in each of its formats, bsdtar-style
 * pax records (built by hand: bsdtar is not installed), v7 and old-GNU headers, base-256 numbers,
 * signed checksums, global pax headers; layers written by Debian's umoci 0.4.7 `insert` (no padding
 * after the last file, no end-of-archive blocks: accepted) against streams cut inside an entry
 * (refused, naming the entry); path traversal.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isLadingError } from '../../src/errors.js';
import { makedev } from '../../src/fs/tar-format.js';
import { readTar } from '../../src/fs/tar-reader.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, EOF, pad, paxEntry, rawEntry, rawHeader, readAllEntries, tool } from './fs-helpers.js';

const FIXTURES = new URL('../fixtures/fs/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));

/** A small tree on disk with long names, a symlink, a hardlink and an empty dir. */
async function sampleDir(): Promise<string> {
  const dir = await tempDir();
  const root = join(dir, 'root');
  const long = join(root, 'a'.repeat(80), 'b'.repeat(80));
  await mkdir(long, { recursive: true });
  await writeFile(join(long, 'c'.repeat(120)), 'deep\n');
  await writeFile(join(root, 'file'), 'content\n');
  await symlink('file', join(root, 'link'));
  await tool('ln', join(root, 'file'), join(root, 'hard'));
  await mkdir(join(root, 'empty'));
  return root;
}

describe('tar reader', () => {
  for (const format of ['gnu', 'oldgnu', 'pax', 'ustar', 'v7'] as const) {
    it(`reads GNU tar --format=${format}`, async () => {
      const root = await sampleDir();
      const args = [
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '--mtime=@1234567890',
        `--format=${format}`,
        '-cf',
        '-',
        '-C',
        root,
        '.',
      ];
      if (format === 'ustar' || format === 'v7') {
        // These formats cannot hold the 285-byte name: GNU tar skips it with an error; leave it out.
        args.splice(args.indexOf('.'), 1, 'file', 'link', 'hard', 'empty');
      }
      const tar = await new Promise<Buffer>((resolve, reject) => {
        import('node:child_process')
          .then(({ execFile }) =>
            execFile('tar', args, { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
          )
          .catch(reject);
      });
      const read = await readAllEntries(tar);
      const by = new Map(read.map((e) => [e.header.path, e]));
      assert.equal(by.get('file')!.content.toString(), 'content\n');
      assert.equal(by.get('file')!.header.mtime, 1234567890);
      assert.equal(by.get('link')!.header.type, 'symlink');
      assert.equal(by.get('link')!.header.linkTarget, 'file');
      assert.equal(by.get('empty')!.header.type, 'directory');
      // GNU tar stores the second name of a hardlinked pair as a link to the first.
      const hardlinked = [by.get('file')!.header, by.get('hard')!.header];
      assert.deepEqual(hardlinked.map((h) => h.type).sort(), ['file', 'hardlink']);
      if (format !== 'ustar' && format !== 'v7') {
        const deep = `${'a'.repeat(80)}/${'b'.repeat(80)}/${'c'.repeat(120)}`;
        assert.equal(by.get(deep)!.content.toString(), 'deep\n', `${format} long name`);
        assert.equal(by.get('')!.header.rawName, './');
      }
      for (const e of read) {
        if (e.header.type === 'file') assert.deepEqual(tar.subarray(e.header.offset, e.header.offset + e.header.size), e.content, 'offset');
      }
    });
  }

  it('reads bsdtar-style pax: global headers, LIBARCHIVE and SCHILY xattrs, fractional times, records that unset', async () => {
    const tar = Buffer.concat([
      paxEntry(
        [
          ['comment', 'made by hand'],
          ['uname', 'builder'],
          ['mtime', '1000.5'],
        ],
        'g',
        'pax_global_header',
      ),
      paxEntry([
        ['path', 'dir/naïve.txt'],
        ['LIBARCHIVE.xattr.user.a%3Db', Buffer.from('dmFsdWU=')],
        ['SCHILY.xattr.user.raw', Buffer.from([0, 255])],
        ['mtime', '-1.25'],
        ['uid', '4000000'],
      ]),
      rawEntry({ name: 'dir/naive.txt', uid: 0 }, 'hi'),
      paxEntry([['uname', '']]),
      rawEntry({ name: 'second', uname: 'fromheader' }, 'x'),
      rawEntry({ name: 'third' }, ''),
      EOF,
    ]);
    const read = await readAllEntries(tar);
    const [first, second, third] = read.map((e) => e.header);
    assert.equal(first!.path, 'dir/naïve.txt');
    assert.equal(first!.rawName, 'dir/naïve.txt');
    assert.equal(Buffer.from(first!.xattrs.get('user.a=b')!).toString(), 'value');
    assert.deepEqual(Buffer.from(first!.xattrs.get('user.raw')!), Buffer.from([0, 255]));
    assert.equal(first!.mtime, -2);
    assert.equal(first!.mtimeNsec, 750_000_000);
    assert.equal(first!.uid, 4_000_000);
    assert.equal(first!.uname, 'builder', 'the global record applies');
    assert.equal(second!.uname, 'fromheader', 'an empty per-entry record removes the global one');
    assert.equal(second!.mtime, 1000);
    assert.equal(second!.mtimeNsec, 500_000_000);
    assert.equal(third!.uname, 'builder');
    assert.equal(third!.pax.comment, 'made by hand');
  });

  it('reads v7 and old-GNU headers, GNU long names, base-256 numbers and signed checksums', async () => {
    const longName = `${'n'.repeat(150)}/file`;
    const longLink = `${'t'.repeat(150)}/target`;
    const tar = Buffer.concat([
      rawEntry({ name: 'v7dir/', format: 'v7', mode: 0o755 }),
      rawEntry({ name: 'v7dir/f', format: 'v7' }, 'seven'),
      rawEntry({ name: '././@LongLink', type: 'L', format: 'gnu' }, `${longName}\0`),
      rawEntry({ name: 'trunc', format: 'gnu', uid: 2 ** 40, mtime: -100, base256: ['uid', 'mtime'] }, 'long'),
      rawEntry({ name: '././@LongLink', type: 'K', format: 'gnu' }, `${longLink}\0`),
      rawEntry({ name: 'sym', type: '2', format: 'gnu', linkname: 'short' }),
      rawEntry({ name: 'ümlaut-signed', signedChecksum: true }, 's'),
      rawEntry({ name: 'dev/tty', type: '3', devmajor: 5, devminor: 0 }),
      rawEntry({ name: 'contiguous', type: '7' }, 'c'),
      EOF,
    ]);
    const read = await readAllEntries(tar);
    const by = new Map(read.map((e) => [e.header.path, e]));
    assert.equal(by.get('v7dir')!.header.type, 'directory');
    assert.equal(by.get('v7dir/f')!.content.toString(), 'seven');
    assert.equal(by.get(longName)!.content.toString(), 'long');
    assert.equal(by.get(longName)!.header.uid, 2 ** 40);
    assert.equal(by.get(longName)!.header.mtime, -100);
    assert.equal(by.get('sym')!.header.linkTarget, longLink);
    assert.equal(by.get('ümlaut-signed')!.content.toString(), 's');
    assert.equal(by.get('dev/tty')!.header.rdev, makedev(5, 0));
    assert.equal(by.get('contiguous')!.header.type, 'file');
  });

  it('accepts layers that umoci 0.4.7 insert wrote: no padding after the last file, no end-of-archive blocks', async () => {
    // Both layers were written by `umoci insert` (Debian umoci 0.4.7); see test/fixtures/fs/README.md.
    const insert = gunzipSync(fixture('umoci-insert-layer.tar.gz'));
    assert.notEqual(insert.length % 512, 0, 'the fixture really lacks its padding');
    const read = await readAllEntries(insert);
    assert.deepEqual(
      read.map((e) => `${e.header.path} ${e.header.type} ${e.content.toString().trim().slice(0, 8)}`),
      ['opt directory ', 'opt/b.txt file xxxxxxxx', 'opt/sub directory ', 'opt/sub/a.txt file hello'],
    );
    const whiteout = gunzipSync(fixture('umoci-whiteout-layer.tar.gz'));
    assert.equal(whiteout.length, 512, 'one header, no end-of-archive blocks');
    assert.deepEqual(
      (await readAllEntries(whiteout)).map((e) => e.header.path),
      ['opt/.wh.b.txt'],
    );
    // And the same with the content only partly padded.
    const partial = Buffer.concat([rawHeader({ name: 'f', size: 3 }), Buffer.from('abc\0\0')]);
    assert.equal((await readAllEntries(partial))[0]!.content.toString(), 'abc');
  });

  it('refuses a stream cut inside an entry, naming it, whether the entry is read or skipped', async () => {
    const whole = Buffer.concat([
      rawEntry({ name: 'first' }, 'one'),
      rawHeader({ name: 'victim', size: 2000 }),
      pad(Buffer.alloc(2000, 1)),
      EOF,
    ]);
    const cut = whole.subarray(0, 1024 + 700);
    for (const consume of [true, false]) {
      await assert.rejects(
        readTar(Readable.from([cut]), async (_h, content) => {
          if (consume) await collect(content);
        }),
        (e: unknown) => {
          assert.ok(isLadingError(e, 'INVALID_ARCHIVE'), String(e));
          assert.match((e as Error).message, /^truncated tar stream: the content of victim is cut short: 188 of 2000 bytes$/);
          return true;
        },
      );
    }
    await assert.rejects(
      readAllEntries(whole.subarray(0, 1024 + 100)),
      /truncated tar stream: the header at offset 1024 is cut short \(after first\)/,
    );
    const paxOnly = paxEntry([['path', 'x']]);
    await assert.rejects(readAllEntries(paxOnly), /truncated tar stream: the archive ends after an extended header/);
    await assert.rejects(readAllEntries(paxOnly.subarray(0, 520)), /truncated tar stream: the extended header at offset 0 is cut short/);
  });

  it('refuses corrupt headers and what it does not read', async () => {
    await assert.rejects(readAllEntries(Buffer.from('not a tar at all'.repeat(40))), /invalid tar stream: the stream is not a tar archive/);
    await assert.rejects(
      readAllEntries(Buffer.concat([rawEntry({ name: 'a' }, 'x'), rawEntry({ name: 'b', badChecksum: true }, 'y')])),
      /bad header checksum at offset 1024 \(after a\)/,
    );
    await assert.rejects(readAllEntries(Buffer.concat([rawEntry({ name: 's', type: 'S' }), EOF])), /s is a GNU sparse file/);
    await assert.rejects(readAllEntries(Buffer.concat([rawEntry({ name: 'q', type: 'Q' }), EOF])), /has the tar entry type "Q"/);
    await assert.rejects(
      readAllEntries(Buffer.concat([Buffer.alloc(512), rawEntry({ name: 'after-zero' }), EOF])),
      /a zero block at offset 0 is followed by data/,
    );
  });

  it("refuses names and hardlink targets with '..'", async () => {
    for (const [name, tar] of [
      ['../escape', rawEntry({ name: '../escape' }, 'x')],
      ['a/../../b', rawEntry({ name: 'a/../../b' }, 'x')],
      ['pax path', Buffer.concat([paxEntry([['path', 'ok/../../../etc/passwd']]), rawEntry({ name: 'ok' }, 'x')])],
      ['hardlink', rawEntry({ name: 'h', type: '1', linkname: '../../etc/shadow' })],
    ] as const) {
      await assert.rejects(readAllEntries(Buffer.concat([tar, EOF])), (e: unknown) => {
        assert.ok(isLadingError(e, 'UNSAFE_PATH'), `${name}: ${String(e)}`);
        assert.match((e as Error).message, /path escapes the root/);
        return true;
      });
    }
    // A symlink's target is data, not a path the reader follows.
    const read = await readAllEntries(Buffer.concat([rawEntry({ name: 'up', type: '2', linkname: '../../..' }), EOF]));
    assert.equal(read[0]!.header.linkTarget, '../../..');
  });

  it('lets the callback read part of the content and skips the rest; reads the input to its end', async () => {
    const tar = Buffer.concat([rawEntry({ name: 'a' }, Buffer.alloc(5000, 7)), rawEntry({ name: 'b' }, 'bee'), EOF, Buffer.alloc(8192)]);
    const seen: string[] = [];
    let ended = false;
    const input = Readable.from(
      (async function* () {
        for (let i = 0; i < tar.length; i += 1000) yield tar.subarray(i, i + 1000);
        ended = true;
      })(),
    );
    await readTar(input, async (h, content) => {
      if (h.path === 'a') {
        for await (const c of content) {
          seen.push(`a:${(c as Buffer).length}`);
          break;
        }
      } else seen.push(`${h.path}:${(await collect(content)).toString()}`);
    });
    assert.equal(seen[seen.length - 1], 'b:bee');
    assert.ok(ended, 'the trailing zero records were read, so a digest check around the input runs');
  });
});
