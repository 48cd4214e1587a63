/**
 * The EROFS on-disk structures a composefs image uses (Linux `fs/erofs/erofs_fs.h`) and the composefs
 * header in front of them (`lcfs-erofs.h`), as constants and little-endian encoders. Only what the
 * composefs writer emits is here: 4 KiB blocks, flat and chunk-based inodes, plain xattrs, no
 * compression. The superblock is the 128-byte layout composefs has always written.
 */

export const BLOCK = 4096;
export const BLOCK_BITS = 12;
export const SLOT = 32;
export const SUPER_OFFSET = 1024;
export const SUPER_SIZE = 128;
export const SUPER_MAGIC = 0xe0f5e1e2;

export const COMPOSEFS_MAGIC = 0xd078629a;
export const COMPOSEFS_HEADER_VERSION = 1;
export const COMPOSEFS_FLAG_HAS_ACL = 1;

export const FEATURE_COMPAT_MTIME = 0x2;
export const FEATURE_COMPAT_XATTR_FILTER = 0x4;

export const DATALAYOUT_FLAT_PLAIN = 0;
export const DATALAYOUT_FLAT_INLINE = 2;
export const DATALAYOUT_CHUNK_BASED = 4;
export const CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
/** mkcomposefs stores an external file as one block at most of null chunk pointers. */
export const MAX_NONINLINE_CHUNKS = 1024;

export const XATTR_ENTRY_SIZE = 4;
export const XATTR_HEADER_SIZE = 12;
/** A file may reference at most this many shared xattrs (the long-prefix bit of e_name_index). */
export const XATTR_MAX_SHARED_PER_INODE = 0x80;
const XATTR_FILTER_SEED = 0x25bbe08f;

export const DIRENT_SIZE = 12;

/** EROFS_FT_* dirent file types. */
export const FILE_TYPE = { unknown: 0, file: 1, directory: 2, char: 3, block: 4, fifo: 5, socket: 6, symlink: 7 } as const;

/** Short xattr name prefixes, matched in this order (composefs's table). */
const XATTR_PREFIXES: [string, number][] = [
  ['user.', 1],
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['trusted.', 4],
  ['security.', 6],
];

/** The EROFS name index of an xattr key and the rest of the name after its prefix. */
export function xattrIndex(key: string): { index: number; suffix: string } {
  for (const [prefix, index] of XATTR_PREFIXES) if (key.startsWith(prefix)) return { index, suffix: key.slice(prefix.length) };
  return { index: 0, suffix: key };
}

/** Bytes one xattr entry takes, padded to 4. */
export function xattrEntrySize(suffixBytes: number, valueBytes: number): number {
  return roundUp(XATTR_ENTRY_SIZE + suffixBytes + valueBytes, 4);
}

/** A little-endian u64 from a number; BigInt only for negatives (pre-1970 mtimes), which wrap as int64. */
function writeU64(buf: Buffer, value: number, o: number): void {
  if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
    buf.writeUInt32LE(value % 0x100000000, o);
    buf.writeUInt32LE(Math.floor(value / 0x100000000), o + 4);
  } else {
    buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)), o);
  }
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function round32(acc: number, input: number): number {
  return Math.imul(rotl((acc + Math.imul(input, P2)) >>> 0, 13), P1) >>> 0;
}

/** xxHash32, which the EROFS xattr name filter uses (one hash, 32 bits). */
export function xxh32(data: Uint8Array, seed: number): number {
  const len = data.length;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    while (p <= len - 16) {
      v1 = round32(v1, dv.getUint32(p, true));
      v2 = round32(v2, dv.getUint32(p + 4, true));
      v3 = round32(v3, dv.getUint32(p + 8, true));
      v4 = round32(v4, dv.getUint32(p + 12, true));
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  while (p + 4 <= len) {
    h = Math.imul(rotl((h + Math.imul(dv.getUint32(p, true), P3)) >>> 0, 17), P4) >>> 0;
    p += 4;
  }
  while (p < len) {
    h = Math.imul(rotl((h + Math.imul(data[p]!, P5)) >>> 0, 11), P1) >>> 0;
    p++;
  }
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, P2) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, P3) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The bit an xattr sets in an inode's name filter (the filter stores the complement of all bits). */
export function xattrFilterBit(index: number, suffix: Uint8Array): number {
  return xxh32(suffix, (XATTR_FILTER_SEED + index) >>> 0) & 31;
}

export interface SuperblockFields {
  rootNid: number;
  inodes: number;
  buildTime: number;
  buildTimeNsec: number;
  blocks: number;
  metaBlkaddr: number;
  xattrBlkaddr: number;
}

export function writeComposefsHeader(buf: Buffer, flags: number, composefsVersion: number): void {
  buf.writeUInt32LE(COMPOSEFS_MAGIC, 0);
  buf.writeUInt32LE(COMPOSEFS_HEADER_VERSION, 4);
  buf.writeUInt32LE(flags, 8);
  buf.writeUInt32LE(composefsVersion, 12);
}

export function writeSuperblock(buf: Buffer, f: SuperblockFields): void {
  const o = SUPER_OFFSET;
  buf.writeUInt32LE(SUPER_MAGIC, o);
  buf.writeUInt32LE(FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER, o + 8);
  buf.writeUInt8(BLOCK_BITS, o + 12);
  buf.writeUInt16LE(f.rootNid, o + 14);
  writeU64(buf, f.inodes, o + 16);
  writeU64(buf, f.buildTime, o + 24);
  buf.writeUInt32LE(f.buildTimeNsec, o + 32);
  buf.writeUInt32LE(f.blocks, o + 36);
  buf.writeUInt32LE(f.metaBlkaddr, o + 40);
  buf.writeUInt32LE(f.xattrBlkaddr, o + 44);
}

export interface InodeFields {
  format: number;
  xattrIcount: number;
  mode: number;
  nlink: number;
  size: number;
  /** The i_u union: a block address or a device number, written as a 32-bit value. */
  u: number;
  /** Chunk-based inodes: the chunk format, which overlays the low half of `u` as in the C union (-1: none). */
  chunkFormat: number;
  ino: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
}

export function writeCompactInode(buf: Buffer, o: number, f: InodeFields): void {
  buf.writeUInt16LE(f.format, o);
  buf.writeUInt16LE(f.xattrIcount, o + 2);
  buf.writeUInt16LE(f.mode & 0xffff, o + 4);
  buf.writeUInt16LE(f.nlink & 0xffff, o + 6);
  buf.writeUInt32LE(f.size >>> 0, o + 8);
  buf.writeUInt32LE(f.u >>> 0, o + 16);
  if (f.chunkFormat >= 0) buf.writeUInt16LE(f.chunkFormat, o + 16);
  buf.writeUInt32LE(f.ino >>> 0, o + 20);
  buf.writeUInt16LE(f.uid & 0xffff, o + 24);
  buf.writeUInt16LE(f.gid & 0xffff, o + 26);
}

export function writeExtendedInode(buf: Buffer, o: number, f: InodeFields): void {
  buf.writeUInt16LE(f.format, o);
  buf.writeUInt16LE(f.xattrIcount, o + 2);
  buf.writeUInt16LE(f.mode & 0xffff, o + 4);
  writeU64(buf, f.size, o + 8);
  buf.writeUInt32LE(f.u >>> 0, o + 16);
  if (f.chunkFormat >= 0) buf.writeUInt16LE(f.chunkFormat, o + 16);
  buf.writeUInt32LE(f.ino >>> 0, o + 20);
  buf.writeUInt32LE(f.uid >>> 0, o + 24);
  buf.writeUInt32LE(f.gid >>> 0, o + 28);
  writeU64(buf, f.mtime, o + 32);
  buf.writeUInt32LE(f.mtimeNsec >>> 0, o + 40);
  buf.writeUInt32LE(f.nlink >>> 0, o + 44);
}

/** Writes one xattr entry (header, name suffix, value) at `pos`; returns where the next one goes (4-aligned). */
export function writeXattrEntry(buf: Buffer, pos: number, x: { index: number; suffix: Buffer; value: Uint8Array }): number {
  buf.writeUInt8(x.suffix.length, pos);
  buf.writeUInt8(x.index, pos + 1);
  buf.writeUInt16LE(x.value.length, pos + 2);
  x.suffix.copy(buf, pos + 4);
  buf.set(x.value, pos + 4 + x.suffix.length);
  return pos + xattrEntrySize(x.suffix.length, x.value.length);
}

/** One block's (or an inline tail's) dirents at `pos`: the fixed-size records, then the names back to back. */
export function writeDirents<D extends { name: Buffer }>(
  buf: Buffer,
  pos: number,
  dirents: readonly D[],
  nid: (d: D) => number,
  fileType: (d: D) => number,
): void {
  let nameoff = dirents.length * DIRENT_SIZE;
  dirents.forEach((d, i) => {
    const o = pos + i * DIRENT_SIZE;
    buf.writeUInt32LE(nid(d), o); // nids stay far below 2^32 (the high half is zero)
    buf.writeUInt16LE(nameoff, o + 8);
    buf.writeUInt8(fileType(d), o + 10);
    d.name.copy(buf, pos + nameoff);
    nameoff += d.name.length;
  });
}
