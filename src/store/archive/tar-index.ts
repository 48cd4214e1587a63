/**
 * Indexes an uncompressed tar file by seeking from header to header, so an oci-archive of many gigabytes
 * is opened by reading 512 bytes per entry, and a blob is then served by a ranged read of the file. No
 * library does this: tar-stream and node-tar parse a stream front to back and cannot skip the data.
 *
 * Understood: ustar (with the 155-byte prefix), PAX extended headers (path, size), GNU long names, and
 * base-256 sizes. Entries whose path is absolute or climbs out with `..` make the whole archive invalid:
 * nothing is ever extracted, but a hostile archive is refused rather than half-trusted.
 */
import { LadingError } from '../../errors.js';

export interface TarEntry {
  readonly name: string;
  readonly type: 'file' | 'directory' | 'other';
  /** Byte offset of the entry's data in the tar file. */
  readonly offset: number;
  readonly size: number;
}

const BLOCK = 512;

/** What the index needs of the archive: its size and positioned reads (a file, or parts read as one). */
export interface RandomAccess {
  readonly size: number;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export async function indexTar(fh: RandomAccess, archiveName: string): Promise<Map<string, TarEntry>> {
  const fileSize = fh.size;
  const entries = new Map<string, TarEntry>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let pending: { path?: string; size?: number } = {};
  const invalid = (why: string) =>
    new LadingError('INVALID_ARCHIVE', `${archiveName} is not a valid oci-archive: ${why}`, { archive: archiveName });

  const magic = Buffer.alloc(2);
  await fh.read(magic, 0, 2, 0);
  if (magic[0] === 0x1f && magic[1] === 0x8b) throw invalid('it is gzip-compressed; an oci-archive is a plain tar (gunzip it first)');
  if (fileSize < BLOCK) throw invalid(`it is ${fileSize} bytes, too short to be a tar`);

  while (pos + BLOCK <= fileSize) {
    const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) throw invalid(`truncated header at byte ${pos}`);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(header)) throw invalid(`bad header checksum at byte ${pos}`);
    const typeflag = String.fromCharCode(header[156] ?? 0);
    const size = pending.size ?? parseNumber(header.subarray(124, 136), () => invalid(`bad size field at byte ${pos}`));
    const dataOffset = pos + BLOCK;
    if (dataOffset + size > fileSize) throw invalid(`truncated: an entry at byte ${pos} claims ${size} bytes past the end of the file`);
    pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'x' || typeflag === 'L') {
      if (size > 1024 * 1024) throw invalid(`oversized extended header at byte ${dataOffset - BLOCK}`);
      const data = Buffer.alloc(size);
      await fh.read(data, 0, size, dataOffset);
      pending = typeflag === 'x' ? { ...pending, ...parsePax(data, invalid) } : { ...pending, path: cString(data) };
      continue;
    }
    if (typeflag === 'g' || typeflag === 'K') continue; // global header, GNU long link name: not needed
    const name = normalizeName(pending.path ?? ustarName(header), archiveName);
    pending = {};
    const type = typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
    entries.set(name, { name, type, offset: dataOffset, size });
  }
  return entries;
}

function ustarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 262).toString('latin1');
  const prefix = magic === 'ustar' ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Strips `./` and trailing slashes; refuses absolute paths and `..` components. */
function normalizeName(raw: string, archiveName: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (raw.startsWith('/') || parts.includes('..')) {
    throw new LadingError('UNSAFE_PATH', `${archiveName} holds an unsafe path "${raw.slice(0, 100)}": refusing the archive`, {
      archive: archiveName,
      path: raw,
    });
  }
  return parts.join('/');
}

function checksumOk(header: Buffer): boolean {
  const stored = parseOctal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return stored === sum;
}

function parseNumber(field: Buffer, bad: () => Error): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    // GNU base-256: big-endian, high bit of the first byte set. Sizes past 2^53 are refused.
    let n = 0;
    for (let i = 0; i < field.length; i++) n = n * 256 + ((i === 0 ? (field[i] ?? 0) & 0x7f : field[i]) ?? 0);
    if (!Number.isSafeInteger(n)) throw bad();
    return n;
  }
  const n = parseOctal(field);
  if (Number.isNaN(n)) throw bad();
  return n;
}

function parseOctal(field: Buffer): number {
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : /^[0-7]+$/.test(s) ? Number.parseInt(s, 8) : Number.NaN;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}

function parsePax(data: Buffer, invalid: (why: string) => Error): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < data.length && data[i] !== 0) {
    const space = data.indexOf(0x20, i);
    const len = Number.parseInt(data.subarray(i, space).toString('latin1'), 10);
    if (space === -1 || !Number.isSafeInteger(len) || len <= 0 || i + len > data.length) throw invalid('malformed PAX header');
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    if (key === 'size') {
      const size = Number(value);
      if (!Number.isSafeInteger(size) || size < 0) throw invalid('malformed PAX size');
      out.size = size;
    }
    i += len;
  }
  return out;
}
