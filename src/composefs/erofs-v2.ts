/**
 * composefs-rs's legacy EROFS format, version 2, which older bootc deployments still name in their
 * UKIs. Written from composefs-rs's own description (doc/image-format.md) and checked against its
 * digest-stability values; there is no C implementation of it. How it differs from versions 0 and 1
 * (erofs-writer.ts):
 * - inodes in depth-first order (a directory, then each child's whole subtree in name order), every
 *   inode extended (64 bytes), `ino` the inode's own nid, mtimes in whole seconds, no build time;
 * - no whiteout stubs, no `trusted.overlay.opaque` on the root, user whiteouts left as they are;
 * - an external file's `trusted.overlay.metacopy` and `trusted.overlay.redirect` come first, then its
 *   own xattrs by name; a (name, value) pair used by two inodes or more is shared, the shared table
 *   ordered by (prefix index, suffix, value);
 * - a directory's dirents fill 4 KiB blocks, and a tail over 2 KiB gets a block of its own; every
 *   external file is one chunk of format 31 (a null pointer); data blocks follow the shared xattrs.
 */
import { LadingError } from '../errors.js';
import type { Entry, FileTree } from '../fs/tree.js';
import { objectPath } from './dump.js';
import {
  BLOCK,
  DATALAYOUT_CHUNK_BASED,
  DATALAYOUT_FLAT_INLINE,
  DATALAYOUT_FLAT_PLAIN,
  DIRENT_SIZE,
  FILE_TYPE,
  roundUp,
  SLOT,
  SUPER_OFFSET,
  SUPER_SIZE,
  writeComposefsHeader,
  writeDirents,
  writeExtendedInode,
  writeSuperblock,
  writeXattrEntry,
  XATTR_HEADER_SIZE,
  xattrEntrySize,
  xattrFilterBit,
  xattrIndex,
} from './erofs-format.js';

const COMPOSEFS_VERSION_V2 = 2;
const EXTENDED = 64;

interface V2Xattr {
  index: number;
  suffix: Buffer;
  value: Uint8Array;
  /** Identity of the (prefix, suffix, value) triple, for sharing. */
  id: string;
}

interface V2Dirent {
  name: Buffer;
  inode: V2Inode;
}

interface V2Inode {
  entry: Entry;
  type: keyof typeof FILE_TYPE;
  mode: number;
  nlink: number;
  xattrs: V2Xattr[];
  shared: number[];
  filter: number;
  /** Directories: dirents split into full blocks and an inline tail. */
  blocks?: V2Dirent[][];
  inline?: V2Dirent[];
  /** Leaves: the bytes kept after the inode (inline data, a symlink target, a null chunk pointer). */
  data?: Uint8Array;
  layout: number;
  size: number;
  u: number;
  offset: number;
  blockOffset: number;
}

const S_IF: Record<keyof typeof FILE_TYPE, number> = {
  unknown: 0,
  file: 0o100000,
  directory: 0o040000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
  symlink: 0o120000,
};
const NULL_CHUNK = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

const fail = (path: string, msg: string): never => {
  throw new LadingError('UNSUPPORTED_TREE', `/${path}: ${msg}`, { path: `/${path}` });
};

function xattrOf(name: string, value: Uint8Array): V2Xattr {
  const { index, suffix } = xattrIndex(name);
  const s = Buffer.from(suffix, 'utf8');
  return { index, suffix: s, value, id: `${index}\0${s.toString('latin1')}\0${Buffer.from(value).toString('latin1')}` };
}

/** An inode's xattrs in format 2's order: an external file's metacopy and redirect, then its own by name (escaped). */
function xattrsOf(e: Entry): V2Xattr[] {
  const out: V2Xattr[] = [];
  if (e.type === 'file' && e.size > 0 && e.content?.kind !== 'bytes') {
    const verity = e.verity ?? fail(e.path, 'format version 2 needs the fs-verity digest of every external file');
    const len = verity.length / 2;
    const metacopy = Buffer.alloc(4 + len);
    metacopy.set([0, 4 + len, 0, len === 32 ? 1 : 2]);
    metacopy.write(verity, 4, 'hex');
    out.push(xattrOf('trusted.overlay.metacopy', metacopy));
    out.push(xattrOf('trusted.overlay.redirect', Buffer.from(`/${e.payload ?? objectPath(verity)}`, 'utf8')));
  }
  const names = [...e.xattrs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const escaped = name.startsWith('trusted.overlay.') ? `trusted.overlay.overlay.${name.slice('trusted.overlay.'.length)}` : name;
    out.push(xattrOf(escaped, e.xattrs.get(name)!));
  }
  return out;
}

/** The inodes in depth-first order; hardlinks share their target's inode. */
function collect(tree: FileTree): V2Inode[] {
  const inodes: V2Inode[] = [];
  const byPath = new Map<string, V2Inode>();
  const links = new Map<string, number>();
  for (const e of tree.walk()) if (e.type === 'hardlink') links.set(e.linkTarget ?? '', (links.get(e.linkTarget ?? '') ?? 1) + 1);
  const make = (e: Entry): V2Inode => {
    const type = e.type === 'hardlink' ? 'unknown' : e.type;
    const inode: V2Inode = {
      entry: e,
      type,
      mode: S_IF[type] | (e.mode & 0o7777),
      nlink: e.type === 'directory' ? 0 : (e.nlink ?? links.get(e.path) ?? 1),
      xattrs: xattrsOf(e),
      shared: [],
      filter: 0,
      layout: DATALAYOUT_FLAT_PLAIN,
      size: 0,
      u: 0,
      offset: 0,
      blockOffset: 0,
    };
    inodes.push(inode);
    byPath.set(e.path, inode);
    return inode;
  };
  const visitDir = (dir: Entry, parent: V2Inode | undefined): V2Inode => {
    const me = make(dir);
    const dirents: V2Dirent[] = [];
    for (const name of tree.children(dir.path) ?? []) {
      const path = dir.path === '' ? name : `${dir.path}/${name}`;
      let e = tree.get(path)!;
      const seen = new Set<string>();
      while (e.type === 'hardlink' && !seen.has(e.path)) {
        seen.add(e.path);
        e = tree.get(e.linkTarget ?? '') ?? fail(path, `hardlink target ${e.linkTarget} is not in the tree`);
      }
      if (e.type === 'hardlink') fail(path, 'hardlink loop');
      const child = e.type === 'directory' ? visitDir(e, me) : (byPath.get(e.path) ?? make(e));
      dirents.push({ name: Buffer.from(name, 'utf8'), inode: child });
    }
    dirents.push({ name: Buffer.from('.'), inode: me }, { name: Buffer.from('..'), inode: parent ?? me });
    dirents.sort((a, b) => Buffer.compare(a.name, b.name));
    me.nlink = dirents.filter((d) => d.inode.type === 'directory').length;
    splitDirents(me, dirents);
    return me;
  };
  visitDir(tree.root, undefined);
  return inodes;
}

function splitDirents(dir: V2Inode, dirents: V2Dirent[]): void {
  const blocks: V2Dirent[][] = [];
  let rest: V2Dirent[] = [];
  let bytes = 0;
  for (const d of dirents) {
    const size = DIRENT_SIZE + d.name.length;
    bytes += size;
    if (bytes <= BLOCK) rest.push(d);
    else {
      blocks.push(rest);
      rest = [d];
      bytes = size;
    }
  }
  if (bytes > BLOCK / 2) {
    blocks.push(rest);
    rest = [];
    bytes = 0;
  }
  dir.blocks = blocks;
  dir.inline = rest;
  dir.size = blocks.length * BLOCK + bytes;
  dir.layout = rest.length === 0 ? DATALAYOUT_FLAT_PLAIN : DATALAYOUT_FLAT_INLINE;
}

function leafContent(inode: V2Inode): void {
  const e = inode.entry;
  if (e.type === 'file') {
    if (e.size === 0) return;
    if (e.content?.kind === 'bytes') {
      inode.data = e.content.data;
      inode.size = e.content.data.length;
      inode.layout = DATALAYOUT_FLAT_INLINE;
    } else {
      // One null chunk pointer of format 31: 2^(12 + 31) bytes is the most a file can be.
      if (e.size > 2 ** 43) fail(e.path, `a file of ${e.size} bytes is over format version 2's 8 TiB; use format 1`);
      inode.data = NULL_CHUNK;
      inode.size = e.size;
      inode.layout = DATALAYOUT_CHUNK_BASED;
      inode.u = 31;
    }
  } else if (e.type === 'char' || e.type === 'block') {
    inode.u = (e.rdev ?? 0) >>> 0;
  } else if (e.type === 'symlink') {
    inode.data = Buffer.from(e.linkTarget ?? '', 'utf8');
    inode.size = inode.data.length;
    inode.layout = DATALAYOUT_FLAT_INLINE;
  }
}

const entrySize = (x: V2Xattr) => xattrEntrySize(x.suffix.length, x.value.length);
const compareXattrs = (a: V2Xattr, b: V2Xattr) =>
  a.index - b.index || Buffer.compare(a.suffix, b.suffix) || Buffer.compare(Buffer.from(a.value), Buffer.from(b.value));

/** The EROFS image of `tree` in composefs-rs format version 2. */
export function composefsImageV2(tree: FileTree): Buffer {
  const inodes = collect(tree);
  for (const inode of inodes) if (inode.type !== 'directory') leafContent(inode);

  // Shared xattrs: the pairs used more than once, in (prefix, suffix, value) order.
  const counts = new Map<string, { x: V2Xattr; n: number }>();
  for (const inode of inodes) for (const x of inode.xattrs) counts.set(x.id, { x, n: (counts.get(x.id)?.n ?? 0) + 1 });
  const shared = [...counts.values()].filter((c) => c.n > 1).map((c) => c.x);
  shared.sort(compareXattrs);
  const sharedIndex = new Map(shared.map((x, i) => [x.id, i]));
  for (const inode of inodes) {
    for (const x of inode.xattrs) inode.filter |= 1 << xattrFilterBit(x.index, x.suffix);
    inode.shared = inode.xattrs.filter((x) => sharedIndex.has(x.id)).map((x) => sharedIndex.get(x.id)!);
    inode.xattrs = inode.xattrs.filter((x) => !sharedIndex.has(x.id));
  }
  const xattrSize = (i: V2Inode) =>
    i.filter === 0 ? 0 : XATTR_HEADER_SIZE + 4 * i.shared.length + i.xattrs.reduce((n, x) => n + entrySize(x), 0);
  const inlineSize = (i: V2Inode) =>
    i.inline !== undefined ? i.inline.reduce((n, d) => n + DIRENT_SIZE + d.name.length, 0) : (i.data?.length ?? 0);

  // Where everything goes: inodes after the superblock (an inline tail never crosses a block), the
  // shared xattrs after them, then the directories' blocks from the next block on.
  let pos = SUPER_OFFSET + SUPER_SIZE;
  for (const inode of inodes) {
    pos = roundUp(pos, SLOT);
    if (inode.layout === DATALAYOUT_FLAT_INLINE) {
      const inlineStart = pos + EXTENDED + xattrSize(inode);
      const endOfMetadata = inlineStart - 1;
      if (Math.floor(endOfMetadata / BLOCK) !== Math.floor((inlineStart + (inode.size % BLOCK)) / BLOCK)) {
        pos = roundUp(pos + (BLOCK - (endOfMetadata % BLOCK)), SLOT);
        // Still across a block: composefs-rs would write an image the kernel refuses; say so instead.
        const start = pos + EXTENDED + xattrSize(inode);
        if (Math.floor(start / BLOCK) !== Math.floor((start + (inode.size % BLOCK) - 1) / BLOCK)) {
          fail(inode.entry.path, `${inode.size % BLOCK} bytes after the inode do not fit in one block in format version 2; use format 1`);
        }
      }
    }
    inode.offset = pos;
    pos = roundUp(pos + EXTENDED + xattrSize(inode) + inlineSize(inode), SLOT);
  }
  const sharedOffsets = shared.map((x) => {
    const at = pos;
    pos += entrySize(x);
    return at;
  });
  pos = roundUp(pos, BLOCK);
  for (const inode of inodes) {
    inode.blockOffset = pos;
    pos += (inode.blocks?.length ?? 0) * BLOCK;
  }
  const end = pos;
  if (inodes[0]!.offset / SLOT > 0xffff) fail('', 'the root inode does not fit a 16-bit nid');

  const buf = Buffer.alloc(end);
  writeComposefsHeader(buf, 0, COMPOSEFS_VERSION_V2);
  writeSuperblock(buf, {
    rootNid: inodes[0]!.offset / SLOT,
    inodes: inodes.length,
    buildTime: 0,
    buildTimeNsec: 0,
    blocks: end / BLOCK,
    metaBlkaddr: 0,
    xattrBlkaddr: 0,
  });
  const writeV2Dirents = (dirents: V2Dirent[], at: number) =>
    writeDirents(
      buf,
      at,
      dirents,
      (d) => d.inode.offset / SLOT,
      (d) => FILE_TYPE[d.inode.type],
    );
  for (const inode of inodes) {
    const xsize = xattrSize(inode);
    const blocks = inode.blocks?.length ?? 0;
    const u = inode.type === 'directory' ? (blocks > 0 ? inode.blockOffset / BLOCK : 0) : inode.u;
    writeExtendedInode(buf, inode.offset, {
      format: 1 | (inode.layout << 1),
      xattrIcount: xsize === 0 ? 0 : 1 + (xsize - XATTR_HEADER_SIZE) / 4,
      mode: inode.mode,
      nlink: inode.nlink,
      size: inode.size,
      u,
      chunkFormat: -1,
      ino: inode.offset / SLOT,
      uid: inode.entry.uid,
      gid: inode.entry.gid,
      mtime: inode.entry.mtime,
      mtimeNsec: 0,
    });
    let at = inode.offset + EXTENDED;
    if (xsize > 0) {
      buf.writeUInt32LE(~inode.filter >>> 0, at);
      buf.writeUInt8(inode.shared.length, at + 4);
      at += XATTR_HEADER_SIZE;
      for (const i of inode.shared) {
        buf.writeUInt32LE(sharedOffsets[i]! / 4, at);
        at += 4;
      }
      for (const x of inode.xattrs) at = writeXattrEntry(buf, at, x);
    }
    if (inode.inline !== undefined) writeV2Dirents(inode.inline, at);
    else if (inode.data !== undefined) buf.set(inode.data, at);
    inode.blocks?.forEach((block, i) => writeV2Dirents(block, inode.blockOffset + i * BLOCK));
  }
  shared.forEach((x, i) => writeXattrEntry(buf, sharedOffsets[i]!, x));
  return buf;
}
