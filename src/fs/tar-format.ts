/**
 * The byte layout of tar headers (POSIX ustar, pax, GNU and v7), shared by the writer and the reader so
 * that both agree on offsets, number encodings and device numbers. Hand-written: the layout is a fixed
 * table, and the writer needs exact control of every byte (see tar-writer.ts for why).
 */

export const BLOCK = 512;

/** Field offsets and widths of a 512-byte header (ustar; GNU and v7 share the first 257 bytes). */
export const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

/** The largest value a field of `width` bytes holds in octal with its terminating NUL. */
export function octalMax(width: number): number {
  return 8 ** (width - 1) - 1;
}

/** Bytes of padding after `size` bytes of content. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Sum of the header bytes with the checksum field read as eight spaces: unsigned and signed (old tars). */
export function checksums(block: Uint8Array): { unsigned: number; signed: number } {
  // The checksum field (148..156) counts as eight spaces; a signed sum differs by 256 per high byte.
  let unsigned = 8 * 0x20;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const b = block[i]!;
    unsigned += b;
    if (b > 127) high++;
  }
  return { unsigned, signed: unsigned - 256 * high };
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** glibc's makedev(3): the device number Linux stat reports, as tree entries keep it. */
export function makedev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  const dev = ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
  return Number(dev);
}

export function devMajor(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}

export function devMinor(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}

export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}
