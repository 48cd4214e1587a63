/**
 * The in-memory file tree that build, release, bound images and composefs all share: what a layer
 * stack or a build spec describes, without the bytes. Content is a reference (a host file, a range of
 * a layer, bytes held for small files, or an external object known by digest) so a 30k-file image
 * costs metadata only.
 *
 * Paths are relative to the root, '/'-separated, without a leading slash; the root itself is ''.
 * Children are ordered by the bytes of their UTF-8 names (what strcmp, GNU tar --sort=name and
 * mkcomposefs use), never by locale.
 */
import { LadingError } from '../errors.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'socket';

/** Where a regular file's bytes are. `size` is always the file's size. */
export type Content =
  /** Held in memory (small files: unit files, release manifests, inline composefs data). */
  | { kind: 'bytes'; data: Uint8Array }
  /** A file on the host, read when the tree is written (its size and mtime are checked then). */
  | { kind: 'file'; path: string }
  /** A range of a layer's uncompressed tar stream, the layer named by its compressed blob digest. */
  | { kind: 'layer'; layer: string; offset: number }
  /** Not present; known only by its fs-verity digest (a composefs object, a dump file's content). */
  | { kind: 'external' };

export interface Entry {
  path: string;
  type: EntryType;
  /** Permission bits and setuid/setgid/sticky (07777); never the file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (integer; may be negative). */
  mtime: number;
  /** Nanoseconds within the second, 0..999999999. */
  mtimeNsec: number;
  /** Extended attributes by full name (`user.x`, `security.capability`, `trusted.overlay.*`). */
  xattrs: Map<string, Uint8Array>;
  /** Regular files: their size in bytes. 0 for every other type. */
  size: number;
  /** Regular files: where the bytes are (absent when nobody needed them). */
  content?: Content;
  /** Regular files: the fs-verity digest (hex) of the content, when computed or declared. */
  verity?: string;
  /** Symlinks: the target as written. Hardlinks: the path (tree form, no leading slash) of the entry linked to. */
  linkTarget?: string;
  /** Character and block devices: the device number (makedev(major, minor)). */
  rdev?: number;
  /**
   * Non-directories: the link count to record (a dump file's NLINK). When absent, writers count the
   * entry plus the hardlinks that point to it. Directories always get 2 + their subdirectories.
   */
  nlink?: number;
  /**
   * Regular files whose content is external (composefs): the backing path overlayfs redirects to
   * (`xx/yyyy…`, a dump file's PAYLOAD); '' for none. When absent it is derived from `verity`.
   */
  payload?: string;
}

/** What a new entry gets for every field the caller does not give. */
export function makeEntry(path: string, type: EntryType, fields: Partial<Omit<Entry, 'path' | 'type'>> = {}): Entry {
  return {
    path,
    type,
    mode: fields.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
    uid: fields.uid ?? 0,
    gid: fields.gid ?? 0,
    mtime: fields.mtime ?? 0,
    mtimeNsec: fields.mtimeNsec ?? 0,
    xattrs: fields.xattrs ?? new Map(),
    size: fields.size ?? 0,
    ...(fields.content !== undefined && { content: fields.content }),
    ...(fields.verity !== undefined && { verity: fields.verity }),
    ...(fields.linkTarget !== undefined && { linkTarget: fields.linkTarget }),
    ...(fields.rdev !== undefined && { rdev: fields.rdev }),
    ...(fields.nlink !== undefined && { nlink: fields.nlink }),
    ...(fields.payload !== undefined && { payload: fields.payload }),
  };
}

/** Orders names by their UTF-8 bytes. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 code units order like UTF-8 bytes except where a surrogate (a character above U+FFFF)
  // meets U+E000..U+FFFF: compare in place up to the first difference, and encode only then.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if ((x < 0xd800 || x > 0xdfff) && (y < 0xd800 || y > 0xdfff)) return x < y ? -1 : 1;
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  }
  return a.length < b.length ? -1 : 1;
}

/**
 * Turns a path as found in a tar header, a spec or a dump file into tree form: no leading '/' or './',
 * no empty or '.' components, no trailing '/'. A '..' component is refused (path traversal), as is a NUL.
 */
export function normalizePath(input: string): string {
  if (isTreeForm(input)) return input; // what real layers hold: checked without splitting
  if (input.includes('\0')) throw new LadingError('UNSAFE_PATH', `path contains a NUL byte: ${JSON.stringify(input)}`);
  const parts: string[] = [];
  for (const part of input.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new LadingError('UNSAFE_PATH', `path escapes the root: ${input}`, { path: input });
    parts.push(part);
  }
  return parts.join('/');
}

/** No NUL, no empty, '.' or '..' component, no leading or trailing '/'. */
function isTreeForm(path: string): boolean {
  let start = 0; // of the current component
  for (let i = 0; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0) return false;
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0 || (path.charCodeAt(start) === 0x2e && (len === 1 || (len === 2 && path.charCodeAt(start + 1) === 0x2e)))) return false;
    start = i + 1;
  }
  return path.length > 0;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

interface TreeNode {
  entry: Entry;
  /** Present on directories only. */
  children?: Map<string, TreeNode>;
}

/**
 * A rooted tree of entries. Setting an entry whose parents are missing creates them as directories
 * with `parentDefaults` (tar layers often omit them). Replacing a directory by a directory keeps its
 * children (a later tar entry updates the metadata); replacing it by anything else drops the subtree.
 */
export class FileTree {
  private readonly rootNode: TreeNode;
  private count = 1;
  /**
   * The directory most recently looked up by path: a layer lists a directory's entries one after
   * another, so most lookups ask for it again. Dropped whenever anything is removed.
   */
  private lastDir: { path: string; node: TreeNode } | undefined;

  constructor(root: Partial<Omit<Entry, 'path' | 'type'>> = {}) {
    this.rootNode = { entry: makeEntry('', 'directory', root), children: new Map() };
  }

  get root(): Entry {
    return this.rootNode.entry;
  }

  /** Number of entries, the root included. */
  get size(): number {
    return this.count;
  }

  get(path: string): Entry | undefined {
    return this.node(path)?.entry;
  }

  has(path: string): boolean {
    return this.node(path) !== undefined;
  }

  /** Adds or replaces `entry` (its path must be in tree form). */
  set(entry: Entry, parentDefaults: Partial<Omit<Entry, 'path' | 'type'>> = {}): void {
    if (entry.path === '') {
      if (entry.type !== 'directory') throw new LadingError('UNSAFE_PATH', 'the root must be a directory');
      this.rootNode.entry = entry;
      return;
    }
    const parent = this.ensureDirectory(parentOf(entry.path), parentDefaults);
    const name = baseName(entry.path);
    const existing = parent.children!.get(name);
    if (existing) {
      if (existing.children && entry.type === 'directory') {
        existing.entry = entry;
        return;
      }
      this.count -= countNodes(existing);
      this.lastDir = undefined;
    }
    parent.children!.set(name, entry.type === 'directory' ? { entry, children: new Map() } : { entry });
    this.count += 1;
  }

  /** Removes `path` and everything under it; false when it was not there. The root cannot be removed. */
  delete(path: string): boolean {
    if (path === '') throw new LadingError('UNSAFE_PATH', 'the root cannot be removed');
    const parent = this.node(parentOf(path));
    const name = baseName(path);
    const node = parent?.children?.get(name);
    if (!node) return false;
    parent!.children!.delete(name);
    this.count -= countNodes(node);
    this.lastDir = undefined;
    return true;
  }

  /** Removes everything under the directory `path`, keeping the directory (an opaque whiteout). */
  clearDirectory(path: string): void {
    const node = this.node(path);
    if (!node?.children) return;
    for (const child of node.children.values()) this.count -= countNodes(child);
    node.children.clear();
    this.lastDir = undefined;
  }

  /** Names directly under the directory `path`, in byte order; undefined if it is not a directory. */
  children(path: string): string[] | undefined {
    const node = this.node(path);
    return node?.children ? [...node.children.keys()].sort(compareNames) : undefined;
  }

  /** Every entry, depth first, parents before children, siblings in byte order; the root first. */
  *walk(from = ''): Generator<Entry> {
    const start = this.node(from);
    if (!start) return;
    const stack: TreeNode[] = [start];
    while (stack.length > 0) {
      const node = stack.pop()!;
      yield node.entry;
      if (node.children) {
        const names = [...node.children.keys()].sort(compareNames);
        for (let i = names.length - 1; i >= 0; i--) stack.push(node.children.get(names[i]!)!);
      }
    }
  }

  /**
   * Calls `fn` for every entry in walk order with its name and what `fn` returned for its directory
   * (undefined for the root): lets a caller build a parallel structure without looking paths up.
   */
  visit<T>(fn: (entry: Entry, name: string, parent: T | undefined) => T): void {
    const stack: { node: TreeNode; name: string; parent: T | undefined }[] = [{ node: this.rootNode, name: '', parent: undefined }];
    while (stack.length > 0) {
      const { node, name, parent } = stack.pop()!;
      const result = fn(node.entry, name, parent);
      if (node.children) {
        const names = [...node.children.keys()].sort(compareNames);
        for (let i = names.length - 1; i >= 0; i--) stack.push({ node: node.children.get(names[i]!)!, name: names[i]!, parent: result });
      }
    }
  }

  private node(path: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.rootNode;
    if (path === '') return node;
    const last = this.lastDir;
    if (last !== undefined) {
      if (path === last.path) return last.node;
      // A child of the cached directory: one map lookup.
      if (path.length > last.path.length && path.startsWith(last.path) && path.charCodeAt(last.path.length) === 0x2f) {
        const rest = path.slice(last.path.length + 1);
        if (!rest.includes('/')) return last.node.children?.get(rest);
      }
    }
    for (const part of path.split('/')) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    if (node.children) this.lastDir = { path, node };
    return node;
  }

  private ensureDirectory(path: string, defaults: Partial<Omit<Entry, 'path' | 'type'>>): TreeNode {
    let node = this.rootNode;
    if (path === '') return node;
    if (this.lastDir?.path === path) return this.lastDir.node;
    let sofar = '';
    for (const part of path.split('/')) {
      sofar = sofar === '' ? part : `${sofar}/${part}`;
      let next = node.children!.get(part);
      if (!next) {
        next = { entry: makeEntry(sofar, 'directory', defaults), children: new Map() };
        node.children!.set(part, next);
        this.count += 1;
      } else if (!next.children) {
        throw new LadingError('UNSAFE_PATH', `${sofar} is not a directory, so ${path} cannot be created under it`, { path });
      }
      node = next;
    }
    this.lastDir = { path, node };
    return node;
  }
}

function countNodes(node: TreeNode): number {
  let n = 1;
  if (node.children) for (const c of node.children.values()) n += countNodes(c);
  return n;
}
