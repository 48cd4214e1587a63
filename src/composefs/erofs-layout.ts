/**
 * The second half of the composefs EROFS writer: where every byte goes, decided exactly as
 * mkcomposefs decides it. Xattrs used by more than one inode are shared (ordered by descending name,
 * then length, then bytes); inodes are compact when their mtime is the image's minimum and their
 * numbers fit in 16/32 bits; data up to half a block is packed after its inode, which is padded
 * forward so the tail never crosses a block; directories list `.`/`..` among sorted names.
 */
import { LadingError } from '../errors.js';
import {
  BLOCK,
  DIRENT_SIZE,
  roundUp,
  SLOT,
  SUPER_OFFSET,
  SUPER_SIZE,
  XATTR_HEADER_SIZE,
  XATTR_MAX_SHARED_PER_INODE,
  xattrEntrySize,
  xattrFilterBit,
  xattrIndex,
} from './erofs-format.js';
import { chunking, type CNode, type PreparedTree, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Xattr } from './erofs-tree.js';

export interface EncodedXattr {
  index: number;
  suffix: Buffer;
  value: Uint8Array;
  size: number;
}

export interface NodeLayout {
  compact: boolean;
  /** Shared xattr offsets (bytes from the start of the shared area), in the inode's key order. */
  shared: number[];
  unshared: EncodedXattr[];
  xattrSize: number;
  filter: number;
  nBlocks: number;
  tailSize: number;
  /** Padding before the inode, and its byte offset in the image. */
  pad: number;
  offset: number;
  nid: number;
  /** First data block, when nBlocks > 0. */
  blkaddr: number;
  chunkBits: number;
  chunkCount: number;
}

export interface ImageLayout {
  nodes: CNode[];
  /** By inode number. */
  layouts: NodeLayout[];
  shared: EncodedXattr[];
  inodesEnd: number;
  dataStart: number;
  totalBlocks: number;
}

interface TableRow {
  encoded: EncodedXattr;
  x: Xattr;
  count: number;
  bit: number;
  sharedOffset: number;
}

/** Distinct (name, value) pairs, encoded once: most files of an image carry the same few xattrs. */
class XattrTable {
  /** By name, then by the value's identity (see Xattr.id). */
  private readonly byName = new Map<string, { index: number; suffix: Buffer; bit: number; values: Map<string, TableRow> }>();
  readonly rows: TableRow[] = [];

  private static id(x: Xattr): string {
    x.id ??= Buffer.from(x.value.buffer, x.value.byteOffset, x.value.byteLength).toString('latin1');
    return x.id;
  }

  add(x: Xattr): void {
    // Names repeat (every external file has a metacopy and a redirect): encode each name once.
    let name = this.byName.get(x.key);
    if (name === undefined) {
      const { index, suffix } = xattrIndex(x.key);
      const s = Buffer.from(suffix, 'utf8');
      this.byName.set(x.key, (name = { index, suffix: s, bit: xattrFilterBit(index, s), values: new Map() }));
    }
    const id = XattrTable.id(x);
    const row = name.values.get(id);
    if (row) {
      row.count++;
      return;
    }
    const encoded = { index: name.index, suffix: name.suffix, value: x.value, size: xattrEntrySize(name.suffix.length, x.value.length) };
    const added = { encoded, x, count: 1, bit: name.bit, sharedOffset: -1 };
    name.values.set(id, added);
    this.rows.push(added);
  }

  get(x: Xattr): TableRow {
    return this.byName.get(x.key)!.values.get(x.id!)!;
  }
}

/** Shared xattrs: every (name, value) pair used by two inodes or more, with its offset in the shared area. */
function sharedXattrs(nodes: CNode[]): { table: XattrTable; list: EncodedXattr[] } {
  const table = new XattrTable();
  for (const node of nodes) for (const x of node.xattrs) table.add(x);
  const multi = table.rows.filter((c) => c.count > 1);
  multi.sort((ea, eb) => {
    const a = ea.x;
    const b = eb.x;
    const r = Buffer.compare(b.keyBytes, a.keyBytes);
    if (r !== 0) return r;
    if (a.value.length !== b.value.length) return b.value.length - a.value.length;
    return Buffer.compare(b.value, a.value);
  });
  let offset = 0;
  for (const e of multi) {
    e.sharedOffset = offset;
    offset += e.encoded.size;
  }
  return { table, list: multi.map((e) => e.encoded) };
}

/** How many blocks and tail bytes a directory's dirents need (a tail over half a block gets a block). */
function dirSize(node: CNode): { nBlocks: number; tailSize: number } {
  let nBlocks = 0;
  let used = 0;
  for (const d of node.children!) {
    const len = DIRENT_SIZE + d.name.length;
    if (used + len > BLOCK) {
      nBlocks++;
      used = 0;
    }
    used += len;
  }
  if (used > BLOCK / 2) return { nBlocks: nBlocks + 1, tailSize: 0 };
  return { nBlocks, tailSize: used };
}

function dataSize(node: CNode): { nBlocks: number; tailSize: number; chunkBits: number; chunkCount: number } {
  const type = node.mode & S_IFMT;
  if (type === S_IFDIR) return { ...dirSize(node), chunkBits: 0, chunkCount: 0 };
  if (type === S_IFLNK) return { nBlocks: 0, tailSize: node.payload!.length, chunkBits: 0, chunkCount: 0 };
  if (type === S_IFREG && node.size > 0) {
    if (node.content) {
      const nBlocks = Math.floor(node.size / BLOCK);
      const tail = node.size % BLOCK;
      return tail > BLOCK / 2
        ? { nBlocks: nBlocks + 1, tailSize: 0, chunkBits: 0, chunkCount: 0 }
        : { nBlocks, tailSize: tail, chunkBits: 0, chunkCount: 0 };
    }
    const { chunkBits, chunkCount } = chunking(node.size);
    return { nBlocks: 0, tailSize: chunkCount * 4, chunkBits, chunkCount };
  }
  return { nBlocks: 0, tailSize: 0, chunkBits: 0, chunkCount: 0 };
}

/**
 * Padding in front of an inode so that its inline tail stays within one block. A tail that cannot
 * fit even then moves to a block of its own (the inode is still aligned to the next block, as upstream).
 */
function tailPadding(node: CNode, l: NodeLayout, pos: number, inodeSize: number): number {
  const nonTail = inodeSize + l.xattrSize;
  if ((node.mode & S_IFMT) === S_IFLNK) {
    const total = nonTail + l.tailSize;
    const startBlock = Math.floor(pos / BLOCK);
    const endBlock = Math.floor((pos + total - 1) / BLOCK);
    if (Math.floor(total / BLOCK) > 0) {
      l.nBlocks++;
      l.tailSize = 0;
    }
    return startBlock !== endBlock ? roundUp(pos, BLOCK) - pos : 0;
  }
  let remainder = BLOCK - ((pos + nonTail) % BLOCK);
  if (remainder >= l.tailSize) return 0;
  const extra = roundUp(remainder, SLOT);
  remainder = BLOCK - ((pos + nonTail + extra) % BLOCK);
  if (l.tailSize <= remainder) return extra;
  l.nBlocks++;
  l.tailSize = 0;
  return roundUp(pos, BLOCK) - pos;
}

export function layoutImage(prepared: PreparedTree): ImageLayout {
  const { nodes, minMtime, minMtimeNsec } = prepared;
  const { list: shared, table } = sharedXattrs(nodes);
  const layouts: NodeLayout[] = [];
  let pos = SUPER_OFFSET + SUPER_SIZE;
  const metaStart = Math.floor(pos / BLOCK) * BLOCK;
  let dataBlocks = 0;
  for (const node of nodes) {
    const data = dataSize(node);
    const type = node.mode & S_IFMT;
    const sizeForCompact = type === S_IFDIR ? data.nBlocks * BLOCK + data.tailSize : node.size;
    const compact =
      node.mtime === minMtime &&
      node.mtimeNsec === minMtimeNsec &&
      node.nlink <= 0xffff &&
      node.uid <= 0xffff &&
      node.gid <= 0xffff &&
      sizeForCompact <= 0xffffffff;
    const inodeSize = compact ? 32 : 64;
    const sharedOffsets: number[] = [];
    const unshared: EncodedXattr[] = [];
    let filterBits = 0;
    for (const x of node.xattrs) {
      const e = table.get(x);
      filterBits |= 1 << e.bit;
      if (e.sharedOffset >= 0 && sharedOffsets.length < XATTR_MAX_SHARED_PER_INODE) sharedOffsets.push(e.sharedOffset);
      else unshared.push(e.encoded);
    }
    const unsharedSize = unshared.reduce((n, e) => n + e.size, 0);
    const xattrSize =
      sharedOffsets.length === 0 && unsharedSize === 0 ? 0 : roundUp(XATTR_HEADER_SIZE + sharedOffsets.length * 4 + unsharedSize, 4);
    if (xattrSize > 0 && (xattrSize - XATTR_HEADER_SIZE) / 4 + 1 > 0xffff) {
      throw new LadingError('UNSUPPORTED_TREE', `/${node.path}: too many xattrs for one EROFS inode`, { path: node.path });
    }
    const l: NodeLayout = {
      compact,
      shared: sharedOffsets,
      unshared,
      xattrSize,
      filter: ~filterBits >>> 0,
      nBlocks: data.nBlocks,
      tailSize: data.tailSize,
      pad: 0,
      offset: 0,
      nid: 0,
      blkaddr: 0,
      chunkBits: data.chunkBits,
      chunkCount: data.chunkCount,
    };
    const aligned = roundUp(pos, SLOT);
    l.pad = aligned - pos;
    pos = aligned;
    const extra = tailPadding(node, l, pos, inodeSize);
    l.pad += extra;
    pos += extra;
    l.offset = pos;
    l.nid = (pos - metaStart) / SLOT;
    dataBlocks += l.nBlocks;
    pos += inodeSize + xattrSize + l.tailSize;
    layouts.push(l);
  }
  const inodesEnd = roundUp(pos, SLOT);
  const sharedSize = shared.reduce((n, e) => n + e.size, 0);
  const dataStart = roundUp(inodesEnd + sharedSize, BLOCK);
  let block = dataStart / BLOCK;
  for (const node of nodes) {
    const l = layouts[node.ino]!;
    if (l.nBlocks > 0) {
      l.blkaddr = block;
      block += l.nBlocks;
    }
  }
  return { nodes, layouts, shared, inodesEnd, dataStart, totalBlocks: dataStart / BLOCK + dataBlocks };
}
