/**
 * The composefs EROFS writer against C mkcomposefs (the upstream vectors' image checksums) and
 * composefs-rs (its pinned digest-stability values), with fsck.erofs reading every image written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDump } from '../../src/composefs/dump.js';
import { chunking } from '../../src/composefs/erofs-tree.js';
import { composefsImageV2 } from '../../src/composefs/erofs-v2.js';
import { composefsImage, minimumFormatVersion } from '../../src/composefs/erofs-writer.js';
import { isLadingError } from '../../src/errors.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { FsVerityHasher } from '../../src/verity/fsverity.js';
import { tempDir } from '../helpers/tmp.js';
import { goodVectors, RS_SPECIAL_V1 } from './vectors.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const verity = (b: Uint8Array) => {
  const h = new FsVerityHasher('sha256');
  h.update(b);
  return h.digest().toString('hex');
};

async function fsck(dir: string, name: string, image: Buffer): Promise<void> {
  const file = join(dir, name.replace(/[^\w.-]/g, '_'));
  await writeFile(file, image);
  // No stdin for fsck.erofs: it exits before reading it, and a pipe would fail with EPIPE.
  const r = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile('fsck.erofs', [file], (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr })),
  );
  assert.equal(r.code, 0, `fsck.erofs rejected ${name}: ${r.out}`);
}

/** composefs-rs mkfs.rs: root 0755, leaves with permission bits 0, everything uid/gid 0, mtime 0. */
function rsEmpty(): FileTree {
  return new FileTree({ mode: 0o755 });
}
function rsSimple(): FileTree {
  const t = rsEmpty();
  t.set(makeEntry('fifo', 'fifo', { mode: 0 }));
  t.set(makeEntry('regular-inline', 'file', { mode: 0, size: 4, content: { kind: 'bytes', data: Buffer.from('hihi') } }));
  t.set(makeEntry('regular-external', 'file', { mode: 0, size: 1234, content: { kind: 'external' }, verity: '5a'.repeat(32) }));
  t.set(makeEntry('chrdev', 'char', { mode: 0, rdev: 123 }));
  t.set(makeEntry('blkdev', 'block', { mode: 0, rdev: 123 }));
  t.set(makeEntry('socket', 'socket', { mode: 0 }));
  t.set(makeEntry('symlink', 'symlink', { mode: 0, linkTarget: '/target' }));
  return t;
}

describe('composefs EROFS writer', () => {
  it('writes exactly the image mkcomposefs writes for every upstream vector, and fsck.erofs accepts it', async () => {
    const dir = await tempDir();
    const results: string[] = [];
    for (const v of goodVectors()) {
      const tree = parseDump(v.bytes, { strict: v.strict, source: v.name });
      const version = v.version ?? minimumFormatVersion(tree);
      const image = composefsImage(tree, { formatVersion: version });
      results.push(`${v.name} v${version} ${sha256(image) === v.sha256 ? 'match' : `MISMATCH ${sha256(image)}`}`);
      await fsck(dir, v.name, image);
    }
    assert.deepEqual(
      results.filter((r) => !r.endsWith(' match')),
      [],
      results.join('\n'),
    );
    assert.equal(results.length, 14);
  });

  it('matches the composefs-rs digest-stability values for V0 and V1', () => {
    const cases: [string, () => FileTree, 0 | 1, string][] = [
      ['empty', rsEmpty, 0, '8f589e8f57ecb88823736b0d857ddca1e1068a23e264fad164b28f7038eb3682'],
      ['simple', rsSimple, 0, '9f3f5620ee0c54708516467d0d58741e7963047c7106b245d94c298259d0fa01'],
      ['empty', rsEmpty, 1, '14a26c957c84f6eb774b91205476adc13196c7c33b9dd97d08d43725ecb90b63'],
      ['simple', rsSimple, 1, 'ad6db6427568a1e4fdc772cbab7b6063f5eb4b33cb62982a740ba9213e5962b5'],
    ];
    for (const [name, make, version, expected] of cases) {
      assert.equal(verity(composefsImage(make(), { formatVersion: version })), expected, `${name} V${version}`);
    }
    const special = parseDump(readFileSync(RS_SPECIAL_V1), { strict: true });
    assert.equal(verity(composefsImage(special, { formatVersion: 1 })), 'b1c78c25db8638be5b9b483472d32ee9624d8d32ded626a91cd536116e8df97c');
  });

  it('writes composefs-rs legacy format 2: its digest-stability values, and fsck.erofs reads it for every upstream vector', async () => {
    assert.equal(verity(composefsImageV2(rsEmpty())), '086b702a519b57d6ef5aea6f8b3f2be24355cd1fb835cd80fb4e3d388b24d5a5');
    assert.equal(verity(composefsImageV2(rsSimple())), 'a8fcd41f8b313bede69f462f2af0a38d64b99a6333f5df884ea9ab4037fac722');
    const dir = await tempDir();
    let written = 0;
    for (const v of goodVectors()) {
      const tree = parseDump(v.bytes, { strict: v.strict, source: v.name });
      // Format 2 names every external file by its digest, which these dumps leave out: a stand-in digest
      // per path (the layout does not depend on its value) lets the real trees' shapes be checked.
      const external = [...tree.walk()].filter((e) => e.type === 'file' && e.size > 0 && e.content?.kind !== 'bytes');
      if (external.some((e) => e.verity === undefined)) {
        assert.throws(
          () => composefsImageV2(tree),
          (err) => isLadingError(err, 'UNSUPPORTED_TREE') && /needs the fs-verity digest/.test(err.message),
        );
        for (const e of external) e.verity ??= sha256(Buffer.from(e.path));
      }
      // What composefs-rs's layout has no room for is refused, and only that: inline data of nearly a
      // block (a long symlink target, C's inline files up to 5000 bytes), a file over one 8 TiB chunk.
      const tooBig = [...tree.walk()].some(
        (e) => (e.linkTarget?.length ?? 0) > 3000 || (e.content?.kind === 'bytes' && e.size > 3000) || e.size > 2 ** 43,
      );
      let image: Buffer;
      try {
        image = composefsImageV2(tree);
      } catch (e) {
        assert.ok(tooBig && isLadingError(e, 'UNSUPPORTED_TREE') && /fit in one block|8 TiB/.test(e.message), `${v.name}: ${String(e)}`);
        continue;
      }
      await fsck(dir, `${v.name}.v2`, image);
      written++;
    }
    assert.equal(written, 7, `${written} vectors written as format 2`);
  });

  it('raises the format to 1 only for trees with whiteouts', () => {
    assert.equal(minimumFormatVersion(rsSimple()), 0);
    const t = rsSimple();
    t.set(makeEntry('wh', 'char', { rdev: 0 }));
    assert.equal(minimumFormatVersion(t), 1);
    const v0 = composefsImage(t, { formatVersion: 0 });
    const v1 = composefsImage(t, { formatVersion: 1 });
    assert.equal(v0.readUInt32LE(12), 0);
    assert.equal(v1.readUInt32LE(12), 1);
    // Version 1 marks the whiteout's directory opaque with "x" (trusted.overlay.overlay.opaque, user.overlay.opaque).
    assert.ok(v1.includes(Buffer.from('overlay.opaquex')) && !v0.includes(Buffer.from('overlay.opaquex')));
  });

  it('writes trees built in code: hardlinks, SHA-512 digests, large directories, long symlinks, shared xattrs', async () => {
    const dir = await tempDir();
    const t = new FileTree({
      mode: 0o755,
      mtime: 1700000000,
      xattrs: new Map([['security.selinux', Buffer.from('system_u:object_r:root_t:s0')]]),
    });
    const sel = new Map([['security.selinux', Buffer.from('system_u:object_r:usr_t:s0')]]);
    t.set(makeEntry('usr', 'directory', { mtime: 1700000000, xattrs: sel }));
    for (let i = 0; i < 700; i++) {
      t.set(
        makeEntry(`usr/file-with-a-longish-name-${i}`, 'file', {
          mtime: 1700000000 + (i % 3),
          size: 5000 + i,
          content: { kind: 'external' },
          verity: createHash('sha512').update(String(i)).digest('hex'),
          xattrs: sel,
        }),
      );
    }
    t.set(makeEntry('usr/hl', 'hardlink', { linkTarget: 'usr/file-with-a-longish-name-1' }));
    t.set(makeEntry('usr/long', 'symlink', { linkTarget: 'x'.repeat(4000) }));
    t.set(makeEntry('usr/big-uid', 'file', { uid: 100000, size: 3, content: { kind: 'bytes', data: Buffer.from('abc') } }));
    for (const version of [0, 1] as const) {
      const image = composefsImage(t, { formatVersion: version });
      await fsck(dir, `code-v${version}`, image);
      // The external files' metacopy xattr carries the SHA-512 digest (algorithm 2, 68 bytes).
      const d1 = Buffer.from(createHash('sha512').update('1').digest('hex'), 'hex');
      assert.ok(image.includes(Buffer.concat([Buffer.from([0, 68, 0, 2]), d1])));
      assert.ok(image.includes(Buffer.from(`/${d1.toString('hex').slice(0, 2)}/${d1.toString('hex').slice(2)}`)));
      assert.equal(composefsImage(t, { formatVersion: version }).equals(image), true, 'the same tree gives the same bytes');
    }
  });

  it('chunks external files as mkcomposefs does (ilog2 of size - 1, at least a block, at most 2^43)', () => {
    const reference = (size: bigint) => {
      let bits = 0;
      for (let v = size - 1n; v > 1n; v >>= 1n) bits++;
      let chunkBits = size === 1n ? 1 : bits + 1;
      chunkBits = Math.min(Math.max(chunkBits, 12), 43);
      return { chunkBits, chunkCount: Number((size + (1n << BigInt(chunkBits)) - 1n) >> BigInt(chunkBits)) };
    };
    for (const size of [
      1,
      2,
      3,
      4095,
      4096,
      4097,
      8192,
      8193,
      2 ** 31,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 32 + 1,
      2 ** 43,
      2 ** 43 + 1,
      9e15,
      2 ** 53,
    ]) {
      assert.deepEqual(chunking(size), reference(BigInt(size)), `size ${size}`);
    }
  });

  it('refuses trees mkcomposefs refuses', () => {
    const bad: [string, (t: FileTree) => void, RegExp][] = [
      [
        'a file over 1024 chunks of 8 TiB',
        (t) => t.set(makeEntry('f', 'file', { size: 2 ** 53 + 2, content: { kind: 'external' } })),
        /\/f: file of \d+ bytes is too large/,
      ],
      [
        'inline content over 5000 bytes',
        (t) => t.set(makeEntry('f', 'file', { size: 5001, content: { kind: 'bytes', data: new Uint8Array(5001) } })),
        /\/f: inline content of 5001 bytes/,
      ],
      [
        'inline content of the wrong size',
        (t) => t.set(makeEntry('f', 'file', { size: 4, content: { kind: 'bytes', data: new Uint8Array(3) } })),
        /inline content is 3 bytes but the size is 4/,
      ],
      ['a bad digest', (t) => t.set(makeEntry('f', 'file', { size: 100, verity: 'XYZ' })), /fs-verity digest XYZ is not 64 or 128/],
      ['an empty symlink', (t) => t.set(makeEntry('s', 'symlink', {})), /\/s: symlink has an empty target/],
      [
        'a hardlink to nowhere',
        (t) => t.set(makeEntry('h', 'hardlink', { linkTarget: 'nope' })),
        /\/h: hardlink target nope is not in the tree/,
      ],
      ['a hardlink to a directory', (t) => t.set(makeEntry('h', 'hardlink', { linkTarget: '' })), /\/h: hardlink to the directory/],
      [
        'too many xattr bytes',
        (t) => t.set(makeEntry('f', 'file', { xattrs: new Map([['user.a', new Uint8Array(32760)]]) })),
        /xattrs take 32785 bytes \(at most 32767\)/,
      ],
      ['a name over 255 bytes', (t) => t.set(makeEntry('n'.repeat(256), 'fifo')), /file name longer than 255 bytes/],
    ];
    for (const [what, add, pattern] of bad) {
      const t = new FileTree();
      add(t);
      assert.throws(
        () => composefsImage(t, { formatVersion: 0 }),
        (e) => isLadingError(e, 'UNSUPPORTED_TREE') && pattern.test(e.message),
        what,
      );
    }
  });
});
