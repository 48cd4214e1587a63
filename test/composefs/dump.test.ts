/** composefs-dump(5): the parser accepts what mkcomposefs accepts, refuses what it refuses, and the writer round-trips. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDump, writeDump } from '../../src/composefs/dump.js';
import { composefsImage } from '../../src/composefs/erofs-writer.js';
import { isLadingError } from '../../src/errors.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { goodVectors, LENIENT, readVectorBytes, shouldFailVectors } from './vectors.js';

const parse = (text: string, strict = true) => parseDump(Buffer.from(text, 'latin1'), { strict, source: 't.dump' });
const ROOT = '/ 4096 40755 2 0 0 0 0.0 - - -\n';

function rejects(text: string, pattern: RegExp, strict = true): void {
  assert.throws(
    () => parse(text, strict),
    (e) => isLadingError(e, 'INVALID_DUMP') && pattern.test(e.message),
  );
}

/** Why each should-fail vector must fail (parsed leniently, so the missing final newlines do not mask it). */
const REASONS: Record<string, RegExp> = {
  'should-fail-big-inline.dump': /line 2: inline content of 5004 bytes exceeds the maximum of 5000/,
  'should-fail-dir-hardlink.dump': /line 2: directories can't be hardlinked/,
  'should-fail-dot-name.dump': /line 2: invalid \. or \.\. in path \/\.$/,
  'should-fail-dotdot-name.dump': /line 2: invalid \. or \.\. in path \/\.\.$/,
  'should-fail-empty-link-name.dump': /line 2: symlink \/nolinkname has no target/,
  'should-fail-empty-name.dump': /line 2: empty file name in path \/\//,
  'should-fail-empty-xattr-key.dump': /line 2: empty xattr name/,
  'should-fail-honggfuzz-long-xattr.dump': /line 1: xattrs exceed 32767 bytes for one file/,
  'should-fail-long-link.dump': /line 2: symlink target of \/link is 7248 bytes \(at most 4095\)/,
  'should-fail-long-xattr-key.dump': /line 2: too many xattrs/,
  'should-fail-long-xattr-value.dump': /line 2: invalid mode 644 \(no valid file type\)/,
  'should-fail-no-ftype.dump': /line 2: invalid mode 0 \(no valid file type\)/,
  'should-fail-self-hardlink.dump': /line 2: self-referential hardlink \/037blockdev/,
};

describe('composefs dump parser', () => {
  it('reads every upstream vector and writes the canonical ones back byte for byte', () => {
    const vectors = goodVectors();
    assert.equal(vectors.length, 14);
    for (const v of vectors) {
      const tree = parseDump(v.bytes, { strict: v.strict, source: v.name });
      assert.ok(tree.size >= 2, v.name);
      // The lenient three hold fields upstream drops (an RDEV on a directory, a wrong symlink SIZE).
      if (!LENIENT.has(v.name)) assert.equal(writeDump(tree), v.bytes.toString('latin1'), `${v.name} does not round-trip`);
    }
  });

  it('reads the vectors upstream reads leniently only when lenient', () => {
    rejects(readVectorBytes('no-newline.dump').toString('latin1'), /line 1: non-zero RDEV on a file that is not a device/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0.0 - - -`, /line 2: missing newline at the end of the file/);
    rejects(
      readVectorBytes('longlink.dump').toString('latin1'),
      /line 2: symlink \/big-but-not-max-link has SIZE 5 but its target is 4070 bytes/,
    );
    rejects(ROOT.replace(' 0 0.0', ' 10 0.0'), /line 1: non-zero RDEV on a file that is not a device/);
    assert.equal(parse(ROOT.replace(' 0 0.0', ' 10 0.0'), false).root.rdev, undefined);
  });

  it('refuses every should-fail vector, naming the line and the reason', () => {
    const names = shouldFailVectors();
    assert.equal(names.length, 14);
    for (const name of names) {
      const bytes = readVectorBytes(name);
      if (name === 'should-fail-too-big.dump') {
        // Valid text; mkcomposefs refuses it when it writes the image.
        const tree = parseDump(bytes, { strict: true });
        assert.throws(
          () => composefsImage(tree, { formatVersion: 0 }),
          (e) => isLadingError(e, 'UNSUPPORTED_TREE') && /\/bigfile: file of 9500000000000000 bytes is too large/.test(e.message),
        );
        continue;
      }
      const reason = REASONS[name];
      assert.ok(reason, `no expected reason for ${name}`);
      assert.throws(
        () => parseDump(bytes, { strict: false, source: name }),
        (e) => isLadingError(e, 'INVALID_DUMP') && e.message.startsWith(`${name}, line `) && reason.test(e.message),
        name,
      );
      assert.throws(
        () => parseDump(bytes, { strict: true, source: name }),
        (e) => isLadingError(e, 'INVALID_DUMP'),
        name,
      );
    }
  });

  it('maps fields onto the file tree', () => {
    const tree = parse(
      ROOT +
        '/a\\x20b 5 100640 1 1000 1001 0 1695368732.385062094 - hello - user.x=1\\x3d2 trusted.y=\n' +
        '/ext 259 100644 1 0 0 0 1.0 35/d02f - 35d02f81325122d77ec1d11baba655bc9bf8a891ab26119a41c50fa03ddfb408\n' +
        '/dev 0 20600 1 0 0 259 0.0 - - -\n' +
        '/lnk 3 120777 1 0 0 0 0.0 a/b - -\n' +
        '/hl 0 @100644 0 0 0 0 0.0 /ext - -\n',
    );
    const a = tree.get('a b')!;
    assert.equal(a.type, 'file');
    assert.equal(a.mode, 0o640);
    assert.deepEqual([a.uid, a.gid, a.mtime, a.mtimeNsec], [1000, 1001, 1695368732, 385062094]);
    assert.deepEqual(a.content, { kind: 'bytes', data: Buffer.from('hello') });
    assert.deepEqual(
      [...a.xattrs].map(([k, v]) => [k, Buffer.from(v).toString()]),
      [
        ['user.x', '1=2'],
        ['trusted.y', ''],
      ],
    );
    const ext = tree.get('ext')!;
    assert.deepEqual(ext.content, { kind: 'external' });
    assert.equal(ext.payload, '35/d02f');
    assert.equal(ext.verity, '35d02f81325122d77ec1d11baba655bc9bf8a891ab26119a41c50fa03ddfb408');
    assert.equal(tree.get('dev')!.rdev, 259);
    assert.equal(tree.get('lnk')!.linkTarget, 'a/b');
    assert.deepEqual([tree.get('hl')!.type, tree.get('hl')!.linkTarget], ['hardlink', 'ext']);
    assert.equal(
      parseDump(Buffer.from(writeDump(tree)), { strict: true })
        .get('a b')!
        .xattrs.get('user.x')!
        .toString(),
      '1=2',
    );
  });

  it('follows hardlink chains and refuses cycles, missing targets and directories', () => {
    const files = ROOT + '/f 1 100644 1 0 0 0 0.0 - x -\n';
    const chain = parse(`${files}/h2 0 @100644 0 0 0 0 0.0 /h1 - -\n/h1 0 @100644 0 0 0 0 0.0 /f - -\n`);
    assert.equal(chain.get('h2')!.linkTarget, 'f');
    rejects(`${files}/h1 0 @100644 0 0 0 0 0.0 /h2 - -\n/h2 0 @100644 0 0 0 0 0.0 /h1 - -\n`, /line 3: hardlink \/h1 is part of a cycle/);
    rejects(`${files}/h 0 @100644 0 0 0 0 0.0 /nope - -\n`, /line 3: no target at \/nope for hardlink \/h/);
    rejects(`${files}/h 0 @100644 0 0 0 0 0.0 / - -\n`, /line 3: hardlink \/h points to the directory \//);
    rejects(`${files}/h 0 @100644 0 0 0 0 0.0 - - -\n`, /line 3: hardlink \/h has no target path/);
  });

  it('refuses malformed lines with the line number', () => {
    rejects('', /no files in the dump file/);
    rejects('/a 0 100644 1 0 0 0 0.0 - - -\n', /line 1: \/a comes before the root/);
    rejects(ROOT + ROOT, /line 2: the root appears twice/);
    rejects('/ 0 100644 1 0 0 0 0.0 - - -\n', /line 1: the root must be a directory/);
    rejects(`${ROOT}/a/b 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: parent directory missing for \/a\/b/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0.0 - - -\n/f/g 0 100644 1 0 0 0 0.0 - - -\n`, /line 3: parent of \/f\/g is not a directory/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - -\n`, /line 3: path \/f already exists/);
    rejects(`${ROOT}/f x 100644 1 0 0 0 0.0 - - -\n`, /line 2: invalid size "x"/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0 - - -\n`, /line 2: invalid mtime nanoseconds ""/);
    rejects(`${ROOT}/f 0 100644 1 0 zz 0 0.0 - - -\n`, /line 2: invalid gid "zz"/);
    rejects(`${ROOT}/f 0 100648 1 0 0 0 0.0 - - -\n`, /line 2: invalid mode "100648"/);
    rejects(`${ROOT}/f 2 100644 1 0 0 0 0.0 - abc -\n`, /line 2: content is 3 bytes but SIZE says 2/);
    rejects(`${ROOT}/f\\q 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: unsupported escape \\q/);
    rejects(`${ROOT}/f\\x4 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: \\x needs two hex digits/);
    rejects(`${ROOT}/f\\ 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: a backslash ends the field/);
    rejects(`${ROOT}/f\0 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: invalid embedded NUL character at position 2/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0.0 - - - novalue\n`, /line 2: xattr without = between name and value/);
    rejects(`${ROOT}/f 0 100644 1 0 0 0 0.0 - - abc\n`, /line 2: DIGEST must be 64 or 128 hex digits/);
    rejects(`${ROOT}/${'n'.repeat(256)} 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: file name longer than 255 bytes/);
    rejects(`${ROOT}/\\xff 0 100644 1 0 0 0 0.0 - - -\n`, /line 2: the path is not valid UTF-8/);
    rejects(`${ROOT}\n`, /line 2: empty path/);
  });

  it('parses integers as strtoull does and keeps the last value of a repeated xattr', () => {
    const tree = parse(`${ROOT}/f 0 100644 1 +5 -1 0 0.0 - - - user.a=1 user.a=22\n`);
    const f = tree.get('f')!;
    assert.equal(f.uid, 5);
    assert.equal(f.gid, 0xffffffff);
    assert.equal(Buffer.from(f.xattrs.get('user.a')!).toString(), '22');
  });
});

describe('composefs dump writer', () => {
  it('writes a tree built in code, with nlink counted and payloads derived from digests', () => {
    const tree = new FileTree({ mode: 0o755, mtime: 5 });
    tree.set(makeEntry('d', 'directory', { mtime: 5 }));
    const verity = 'ab'.repeat(32);
    tree.set(
      makeEntry('d/big', 'file', {
        size: 100,
        content: { kind: 'external' },
        verity,
        xattrs: new Map([['user.k=', Buffer.from('v v\n')]]),
      }),
    );
    tree.set(makeEntry('d/link', 'hardlink', { linkTarget: 'd/big' }));
    tree.set(makeEntry('d/-', 'file', { size: 1, content: { kind: 'bytes', data: Buffer.from('-') } }));
    const text = writeDump(tree);
    assert.equal(
      text,
      [
        '/ 0 40755 3 0 0 0 5.0 - - -',
        '/d 0 40755 2 0 0 0 5.0 - - -',
        '/d/- 1 100644 1 0 0 0 0.0 - \\x2d -',
        `/d/big 100 100644 2 0 0 0 0.0 ab/${'ab'.repeat(31)} - ${verity} user.k\\x3d=v\\x20v\\n`,
        `/d/link 100 @100644 2 0 0 0 0.0 /d/big - ${verity} user.k\\x3d=v\\x20v\\n`,
        '',
      ].join('\n'),
    );
    const back = parseDump(Buffer.from(text), { strict: true });
    assert.equal(writeDump(back), text);
  });
});
