/**
 * One description of a small root filesystem, built two ways: as files on disk (for HostRootView) and
 * as a FileTree with in-memory contents (for TreeRootView), so every bound-image case runs against both
 * views and must give the same answer.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HostRootView, type RootView, TreeRootView } from '../../src/boot/bound-images/root-view.js';
import { FileTree, makeEntry } from '../../src/fs/tree.js';
import { tempDir } from '../helpers/tmp.js';

export type RootSpec = Record<string, string | { link: string } | { dir: true }>;

/** Writes the spec under a fresh temp dir (removed after the test; call inside `it`). */
export async function hostRoot(spec: RootSpec): Promise<{ dir: string; view: HostRootView }> {
  const dir = await tempDir('lading-root-');
  for (const [path, what] of Object.entries(spec)) {
    const full = join(dir, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof what === 'string') await writeFile(full, what);
    else if ('link' in what) await symlink(what.link, full);
    else await mkdir(full, { recursive: true });
  }
  return { dir, view: new HostRootView(dir) };
}

export function treeOf(spec: RootSpec): FileTree {
  const tree = new FileTree();
  for (const [path, what] of Object.entries(spec)) {
    if (typeof what === 'string') {
      const data = new TextEncoder().encode(what);
      tree.set(makeEntry(path, 'file', { size: data.byteLength, content: { kind: 'bytes', data } }));
    } else if ('link' in what) tree.set(makeEntry(path, 'symlink', { linkTarget: what.link }));
    else tree.set(makeEntry(path, 'directory'));
  }
  return tree;
}

export function treeRoot(spec: RootSpec): RootView {
  return new TreeRootView(treeOf(spec), 'test image');
}

/** Both views of one spec, named for test titles. */
export async function bothRoots(spec: RootSpec): Promise<[string, RootView][]> {
  return [
    ['host directory', (await hostRoot(spec)).view],
    ['flattened tree', treeRoot(spec)],
  ];
}
