/** The in-memory file tree: path normalisation and lookups that must stay right after removals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLadingError } from '../../src/errors.js';
import { FileTree, makeEntry, normalizePath } from '../../src/fs/tree.js';

describe('normalizePath', () => {
  it('turns archive names into tree form and refuses traversal and NUL', () => {
    const cases: [string, string][] = [
      ['a/b', 'a/b'],
      ['/a/b', 'a/b'],
      ['a//b', 'a/b'],
      ['./a', 'a'],
      ['a/.', 'a'],
      ['a/./b', 'a/b'],
      ['a/', 'a'],
      ['.', ''],
      ['', ''],
      ['.a/b', '.a/b'],
      ['a/..b', 'a/..b'],
      ['...', '...'],
    ];
    for (const [input, want] of cases) assert.equal(normalizePath(input), want, JSON.stringify(input));
    for (const bad of ['..', 'a/..', '../a', 'a/../b', 'a\0b']) {
      assert.throws(
        () => normalizePath(bad),
        (e) => isLadingError(e) && e.code === 'UNSAFE_PATH',
        JSON.stringify(bad),
      );
    }
  });
});

describe('FileTree lookups', () => {
  it('finds nothing stale after a directory is removed, cleared or replaced', () => {
    const tree = new FileTree();
    tree.set(makeEntry('d/sub/f', 'file'));
    assert.equal(tree.get('d/sub/f')?.type, 'file');
    tree.delete('d/sub');
    assert.equal(tree.get('d/sub/f'), undefined);
    assert.equal(tree.get('d/sub'), undefined);
    tree.set(makeEntry('d/sub/g', 'file'));
    assert.equal(tree.get('d/sub/g')?.type, 'file');
    tree.clearDirectory('d');
    assert.equal(tree.get('d/sub/g'), undefined);
    tree.set(makeEntry('d/sub/h', 'file'));
    tree.set(makeEntry('d/sub', 'symlink', { linkTarget: '/x' }));
    assert.equal(tree.get('d/sub/h'), undefined);
    assert.equal(tree.get('d/sub')?.type, 'symlink');
    assert.throws(
      () => tree.set(makeEntry('d/sub/i', 'file')),
      (e) => isLadingError(e) && e.code === 'UNSAFE_PATH',
    );
    assert.equal(tree.size, 3);
  });
});
