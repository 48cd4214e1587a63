/**
 * The deterministic tar writer: golden bytes (any drift in the writer or the compressors fails here),
 * the header format rules (USTAR where it fits, pax only where needed), fields taken from the tree and
 * never the host, hardlink order, host files that change, and GNU tar reading what it writes.
 */
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { link, lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { compressor } from '../../src/fs/compress.js';
import { makedev } from '../../src/fs/tar-format.js';
import { writeTar } from '../../src/fs/tar-writer.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { isLadingError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { collect, entry, file, readAllEntries, sha256, tarOf, tool, treeOf } from './fs-helpers.js';

/** Deterministic, compressible but not trivial content: numbered lines with a hash on each. */
function bulk(bytes: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  let total = 0;
  while (total < bytes) {
    const line = `line ${n} ${sha256(String(n))}\n`;
    parts.push(line);
    total += line.length;
    n++;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/** The fixture tree of the golden test: every entry type and every header rule. */
function goldenTree(): FileTree {
  const big = bulk(2.5 * 1024 * 1024);
  // Incompressible but fixed bytes (an AES-CTR keystream), so the golden gzip covers stored blocks too.
  const noise = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2)).update(Buffer.alloc(1.5 * 1024 * 1024));
  return treeOf(
    entry('etc', 'directory', { mtime: 1700000000 }),
    file('etc/hostname', 'lading\n', { mtime: 1700000000 }),
    file('etc/shadow', 'root:*:19000:0:99999:7:::\n', { mode: 0o640, gid: 42 }),
    entry('usr/bin', 'directory'),
    file('usr/bin/app', '#!/bin/sh\necho app\n', { mode: 0o4755, mtime: 5 }),
    entry('usr/bin/app2', 'symlink', { linkTarget: 'app' }),
    entry('usr/bin/app3', 'hardlink', { linkTarget: 'usr/bin/app' }),
    entry('var/lib/app', 'directory', { uid: 65532, gid: 65532, mode: 0o700 }),
    makeEntry('var/lib/app/big.txt', 'file', { size: big.length, content: { kind: 'bytes', data: big } }),
    makeEntry('var/lib/app/random.bin', 'file', { size: noise.length, content: { kind: 'bytes', data: noise } }),
    file(`opt/${'long-directory-name/'.repeat(8)}file.txt`, 'long\n'),
    file(`opt/${'x'.repeat(120)}`, 'unsplittable\n'),
    file('opt/naïve-café.txt', 'utf8\n'),
    entry('opt/far', 'symlink', { linkTarget: `/${'target/'.repeat(20)}end` }),
    file('opt/cap', '', { xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0])]]) }),
    file('opt/bigid', 'id\n', { uid: 3_000_000, gid: 4_000_000 }),
    entry('dev/null', 'char', { mode: 0o666, rdev: makedev(1, 3) }),
    entry('dev/loop0', 'block', { mode: 0o660, rdev: makedev(7, 0) }),
    entry('run/fifo', 'fifo', { mode: 0o600 }),
  );
}

describe('tar writer', () => {
  it('writes the same bytes as ever: golden digests of the tar, its gzip and its zstd', async () => {
    const tar = await tarOf(goldenTree(), { clampMtime: 1600000000 });
    const gz1 = await collect(compressor('gzip', { workers: 1 }).compress(Readable.from([tar])));
    const gz2 = await collect(compressor('gzip', { workers: 2 }).compress(writeTar(goldenTree(), { clampMtime: 1600000000 })));
    const zst = await collect(compressor('zstd', { workers: 2 }).compress(Readable.from([tar])));
    if (process.env.LADING_DUMP_GOLDEN) {
      await writeFile(`${process.env.LADING_DUMP_GOLDEN}.tar`, tar);
      await writeFile(`${process.env.LADING_DUMP_GOLDEN}.tar.gz`, gz1);
      await writeFile(`${process.env.LADING_DUMP_GOLDEN}.tar.zst`, zst);
    }
    assert.equal(tar.length, 4_220_928);
    assert.equal(sha256(tar), '61436888347a0b456cbc97859a3d9417ab4215859acdcb6cb8b105a7bcfb6539');
    assert.deepEqual(gz2, gz1, 'gzip output must not depend on the number of workers');
    assert.equal(sha256(gz1), 'a21c5410e41c0c9a86ab8a268d4c2d5ebf157cf557b015f5ba22896825e0704d');
    assert.equal(sha256(zst), '14e00c1ab9bae7eddfd4b894de284e58a406e1df302cdd37e21655ae5a8cb14f');
    assert.deepEqual(gunzipSync(gz1), tar, 'node zlib reads the gzip back');
    assert.equal(compressor('gzip').id, 'gzip:fflate-0.8.3:level6:block1MiB');
    assert.equal(compressor('zstd').id, 'zstd:zstd-wasm-0.0.27:level3:block1MiB');
  });

  it('uses USTAR where a name fits (prefix/name split) and pax only for what does not', async () => {
    const split = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}`;
    const tar = await tarOf(treeOf(file('a', 'x'), file(split, 'y'), entry('l', 'symlink', { linkTarget: 'a' })));
    const typeflags = headers(tar).map((h) => h.typeflag);
    assert.ok(!typeflags.includes('x'), `no pax header expected, got ${typeflags.join(',')}`);
    const names = (await readAllEntries(tar)).map((e) => e.header.rawName);
    assert.ok(names.includes(split), 'a 212-byte name splits into prefix and name');
    assert.ok(names.every((n) => !n.startsWith('./')));

    for (const [why, tree] of [
      ['long name', treeOf(file(`${'x'.repeat(101)}`, 'z'))],
      ['non-ASCII name', treeOf(file('ü', 'z'))],
      ['long link', treeOf(entry('l', 'symlink', { linkTarget: 'y'.repeat(101) }))],
      ['xattr', treeOf(file('a', 'z', { xattrs: new Map([['user.k', Buffer.from('v')]]) }))],
      ['large uid', treeOf(file('a', 'z', { uid: 2_097_152 }))],
      ['negative mtime', treeOf(file('a', 'z', { mtime: -1 }))],
    ] as const) {
      const t = await tarOf(tree);
      assert.equal(headers(t)[0]?.typeflag, 'x', `${why} needs a pax header`);
    }
  });

  it('round-trips pax values: names, link targets, binary xattrs, large ids, negative times', async () => {
    const xattr = Buffer.from([0, 1, 2, 255, 10, 61]);
    const longLink = `../${'z'.repeat(150)}`;
    const tree = treeOf(
      file('ü/ñ.txt', 'a', {
        xattrs: new Map([
          ['user.bin', xattr],
          ['trusted.overlay.opaque', Buffer.from('y')],
        ]),
      }),
      entry('link', 'symlink', { linkTarget: longLink }),
      file('old', 'b', { mtime: -86400, uid: 5_000_000, gid: 6_000_000 }),
      file(`deep/${'n'.repeat(300)}`, 'c'),
    );
    const read = await readAllEntries(await tarOf(tree));
    const by = new Map(read.map((e) => [e.header.path, e.header]));
    assert.deepEqual([...by.keys()], ['deep', `deep/${'n'.repeat(300)}`, 'link', 'old', 'ü', 'ü/ñ.txt']);
    assert.deepEqual(Buffer.from(by.get('ü/ñ.txt')!.xattrs.get('user.bin')!), xattr);
    assert.equal(Buffer.from(by.get('ü/ñ.txt')!.xattrs.get('trusted.overlay.opaque')!).toString(), 'y');
    assert.equal(by.get('link')!.linkTarget, longLink);
    assert.equal(by.get('old')!.mtime, -86400);
    assert.equal(by.get('old')!.uid, 5_000_000);
    assert.equal(by.get('old')!.gid, 6_000_000);
    for (const h of read.map((e) => e.header)) {
      assert.equal(h.uname, '');
      assert.equal(h.gname, '');
      assert.ok(!('atime' in h.pax) && !('ctime' in h.pax), 'no atime/ctime records');
    }
  });

  it('takes mode, owner and time from the tree, clamps mtimes, and lists directories explicitly, parents first', async () => {
    const tree = treeOf(
      file('b/x', '1', { mode: 0o4755, uid: 7, gid: 8, mtime: 2_000_000_000 }),
      file('a-b', '2', { mtime: 10 }),
      file('a.txt', '3'),
      file('a/z', '4'),
      file('B', '5'),
    );
    const read = await readAllEntries(await tarOf(tree, { clampMtime: 1_000_000 }));
    assert.deepEqual(
      read.map((e) => e.header.rawName),
      ['B', 'a/', 'a/z', 'a-b', 'a.txt', 'b/', 'b/x'],
    );
    const x = read.find((e) => e.header.path === 'b/x')!.header;
    assert.equal(x.mode, 0o4755);
    assert.equal(x.uid, 7);
    assert.equal(x.gid, 8);
    assert.equal(x.mtime, 1_000_000, 'clamped');
    assert.equal(read.find((e) => e.header.path === 'a-b')!.header.mtime, 10, 'older times are kept');
    assert.equal(read.find((e) => e.header.path === 'a')!.header.type, 'directory');
  });

  it('orders entries as GNU tar --sort=name does, and GNU tar lists and extracts them', async () => {
    const dir = await tempDir();
    const tree = treeOf(
      file('z', 'z'),
      file('a.b/c', 'c'),
      file('a/b', 'b'),
      file('a-/q', 'q'),
      file('A', 'A'),
      entry('a/link', 'symlink', { linkTarget: 'b' }),
      entry('a/0hard', 'hardlink', { linkTarget: 'a/b' }),
    );
    await writeFile(join(dir, 'ours.tar'), await tarOf(tree));
    const listing = await tool('tar', '-tvf', join(dir, 'ours.tar'), '--numeric-owner');
    assert.match(listing, /^hrw-r--r-- 0\/0 +0 1970-01-01 00:00 a\/b link to a\/0hard$/m);
    await mkdir(join(dir, 'x'));
    await tool('tar', '-xf', join(dir, 'ours.tar'), '-C', join(dir, 'x'));
    assert.equal((await stat(join(dir, 'x/a/b'))).ino, (await stat(join(dir, 'x/a/0hard'))).ino);
    assert.equal(await readFile(join(dir, 'x/a/b'), 'utf8'), 'b');
    const gnuList = (await tool('sh', '-c', `tar --sort=name -cf - -C ${join(dir, 'x')} . | tar -tf -`))
      .split('\n')
      .filter((l) => l !== '' && l !== './')
      .map((l) => l.replace(/^\.\//, ''));
    const ours = (await tool('tar', '-tf', join(dir, 'ours.tar'))).split('\n').filter((l) => l !== '');
    assert.deepEqual(ours, gnuList);
  });

  it('puts a hardlink group content on the first name in tar order', async () => {
    const tree = treeOf(
      file('z/target', 'payload'),
      entry('a/link', 'hardlink', { linkTarget: 'z/target' }),
      entry('m', 'hardlink', { linkTarget: 'a/link' }),
    );
    const read = await readAllEntries(await tarOf(tree));
    const by = new Map(read.map((e) => [e.header.path, e]));
    assert.equal(by.get('a/link')!.header.type, 'file');
    assert.equal(by.get('a/link')!.content.toString(), 'payload');
    assert.equal(by.get('m')!.header.linkTarget, 'a/link');
    assert.equal(by.get('z/target')!.header.type, 'hardlink');
    assert.equal(by.get('z/target')!.header.linkTarget, 'a/link');
  });

  it('streams host files and checks their size', async () => {
    const dir = await tempDir();
    const big = bulk(3 * 1024 * 1024 + 17);
    await writeFile(join(dir, 'big'), big);
    await writeFile(join(dir, 'small'), 'small');
    const tree = treeOf(
      makeEntry('big', 'file', { size: big.length, content: { kind: 'file', path: join(dir, 'big') } }),
      makeEntry('small', 'file', { size: 5, content: { kind: 'file', path: join(dir, 'small') } }),
    );
    const read = await readAllEntries(writeTar(tree));
    assert.deepEqual(read[0]!.content, big);
    assert.equal(read[1]!.content.toString(), 'small');

    for (const size of [4, 6, big.length - 1]) {
      const t = treeOf(
        makeEntry('small', 'file', { size, content: { kind: 'file', path: join(dir, size === big.length - 1 ? 'big' : 'small') } }),
      );
      await assert.rejects(collect(writeTar(t)), (e: unknown) => {
        assert.ok(isLadingError(e, 'FILE_CHANGED'));
        assert.match((e as Error).message, /^file changed while it was read: .*\/(small|big)$/);
        return true;
      });
    }
  });

  it('refuses content it cannot read, with the path in the message', async () => {
    const missing = treeOf(makeEntry('gone', 'file', { size: 1, content: { kind: 'file', path: '/nonexistent/lading-test' } }));
    await assert.rejects(collect(writeTar(missing)), /cannot read \/nonexistent\/lading-test: no such file or directory/);
    const layer = treeOf(makeEntry('l', 'file', { size: 3, content: { kind: 'layer', layer: 'sha256:00', offset: 0 } }));
    await assert.rejects(collect(writeTar(layer)), /l: its content \(layer\) cannot be read here: the caller must give openContent/);
    const short = await collect(writeTar(layer, { openContent: async () => Readable.from([Buffer.from('ab')]) })).catch((e: Error) => e);
    assert.ok(isLadingError(short, 'SIZE_MISMATCH'), String(short));
    const fine = await readAllEntries(writeTar(layer, { openContent: async () => Readable.from([Buffer.from('abc')]) }));
    assert.equal(fine[0]!.content.toString(), 'abc');
    const dangling = treeOf(entry('h', 'hardlink', { linkTarget: 'nothing' }));
    await assert.rejects(collect(writeTar(dangling)), /hardlink h points at nothing, which is not in the tree/);
  });

  it('does not read the host owner or mode: a file written with any umask gives the same tar', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), 'same', { mode: 0o600 });
    await link(join(dir, 'f'), join(dir, 'g'));
    const tree = treeOf(makeEntry('f', 'file', { size: 4, content: { kind: 'file', path: join(dir, 'f') } }));
    const a = await tarOf(tree);
    const b = await tarOf(treeOf(makeEntry('f', 'file', { size: 4, content: { kind: 'file', path: join(dir, 'g') } })));
    assert.deepEqual(a, b);
    assert.equal((await lstat(join(dir, 'f'))).mode & 0o777, 0o600);
    assert.equal((await readAllEntries(a))[0]!.header.mode, 0o644);
  });
});

/** The typeflag and name of every header block in a tar (walking sizes; pax bodies skipped). */
function headers(tar: Buffer): { typeflag: string; name: string }[] {
  const out: { typeflag: string; name: string }[] = [];
  let pos = 0;
  while (pos + 512 <= tar.length) {
    const block = tar.subarray(pos, pos + 512);
    if (block.every((b) => b === 0)) break;
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/, '') || '0', 8);
    const typeflag = String.fromCharCode(block[156]!);
    out.push({ typeflag, name: block.toString('utf8', 0, 100).replace(/\0.*$/s, '') });
    const hasData = typeflag === '0' || typeflag === 'x' || typeflag === 'g';
    pos += 512 + (hasData ? Math.ceil(size / 512) * 512 : 0);
  }
  return out;
}
