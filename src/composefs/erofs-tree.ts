/**
 * The first half of the composefs EROFS writer: turns a FileTree into the node graph mkcomposefs
 * writes, with every rewrite it applies before layout, in its order. Existing `trusted.overlay.*`
 * xattrs are escaped, external files get `trusted.overlay.metacopy` (their fs-verity digest) and
 * `trusted.overlay.redirect`, user whiteouts (char 0/0) become escaped regular files, every directory
 * gets `.` and `..`, and the root gets `trusted.overlay.opaque=y` and the 256 whiteout stubs
 * `00`..`ff`. Then the nodes are put in breadth-first order, which is the inode order of the image.
 */
import { LadingError } from '../errors.js';
import type { Entry, FileTree } from '../fs/tree.js';
import { LIMITS, objectPath, TYPE_BITS, xattrBudget } from './dump.js';
import { MAX_NONINLINE_CHUNKS, BLOCK_BITS, CHUNK_FORMAT_BLKBITS_MASK } from './erofs-format.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export interface Xattr {
  key: string;
  value: Uint8Array;
  /** UTF-8 of `key`, for byte-order sorting. */
  keyBytes: Buffer;
  /**
   * Identity of the value among values of the same name: given where it is known cheaply (a
   * metacopy or redirect made from a digest is identified by the digest), else set by the layout
   * from the bytes when it counts shared xattrs.
   */
  id?: string;
}

// Images repeat a handful of xattr names thousands of times: encode each name once.
const keyCache = new Map<string, Buffer>();
export function xattr(key: string, value: Uint8Array, id?: string): Xattr {
  let keyBytes = keyCache.get(key);
  if (!keyBytes) {
    keyBytes = Buffer.from(key, 'utf8');
    if (keyCache.size < 10000) keyCache.set(key, keyBytes);
  }
  return id === undefined ? { key, value, keyBytes } : { key, value, keyBytes, id };
}

export interface Dirent {
  name: Buffer;
  node: CNode;
  /** A hardlink, `.` or `..`: the name points to a node that is written elsewhere. */
  link: boolean;
}

/** One inode as mkcomposefs sees it; `layout` is filled by erofs-layout.ts. */
export interface CNode {
  path: string;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  size: number;
  rdev: number;
  /** Regular files with inline data. */
  content?: Uint8Array;
  /** Symlink target, or an external file's backing path. */
  payload?: Buffer;
  /** External regular files: the fs-verity digest (hex) for `trusted.overlay.metacopy`. */
  verity?: string;
  /** Set when `payload` is the object path of `verity` (not given by a dump): the redirect is the digest's too. */
  payloadFromVerity?: boolean;
  xattrs: Xattr[];
  /** libcomposefs's running xattr budget for the node (see xattrBudget). */
  budget: number;
  children?: Dirent[];
  parent: CNode | undefined;
  /** Inode number: the index in breadth-first order, set by prepareTree. */
  ino: number;
}

export interface PreparedTree {
  root: CNode;
  /** Every node written as an inode, in breadth-first order (index = inode number). */
  nodes: CNode[];
  minMtime: number;
  minMtimeNsec: number;
  hasAcl: boolean;
}

const fail = (msg: string, path: string): never => {
  throw new LadingError('UNSUPPORTED_TREE', `${path === '' ? '/' : `/${path}`}: ${msg}`, { path });
};

/** mkcomposefs's chunking of an external file: as few chunks as possible, each at least one block. */
export function chunking(size: number): { chunkBits: number; chunkCount: number } {
  // The bit length of size - 1 (upstream's ilog2 + 1); Math.log2 may round near powers of two, so settle it.
  let chunkBits = size <= 0x100000000 ? 32 - Math.clz32(size - 1) : Math.floor(Math.log2(size - 1)) + 1;
  while (chunkBits > 1 && 2 ** (chunkBits - 1) >= size) chunkBits--;
  while (2 ** chunkBits < size) chunkBits++;
  if (chunkBits < BLOCK_BITS) chunkBits = BLOCK_BITS;
  if (chunkBits - BLOCK_BITS > CHUNK_FORMAT_BLKBITS_MASK) chunkBits = CHUNK_FORMAT_BLKBITS_MASK + BLOCK_BITS;
  return { chunkBits, chunkCount: Math.ceil(size / 2 ** chunkBits) };
}

/** Adds or replaces an xattr, keeping libcomposefs's budget and limits. */
export function setXattr(node: CNode, key: string, value: Uint8Array, id?: string): void {
  const keyLen = Buffer.byteLength(key);
  if (keyLen === 0 || keyLen > LIMITS.xattrNameMax) fail(`xattr name ${key} must be 1 to 255 bytes`, node.path);
  if (value.length > LIMITS.xattrValueMax) fail(`xattr ${key} has a value over 65535 bytes`, node.path);
  const i = node.xattrs.findIndex((x) => x.key === key);
  if (i >= 0) {
    const old = node.xattrs[i]!;
    node.xattrs.splice(i, 1);
    node.budget = node.xattrs.length > 0 ? node.budget - (7 + keyLen + old.value.length) : 0;
  }
  const cost = 7 + keyLen + value.length + (node.xattrs.length === 0 ? 12 : 0);
  if (node.budget + cost > LIMITS.externalXattrMax) fail(`xattrs exceed ${LIMITS.externalXattrMax} bytes (adding ${key})`, node.path);
  node.budget += cost;
  node.xattrs.push(xattr(key, value, id));
}

function makeNode(e: Entry, parent: CNode | undefined): CNode {
  if (e.type === 'hardlink') throw new Error('hardlinks are dirents, not nodes');
  const node: CNode = {
    path: e.path,
    mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
    nlink: e.nlink ?? 1,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    mtimeNsec: e.mtimeNsec,
    size: e.type === 'directory' ? 0 : e.size,
    rdev: e.type === 'char' || e.type === 'block' ? (e.rdev ?? 0) : 0,
    xattrs: [],
    budget: 0,
    parent,
    ino: -1,
  };
  for (const [key, value] of e.xattrs) {
    const len = Buffer.byteLength(key);
    if (len === 0 || len > LIMITS.xattrNameMax || key.includes('\0'))
      fail(`xattr name ${JSON.stringify(key)} must be 1 to 255 bytes without NUL`, e.path);
    if (value.length > LIMITS.xattrValueMax) fail(`xattr ${key} has a value over 65535 bytes`, e.path);
    node.xattrs.push(xattr(key, value));
  }
  node.budget = xattrBudget(e.xattrs);
  if (node.budget > LIMITS.externalXattrMax) fail(`xattrs take ${node.budget} bytes (at most ${LIMITS.externalXattrMax})`, e.path);
  if (e.type === 'symlink') {
    const target = Buffer.from(e.linkTarget ?? '', 'utf8');
    if (target.length === 0) fail('symlink has an empty target', e.path);
    if (target.length >= LIMITS.pathMax) fail(`symlink target is ${target.length} bytes (at most 4095)`, e.path);
    node.payload = target;
    node.size = target.length;
  } else if (e.type === 'file') {
    regularContent(node, e);
  }
  return node;
}

/** Lowercase hex of a SHA-256 or SHA-512 size, checked without a regex (one per file adds up). */
function isVerityHex(s: string): boolean {
  if (s.length !== 64 && s.length !== 128) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function regularContent(node: CNode, e: Entry): void {
  if (e.size === 0) return;
  if (e.content?.kind === 'bytes') {
    if (e.content.data.length !== e.size) fail(`inline content is ${e.content.data.length} bytes but the size is ${e.size}`, e.path);
    if (e.size > LIMITS.inlineContentMax) fail(`inline content of ${e.size} bytes (at most ${LIMITS.inlineContentMax})`, e.path);
    node.content = e.content.data;
    return;
  }
  if (e.verity !== undefined && !isVerityHex(e.verity)) fail(`fs-verity digest ${e.verity} is not 64 or 128 lowercase hex digits`, e.path);
  // One chunk holds up to 2^(12 + 31) bytes: only larger files need counting.
  if (e.size > 2 ** (BLOCK_BITS + CHUNK_FORMAT_BLKBITS_MASK) && chunking(e.size).chunkCount > MAX_NONINLINE_CHUNKS)
    fail(`file of ${e.size} bytes is too large for a composefs image`, e.path);
  const payload = e.payload ?? (e.verity !== undefined ? objectPath(e.verity) : '');
  if (Buffer.byteLength(payload) >= LIMITS.pathMax) fail('payload is 4096 bytes or more', e.path);
  if (payload !== '') node.payload = Buffer.from(payload, 'utf8');
  if (e.verity !== undefined) node.verity = e.verity;
  if (e.verity !== undefined && e.payload === undefined) node.payloadFromVerity = true;
}

/**
 * Builds the node graph: nodes for everything but hardlinks, which become dirents to their targets.
 * One walk of the tree (parents first, siblings in byte order) gives every directory its sorted dirents.
 */
function buildNodes(tree: FileTree): CNode {
  // Hardlink targets are found by their entry; the map is made only when there are links.
  const entries: Entry[] = [];
  const nodes: CNode[] = [];
  const pendingLinks: { dirent: Dirent; target: string; path: string }[] = [];
  let root: CNode | undefined;
  tree.visit<CNode | undefined>((e, name, dir) => {
    if (dir === undefined) {
      root = makeNode(e, undefined);
      root.children = [];
      entries.push(e);
      nodes.push(root);
      return root;
    }
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > LIMITS.nameMax) fail('file name longer than 255 bytes', e.path);
    if (e.type === 'hardlink') {
      const dirent: Dirent = { name: nameBytes, node: dir, link: true };
      pendingLinks.push({ dirent, target: e.linkTarget ?? '', path: e.path });
      dir.children!.push(dirent);
      return undefined;
    }
    const node = makeNode(e, dir);
    if (e.type === 'directory') node.children = [];
    entries.push(e);
    nodes.push(node);
    dir.children!.push({ name: nameBytes, node, link: false });
    return node;
  });
  const linkCount = new Map<CNode, number>();
  const byEntry = new Map<Entry, CNode>();
  if (pendingLinks.length > 0) entries.forEach((e, i) => byEntry.set(e, nodes[i]!));
  for (const link of pendingLinks) {
    const seen = new Set<string>([link.path]);
    let targetPath = link.target;
    let target = tree.get(targetPath);
    while (target?.type === 'hardlink' && !seen.has(targetPath)) {
      seen.add(targetPath);
      targetPath = target.linkTarget ?? '';
      target = tree.get(targetPath);
    }
    const node = target === undefined ? undefined : byEntry.get(target);
    if (!target || !node || target.type === 'hardlink') fail(`hardlink target ${link.target} is not in the tree`, link.path);
    if (target!.type === 'directory') fail(`hardlink to the directory ${link.target}`, link.path);
    link.dirent.node = node!;
    linkCount.set(node!, (linkCount.get(node!) ?? 0) + 1);
  }
  for (const [node, count] of linkCount) if (tree.get(node.path)?.nlink === undefined) node.nlink = 1 + count;
  return root!;
}

const EMPTY = new Uint8Array(0);
const TRUSTED_OVERLAY = 'trusted.overlay.';
const ESCAPED = 'trusted.overlay.overlay.';

function insertDirent(dir: CNode, dirent: Dirent): void {
  const children = dir.children!;
  let i = 0;
  while (i < children.length && Buffer.compare(children[i]!.name, dirent.name) < 0) i++;
  children.splice(i, 0, dirent);
}

/** add_overlayfs_xattrs, then `.` and `..`, node by node in depth-first order. */
function rewriteNode(node: CNode, formatVersion: number): void {
  for (let i = 0; i < node.xattrs.length; i++) {
    const x = node.xattrs[i]!;
    if (x.key.startsWith(TRUSTED_OVERLAY)) node.xattrs[i] = xattr(ESCAPED + x.key.slice(TRUSTED_OVERLAY.length), x.value);
  }
  const type = node.mode & S_IFMT;
  if (type === S_IFREG && node.size > 0 && node.content === undefined) {
    const verity = node.verity;
    let metacopy: Uint8Array = EMPTY;
    if (verity !== undefined) {
      // struct ovl_metacopy: version 0, length, flags 0, digest algorithm (1 SHA-256, 2 SHA-512), digest.
      const len = verity.length / 2;
      const m = Buffer.allocUnsafe(4 + len);
      m.set([0, 4 + len, 0, len === 32 ? 1 : 2]);
      m.write(verity, 4, 'hex');
      metacopy = m;
    }
    // Values made from the digest are identified by it (the layout then compares no bytes).
    setXattr(node, 'trusted.overlay.metacopy', metacopy, verity);
    if (node.payload && node.payload.length > 0) {
      const redirect = Buffer.allocUnsafe(1 + node.payload.length);
      redirect[0] = 0x2f; // '/'
      node.payload.copy(redirect, 1);
      setXattr(node, 'trusted.overlay.redirect', redirect, node.payloadFromVerity ? node.verity : undefined);
    }
  }
  if (type === S_IFCHR && node.rdev === 0) {
    const parent = node.parent!;
    node.size = 0;
    node.mode = S_IFREG | (node.mode & ~S_IFMT);
    setXattr(node, `${ESCAPED}whiteout`, EMPTY);
    setXattr(node, 'user.overlay.whiteout', EMPTY);
    setXattr(parent, `${ESCAPED}whiteouts`, EMPTY);
    setXattr(parent, 'user.overlay.whiteouts', EMPTY);
    if (formatVersion >= 1) {
      setXattr(parent, `${ESCAPED}opaque`, Buffer.from('x'));
      setXattr(parent, 'user.overlay.opaque', Buffer.from('x'));
    }
  }
  if (type === S_IFDIR) {
    insertDirent(node, { name: Buffer.from('.'), node, link: true });
    insertDirent(node, { name: Buffer.from('..'), node: node.parent ?? node, link: true });
    for (const d of node.children!) if (!d.link) rewriteNode(d.node, formatVersion);
  }
}

function addWhiteoutStubs(root: CNode): void {
  const selinux = root.xattrs.find((x) => x.key === 'security.selinux');
  const names = new Set(root.children!.map((d) => d.name.toString('latin1')));
  for (let i = 0; i < 256; i++) {
    const name = i.toString(16).padStart(2, '0');
    if (names.has(name)) continue;
    const stub: CNode = {
      path: name,
      mode: S_IFCHR | 0o644,
      nlink: 1,
      uid: root.uid,
      gid: root.gid,
      mtime: root.mtime,
      mtimeNsec: root.mtimeNsec,
      size: 0,
      rdev: 0,
      xattrs: [],
      budget: 0,
      parent: root,
      ino: -1,
    };
    if (selinux) setXattr(stub, 'security.selinux', selinux.value);
    insertDirent(root, { name: Buffer.from(name), node: stub, link: false });
  }
}

const compareKeys = (a: Xattr, b: Xattr) => Buffer.compare(a.keyBytes, b.keyBytes);

/** Everything mkcomposefs does to the tree before it lays the image out, in its order. */
export function prepareTree(tree: FileTree, formatVersion: 0 | 1): PreparedTree {
  const root = buildNodes(tree);
  rewriteNode(root, formatVersion);
  setXattr(root, 'trusted.overlay.opaque', Buffer.from('y'));
  addWhiteoutStubs(root);

  const nodes: CNode[] = [];
  let minMtime = root.mtime;
  let minMtimeNsec = root.mtimeNsec;
  let hasAcl = false;
  const queue: CNode[] = [root];
  for (let qi = 0; qi < queue.length; qi++) {
    const node = queue[qi]!;
    node.ino = nodes.length;
    nodes.push(node);
    if ((node.mode & S_IFMT) === S_IFDIR) {
      let n = 2;
      for (const d of node.children!) if (!d.link && (d.node.mode & S_IFMT) === S_IFDIR) n++;
      node.nlink = n;
      for (const d of node.children!) if (!d.link) queue.push(d.node);
    }
    node.xattrs.sort(compareKeys);
    if (node.mtime < minMtime || (node.mtime === minMtime && node.mtimeNsec < minMtimeNsec)) {
      minMtime = node.mtime;
      minMtimeNsec = node.mtimeNsec;
    }
    if (node.xattrs.some((x) => x.key === 'system.posix_acl_access' || x.key === 'system.posix_acl_default')) hasAcl = true;
  }
  return { root, nodes, minMtime, minMtimeNsec, hasAcl };
}

/** mkcomposefs's rule for raising format 0 to 1: the tree holds a user whiteout (char device 0/0). */
export function minimumFormatVersion(tree: FileTree): 0 | 1 {
  for (const e of tree.walk()) if (e.type === 'char' && (e.rdev ?? 0) === 0) return 1;
  return 0;
}
