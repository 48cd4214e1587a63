/**
 * The composefs EROFS image of a FileTree, byte for byte what C `mkcomposefs` writes for the same
 * tree (format versions 0 and 1, which composefs-rs calls V0 and V1). The image's fs-verity digest
 * is what a sealed UKI names, so every padding byte matters.
 *
 * Written by hand because nothing else produces this: `mkfs.erofs` lays images out differently, and
 * the only implementations of this layout are libcomposefs (C) and composefs-rs (Rust). The work is
 * split in three: erofs-tree.ts rewrites the tree as mkcomposefs does, erofs-layout.ts places every
 * inode and block, and this module writes the bytes into one buffer (metadata only: file contents
 * live outside the image, so even a 60k-file tree makes an image of a few MiB).
 */
import type { FileTree } from '../fs/tree.js';
import {
  BLOCK,
  BLOCK_BITS,
  COMPOSEFS_FLAG_HAS_ACL,
  DATALAYOUT_CHUNK_BASED,
  DATALAYOUT_FLAT_INLINE,
  DATALAYOUT_FLAT_PLAIN,
  DIRENT_SIZE,
  FILE_TYPE,
  type InodeFields,
  SUPER_OFFSET,
  SUPER_SIZE,
  writeCompactInode,
  writeComposefsHeader,
  writeExtendedInode,
  writeDirents,
  writeSuperblock,
  writeXattrEntry,
  XATTR_HEADER_SIZE,
} from './erofs-format.js';
import { composefsImageV2 } from './erofs-v2.js';
import { type ImageLayout, layoutImage } from './erofs-layout.js';
import {
  type CNode,
  type Dirent,
  minimumFormatVersion,
  prepareTree,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from './erofs-tree.js';

export { minimumFormatVersion };

export interface ComposefsImageOptions {
  /** 0 or 1, as `mkcomposefs --min-version=V --max-version=V`; 2: composefs-rs's legacy format (erofs-v2.ts). */
  formatVersion: 0 | 1 | 2;
}

/** The composefs EROFS image of `tree`. Throws UNSUPPORTED_TREE for what mkcomposefs would refuse. */
export function composefsImage(tree: FileTree, options: ComposefsImageOptions): Buffer {
  const version = options.formatVersion;
  if (version === 2) return composefsImageV2(tree);
  if (version !== 0 && version !== 1) throw new TypeError(`composefs format version must be 0, 1 or 2, not ${String(version)}`);
  const prepared = prepareTree(tree, version);
  const layout = layoutImage(prepared);
  const buf = Buffer.alloc(layout.totalBlocks * BLOCK);
  writeComposefsHeader(buf, prepared.hasAcl ? COMPOSEFS_FLAG_HAS_ACL : 0, version);
  writeSuperblock(buf, {
    rootNid: layout.layouts[prepared.root.ino]!.nid,
    inodes: prepared.nodes.length,
    buildTime: prepared.minMtime,
    buildTimeNsec: prepared.minMtimeNsec,
    blocks: layout.totalBlocks,
    metaBlkaddr: Math.floor((SUPER_OFFSET + SUPER_SIZE) / BLOCK),
    xattrBlkaddr: Math.floor(layout.inodesEnd / BLOCK),
  });
  prepared.nodes.forEach((node, ino) => writeInode(buf, layout, node, ino));
  let pos = layout.inodesEnd;
  for (const x of layout.shared) pos = writeXattrEntry(buf, pos, x);
  for (const node of prepared.nodes) writeData(buf, layout, node);
  return buf;
}

function fileType(node: CNode): number {
  switch (node.mode & S_IFMT) {
    case S_IFREG:
      return FILE_TYPE.file;
    case S_IFDIR:
      return FILE_TYPE.directory;
    case S_IFLNK:
      return FILE_TYPE.symlink;
    case S_IFCHR:
      return FILE_TYPE.char;
    case S_IFBLK:
      return FILE_TYPE.block;
    case 0o010000:
      return FILE_TYPE.fifo;
    case 0o140000:
      return FILE_TYPE.socket;
    default:
      return FILE_TYPE.unknown;
  }
}

/** A directory's dirents at `pos`, each naming its node's nid. */
function writeNodeDirents(buf: Buffer, pos: number, layout: ImageLayout, dirents: Dirent[]): void {
  writeDirents(
    buf,
    pos,
    dirents,
    (d) => layout.layouts[d.node.ino]!.nid,
    (d) => fileType(d.node),
  );
}

/** Splits a directory's dirents into full blocks and an inline tail, as mkcomposefs fills them. */
function direntChunks(node: CNode, nBlocks: number): { blocks: Dirent[][]; tail: Dirent[] } {
  const blocks: Dirent[][] = [];
  let current: Dirent[] = [];
  let used = 0;
  for (const d of node.children!) {
    const len = DIRENT_SIZE + d.name.length;
    if (used + len > BLOCK) {
      blocks.push(current);
      current = [];
      used = 0;
    }
    current.push(d);
    used += len;
  }
  if (blocks.length < nBlocks) return { blocks: [...blocks, current], tail: [] };
  return { blocks, tail: current };
}

function writeInode(buf: Buffer, layout: ImageLayout, node: CNode, ino: number): void {
  const l = layout.layouts[ino]!;
  const type = node.mode & S_IFMT;
  let datalayout = l.tailSize > 0 ? DATALAYOUT_FLAT_INLINE : DATALAYOUT_FLAT_PLAIN;
  let size = 0;
  let chunkFormat = -1;
  let u = l.nBlocks > 0 ? l.blkaddr : 0;
  if (type === S_IFDIR) {
    size = l.nBlocks * BLOCK + l.tailSize;
  } else if (type === S_IFREG) {
    size = node.size;
    if (size > 0 && node.content === undefined) {
      datalayout = DATALAYOUT_CHUNK_BASED;
      chunkFormat = l.chunkBits - BLOCK_BITS;
    }
  } else if (type === S_IFLNK) {
    size = l.nBlocks === 0 ? l.tailSize : node.size;
  } else if (type === S_IFCHR || type === S_IFBLK) {
    u = Number(BigInt.asUintN(32, BigInt(node.rdev)));
  }
  const fields: InodeFields = {
    format: (datalayout << 1) | (l.compact ? 0 : 1),
    xattrIcount: l.xattrSize === 0 ? 0 : (l.xattrSize - XATTR_HEADER_SIZE) / 4 + 1,
    mode: node.mode,
    nlink: node.nlink,
    size,
    u,
    chunkFormat,
    ino,
    uid: node.uid,
    gid: node.gid,
    mtime: node.mtime,
    mtimeNsec: node.mtimeNsec,
  };
  let pos = l.offset;
  if (l.compact) writeCompactInode(buf, pos, fields);
  else writeExtendedInode(buf, pos, fields);
  pos += l.compact ? 32 : 64;
  if (l.xattrSize > 0) {
    buf.writeUInt32LE(l.filter, pos);
    buf.writeUInt8(l.shared.length, pos + 4);
    pos += XATTR_HEADER_SIZE;
    const sharedBase = layout.inodesEnd % BLOCK;
    for (const off of l.shared) {
      buf.writeUInt32LE((sharedBase + off) / 4, pos);
      pos += 4;
    }
    for (const x of l.unshared) pos = writeXattrEntry(buf, pos, x);
    pos = l.offset + (l.compact ? 32 : 64) + l.xattrSize;
  }
  if (l.tailSize === 0) return;
  if (type === S_IFDIR) writeNodeDirents(buf, pos, layout, direntChunks(node, l.nBlocks).tail);
  else if (type === S_IFLNK) node.payload!.copy(buf, pos);
  else if (node.content) buf.set(node.content.subarray(node.size - l.tailSize), pos);
  else buf.fill(0xff, pos, pos + l.chunkCount * 4); // null chunk pointers (EROFS_NULL_ADDR)
}

function writeData(buf: Buffer, layout: ImageLayout, node: CNode): void {
  const l = layout.layouts[node.ino]!;
  if (l.nBlocks === 0) return;
  const start = l.blkaddr * BLOCK;
  const type = node.mode & S_IFMT;
  if (type === S_IFDIR) {
    direntChunks(node, l.nBlocks).blocks.forEach((chunk, i) => writeNodeDirents(buf, start + i * BLOCK, layout, chunk));
  } else if (type === S_IFLNK) {
    node.payload!.copy(buf, start);
  } else if (node.content) {
    // mkcomposefs writes only the first block of inline content (more never occurs: content ≤ 5000 bytes).
    buf.set(node.content.subarray(0, BLOCK), start);
  } else {
    buf.fill(0xff, start, start + BLOCK);
  }
}
