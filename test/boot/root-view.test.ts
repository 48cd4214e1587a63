/**
 * Path resolution inside a root, as openat2(RESOLVE_IN_ROOT): the same answers from a directory on disk
 * and from a FileTree, and no link ever leads out of the root.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_SYMLINKS, resolveInRoot, type RootView, TreeRootView } from '../../src/boot/bound-images/root-view.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { tempDir } from '../helpers/tmp.js';
import { bothRoots, hostRoot, type RootSpec } from './root-builder.js';

const SPEC: RootSpec = {
  'etc/passwd': 'inside\n',
  'usr/share/data/file.txt': 'data\n',
  'usr/lib/abs': { link: '/usr/share/data' },
  'usr/lib/rel': { link: '../share/data' },
  'usr/lib/up': { link: '../../../../../../etc/passwd' },
  'usr/lib/rootlink': { link: '/' },
  'usr/lib/dotdot-after': { link: '/usr/lib/abs/../data/file.txt' },
  'usr/lib/dangling': { link: '/nowhere/at/all' },
  'usr/lib/empty-parent': { link: 'abs/missing' },
  'usr/lib/through-file': { link: '/etc/passwd/x' },
  'loop/a': { link: 'b' },
  'loop/b': { link: 'a' },
  'loop/self': { link: 'self' },
};

async function resolve(view: RootView, path: string, followFinal = true): Promise<string> {
  const r = await resolveInRoot(view, path, { followFinal });
  if (!r.ok) return `${r.errno} at ${r.at}`;
  return r.stat === undefined ? `absent ${r.path}` : `${r.stat.type} ${r.path}`;
}

describe('resolveInRoot', () => {
  it('gives the same answers for a host directory and a flattened tree', async () => {
    const cases: [string, string][] = [
      ['usr/lib/abs/file.txt', 'file usr/share/data/file.txt'],
      ['/usr/lib/rel/file.txt', 'file usr/share/data/file.txt'],
      ['usr/lib/up', 'file etc/passwd'],
      ['../../../etc/passwd', 'file etc/passwd'],
      ['usr/lib/rootlink/etc/passwd', 'file etc/passwd'],
      ['usr/lib/rootlink/../../..', 'directory '],
      ['usr/lib/dotdot-after', 'file usr/share/data/file.txt'],
      ['usr/lib/dangling', 'ENOENT at nowhere'],
      ['usr/lib/empty-parent', 'absent usr/share/data/missing'],
      ['usr/lib/through-file', 'ENOTDIR at etc/passwd'],
      ['usr/share/nope/x', 'ENOENT at usr/share/nope'],
      ['loop/a', 'ELOOP at loop/a'],
      ['loop/self/x', 'ELOOP at loop/self'],
      ['./usr//share/./data/', 'directory usr/share/data'],
    ];
    for (const [name, view] of await bothRoots(SPEC)) {
      for (const [path, expected] of cases) assert.equal(await resolve(view, path), expected, `${name}: ${path}`);
      assert.equal(await resolve(view, 'usr/lib/abs', false), 'symlink usr/lib/abs', `${name}: not following the last link`);
    }
  });

  it('never reads outside a host root, even through absolute links', async () => {
    const outside = await tempDir();
    await writeFile(join(outside, 'secret'), 'outside\n');
    const { view } = await hostRoot({
      'etc/passwd': 'inside\n',
      escape: { link: join(outside, 'secret') },
      up: { link: '../../../../../../../../etc/passwd' },
    });
    assert.equal(await resolve(view, 'escape'), `ENOENT at ${outside.slice(1).split('/')[0]}`);
    const up = await resolveInRoot(view, 'up', { followFinal: true });
    assert.ok(up.ok);
    assert.equal(up.path, 'etc/passwd');
    assert.equal(Buffer.from(await view.readFile(up.path, 100)).toString(), 'inside\n');
  });

  it(`follows at most ${MAX_SYMLINKS} links in one resolution`, async () => {
    const spec: RootSpec = { target: 'ok' };
    for (let i = 0; i < 41; i++) spec[`l${i}`] = { link: i === 0 ? 'target' : `l${i - 1}` };
    for (const [name, view] of await bothRoots(spec)) {
      assert.equal(await resolve(view, 'l39'), 'file target', name);
      assert.equal(await resolve(view, 'l40'), 'ELOOP at l0', name);
    }
  });

  it('treats a hard link in a tree as the file it links to', async () => {
    const tree = new FileTree();
    const data = Buffer.from('hello');
    tree.set(makeEntry('a/file', 'file', { size: 5, content: { kind: 'bytes', data } }));
    tree.set(makeEntry('b/hard', 'hardlink', { linkTarget: 'a/file' }));
    const view = new TreeRootView(tree, 'tree');
    assert.equal(await resolve(view, 'b/hard'), 'file b/hard');
    assert.equal(Buffer.from(await view.readFile('b/hard', 10)).toString(), 'hello');
    await assert.rejects(view.readFile('b/hard', 4), /over the 4-byte limit/);
  });
});
