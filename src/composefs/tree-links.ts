/**
 * Hardlinks in a FileTree are entries that name the path holding the content (`linkTarget`). Emptying a
 * directory or giving one name of a file its own metadata must not lose the content its other names
 * share: composefs-rs keeps one leaf per inode and drops only the names, and these helpers give the same
 * result in the FileTree's representation (the first remaining name, in walk order, holds the file).
 */
import { type Entry, type FileTree } from '../fs/tree.js';

function isUnder(path: string, dir: string): boolean {
  return dir === '' ? path !== '' : path.startsWith(`${dir}/`);
}

/** Every hardlink entry, in walk order (parents first, siblings by bytes). */
function hardlinks(tree: FileTree): Entry[] {
  const out: Entry[] = [];
  for (const e of tree.walk()) if (e.type === 'hardlink') out.push(e);
  return out;
}

/** Moves the content held at `holder` to `links[0]` and points the other links there. */
function promote(tree: FileTree, holder: Entry, links: readonly Entry[]): void {
  const [first, ...rest] = links;
  if (first === undefined) return;
  tree.set({ ...holder, path: first.path });
  for (const l of rest) tree.set({ ...l, linkTarget: first.path });
}

/**
 * Empties the directory `dir` (kept, with its metadata). A file under it that also has names elsewhere
 * survives under those names.
 */
export function clearDirectoryKeepingLinks(tree: FileTree, dir: string): void {
  const links = hardlinks(tree);
  if (links.length > 0) {
    const outside = new Map<string, Entry[]>();
    for (const l of links) {
      const target = l.linkTarget ?? '';
      if (isUnder(l.path, dir) || !isUnder(target, dir)) continue;
      let group = outside.get(target);
      if (group === undefined) outside.set(target, (group = []));
      group.push(l);
    }
    for (const [holder, group] of outside) {
      const held = tree.get(holder);
      if (held !== undefined) promote(tree, held, group);
    }
  }
  tree.clearDirectory(dir);
}

/**
 * Gives the name `path` its own copy of the file it shares with other names (a hardlink broken), and
 * returns that entry. The other names keep sharing the original content.
 */
export function detachLink(tree: FileTree, path: string): Entry {
  const e = tree.get(path)!;
  if (e.type === 'hardlink') {
    const holder = tree.get(e.linkTarget ?? '')!;
    const own: Entry = { ...holder, path, xattrs: new Map(holder.xattrs) };
    tree.set(own);
    return own;
  }
  const group = hardlinks(tree).filter((l) => l.linkTarget === path);
  promote(tree, e, group);
  const own: Entry = { ...e, xattrs: new Map(e.xattrs) };
  tree.set(own);
  return own;
}
