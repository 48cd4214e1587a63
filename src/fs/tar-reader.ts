/**
 * A streaming tar reader for layers as real tools write them: POSIX ustar and pax (global 'g' records
 * applied to every later entry, 'x' to the next), GNU long names ('L'/'K') and old-GNU headers, v7
 * headers, checksums summed signed or unsigned, numbers in octal or GNU base-256.
 *
 * Hand-written rather than wrapping tar-stream (3.2.2), for two reasons:
 * - tar-stream's extract fails with "Unexpected end of data" on a stream whose last entry lacks its
 *   padding or the end-of-archive blocks, and Debian's umoci 0.4.7 `insert` writes exactly such layers;
 *   this reader accepts them, yet still refuses a stream cut inside an entry's header or content;
 * - flattening records where each file's bytes sit in the uncompressed stream (`offset`), which
 *   tar-stream does not expose.
 *
 * Names are turned into tree form with normalizePath, so a '..' component is refused (UNSAFE_PATH).
 * After the end-of-archive blocks the rest of the input is read and dropped, so that a digest check
 * wrapped around the input (a verified blob stream) runs to its end.
 */
import { Readable } from 'node:stream';
import { LadingError } from '../errors.js';
import { ByteSource, type Bytes } from './byte-source.js';
import { BLOCK, checksums, F, isZeroBlock, makedev, padding } from './tar-format.js';
import { type Entry, type EntryType, normalizePath } from './tree.js';

/**
 * An entry's header: the file tree's fields (path in tree form, mode without file-type bits, size 0
 * for everything but regular files, link target, rdev, xattrs) plus what only the archive knows.
 */
export interface TarHeader extends Pick<
  Entry,
  'path' | 'type' | 'mode' | 'uid' | 'gid' | 'mtime' | 'mtimeNsec' | 'size' | 'linkTarget' | 'rdev' | 'xattrs'
> {
  /** The name as the archive gives it (pax path, GNU long name, or ustar prefix/name). */
  rawName: string;
  /** The pax records that apply to this entry (global, then per-entry), values decoded as UTF-8. */
  pax: Record<string, string>;
  uname: string;
  gname: string;
  /** Where the entry's content starts in the uncompressed stream. */
  offset: number;
}

/** Limits on metadata held in memory: a pax header or a GNU long name larger than this is refused. */
const MAX_META = 16 * 1024 * 1024;
const CONTENT_CHUNK = 1024 * 1024;

/**
 * Reads `input` entry by entry. `onEntry` may consume `content` or leave it: whatever it does not read
 * is skipped once it resolves (the stream is then ended). Rejects on a malformed or truncated archive.
 */
export async function readTar(input: Readable | Bytes, onEntry: (header: TarHeader, content: Readable) => Promise<void>): Promise<void> {
  await readTarEntries(input, (header, content) => onEntry(header, content()));
}

/**
 * readTar for readers that leave most content unread (flattening a layer read in place): the content
 * stream is made only when asked for, so an entry nobody reads costs no stream at all.
 */
export async function readTarEntries(
  input: Readable | Bytes,
  onEntry: (header: TarHeader, content: () => Readable) => Promise<void>,
): Promise<void> {
  const src = input instanceof Readable ? new ByteSource(input) : input;
  try {
    await readEntries(src, onEntry);
    await src.drain();
  } catch (e) {
    if (input instanceof Readable) input.destroy();
    throw e;
  }
}

async function readEntries(src: Bytes, onEntry: (header: TarHeader, content: () => Readable) => Promise<void>): Promise<void> {
  let global: Map<string, Buffer> = new Map();
  let local: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let previous = '(start of archive)';
  const pendingMeta = () => local !== undefined || longName !== undefined || longLink !== undefined;

  for (;;) {
    const at = src.position;
    const block = await src.readTransient(BLOCK); // only strings and numbers are taken from it
    if (block.length === 0) {
      if (pendingMeta()) throw truncated(`the archive ends after an extended header, before the entry it describes (after ${previous})`);
      return; // No end-of-archive blocks: accepted (see the module comment).
    }
    if (block.length < BLOCK) throw truncated(`the header at offset ${at} is cut short (after ${previous})`);
    if (isZeroBlock(block)) {
      const second = await src.readTransient(BLOCK);
      if (second.length === 0 || isZeroBlock(second)) {
        if (pendingMeta()) throw truncated(`the archive ends after an extended header, before the entry it describes (after ${previous})`);
        return;
      }
      throw invalid(`a zero block at offset ${at} is followed by data (after ${previous}): the archive is corrupt`);
    }
    verifyChecksum(block, at, previous);
    const typeflag = String.fromCharCode(block[F.typeflag[0]]!);
    const headerSize = readNumber(block, F.size, at);

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (headerSize > MAX_META)
        throw invalid(`an extended header of ${headerSize} bytes at offset ${at} is over the ${MAX_META}-byte limit`);
      const data = await src.readExact(headerSize);
      if (data.length < headerSize) throw truncated(`the extended header at offset ${at} is cut short (after ${previous})`);
      const padded = skipPadding(src, headerSize, false, previous);
      if (padded !== undefined) await padded;
      if (typeflag === 'x') local = parsePax(data, at);
      else if (typeflag === 'g') global = mergeRecords(global, parsePax(data, at));
      else if (typeflag === 'L') longName = cString(data);
      else longLink = cString(data);
      continue;
    }

    const records = local === undefined ? global : mergeRecords(global, local);
    const header = buildHeader(block, typeflag, records, longName, longLink, at);
    local = undefined;
    longName = undefined;
    longLink = undefined;
    // Header-only types carry no content whatever their size field says (as Go's archive/tar reads them).
    const contentSize = header.type === 'file' ? header.size : typeflag === 'D' || typeflag === 'V' ? headerSize : 0;
    header.offset = src.position;
    previous = header.rawName;
    if (typeflag === 'V') {
      await skipContent(src, contentSize, header.rawName);
    } else {
      await deliver(src, header, contentSize, onEntry);
    }
    const padded = skipPadding(src, contentSize, true, previous);
    if (padded !== undefined) await padded;
  }
}

/** Hands one entry to the callback, then skips what it did not read. */
async function deliver(
  src: Bytes,
  header: TarHeader,
  size: number,
  onEntry: (header: TarHeader, content: () => Readable) => Promise<void>,
): Promise<void> {
  let remaining = size;
  let detached = false;
  let busy: Promise<void> = Promise.resolve();
  let content: Readable | undefined;
  const open = (): Readable => {
    if (content !== undefined) return content;
    const stream = new Readable({
      highWaterMark: CONTENT_CHUNK,
      read() {
        busy = (async () => {
          if (detached || remaining === 0) {
            stream.push(null);
            return;
          }
          try {
            const chunk = await src.next(Math.min(remaining, CONTENT_CHUNK));
            if (chunk === null) throw truncated(contentCut(header, size, remaining));
            remaining -= chunk.length;
            stream.push(chunk);
            if (remaining === 0) stream.push(null);
          } catch (e) {
            stream.destroy(e as Error);
          }
        })();
      },
    });
    // Whoever consumes the content sees its errors; this only keeps an unread entry's error from crashing.
    stream.on('error', () => undefined);
    content = stream;
    return stream;
  };
  await onEntry(header, open);
  if (content !== undefined) await busy; // nothing to wait for when nobody opened the content
  detached = true;
  if (content !== undefined && !content.readableEnded && !content.destroyed) content.destroy();
  const skipped = skipContent(src, remaining, header.rawName, size);
  if (skipped !== undefined) await skipped;
}

/**
 * Skips what is left of an entry's content. Synchronous where the source can skip at once (a file
 * read in place: no promise per entry), else a promise.
 */
function skipContent(src: Bytes, remaining: number, name: string, size = remaining): Promise<void> | undefined {
  return skipThen(src, remaining, (got) => {
    if (got < remaining) throw truncated(`the content of ${name} is cut short: ${size - remaining + got} of ${size} bytes`);
  });
}

/** Skips the padding after content; at the very end of the input a missing padding is accepted. Synchronous like skipContent. */
function skipPadding(src: Bytes, size: number, lenient: boolean, previous: string): Promise<void> | undefined {
  const pad = padding(size);
  if (pad === 0) return undefined;
  return skipThen(src, pad, (got) => {
    if (got < pad && !lenient) throw truncated(`the archive is cut short after ${previous}`);
  });
}

/** Skips `n` bytes and hands `check` how many there were: at once where the source can, else later. */
function skipThen(src: Bytes, n: number, check: (got: number) => void): Promise<void> | undefined {
  if (src.skipNow === undefined) return src.skip(n).then(check);
  check(src.skipNow(n));
  return undefined;
}

function contentCut(header: TarHeader, size: number, remaining: number): string {
  return `the content of ${header.rawName} is cut short: ${size - remaining} of ${size} bytes`;
}

function buildHeader(
  block: Buffer,
  typeflag: string,
  records: Map<string, Buffer>,
  longName: string | undefined,
  longLink: string | undefined,
  at: number,
): TarHeader {
  const magic = block.toString('latin1', F.magic[0], F.magic[0] + 8);
  const ustar = magic === 'ustar\u000000';
  const gnu = magic === 'ustar  \u0000';
  let rawName = field(block, F.name);
  if (ustar) {
    const prefix = field(block, F.prefix);
    if (prefix !== '') rawName = `${prefix}/${rawName}`;
  }
  let rawLink = field(block, F.linkname);
  if (longName !== undefined) rawName = longName;
  if (longLink !== undefined) rawLink = longLink;
  const text = (key: string) => records.get(key)?.toString('utf8');
  rawName = text('path') ?? rawName;
  rawLink = text('linkpath') ?? rawLink;

  const type = entryType(typeflag, rawName, at);
  for (const key of records.keys()) {
    if (key.startsWith('GNU.sparse.'))
      throw invalid(`${rawName} is a sparse file, which OCI layers should not use and Lading does not read`);
  }
  let mtime = readNumber(block, F.mtime, at);
  let mtimeNsec = 0;
  const paxTime = text('mtime');
  if (paxTime !== undefined) [mtime, mtimeNsec] = parsePaxTime(paxTime, rawName);
  const num = (key: string, fallback: number) => {
    const v = text(key);
    if (v === undefined) return fallback;
    if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid(`${rawName}: pax ${key} "${v}" is not a number`);
    return Number(v);
  };
  const size = num('size', readNumber(block, F.size, at));
  const xattrs = new Map<string, Uint8Array>();
  for (const [key, value] of records) {
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      xattrs.set(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(value.toString('latin1'), 'base64'));
    }
  }
  for (const [key, value] of records) if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);
  const pax: Record<string, string> = {};
  for (const [key, value] of records) pax[key] = value.toString('utf8');

  const header: TarHeader = {
    path: normalizePath(rawName),
    rawName,
    type,
    mode: readNumber(block, F.mode, at) & 0o7777,
    uid: num('uid', readNumber(block, F.uid, at)),
    gid: num('gid', readNumber(block, F.gid, at)),
    mtime,
    mtimeNsec,
    size: type === 'file' ? size : 0,
    xattrs,
    pax,
    uname: text('uname') ?? (ustar || gnu ? field(block, F.uname) : ''),
    gname: text('gname') ?? (ustar || gnu ? field(block, F.gname) : ''),
    offset: 0,
  };
  if (type === 'symlink') header.linkTarget = rawLink;
  if (type === 'hardlink') header.linkTarget = normalizePath(rawLink);
  if (type === 'char' || type === 'block') {
    const major = num('SCHILY.devmajor', ustar || gnu ? readNumber(block, F.devmajor, at) : 0);
    const minor = num('SCHILY.devminor', ustar || gnu ? readNumber(block, F.devminor, at) : 0);
    header.rdev = makedev(major, minor);
  }
  return header;
}

function entryType(typeflag: string, rawName: string, at: number): EntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      // v7 archives mark directories by a trailing '/' on a regular-file entry.
      return rawName.endsWith('/') ? 'directory' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
    case 'D': // GNU dumpdir: a directory whose content lists its names.
      return 'directory';
    case '6':
      return 'fifo';
    case 'V': // GNU volume label: not a file; skipped by the caller.
      return 'file';
    case 'S':
      throw invalid(`${rawName} is a GNU sparse file, which OCI layers should not use and Lading does not read`);
    default:
      throw invalid(`${rawName} (offset ${at}) has the tar entry type ${JSON.stringify(typeflag)}, which Lading does not read`);
  }
}

function verifyChecksum(block: Buffer, at: number, previous: string): void {
  const stored = field(block, F.chksum).trim();
  const { unsigned, signed } = checksums(block);
  const value = /^[0-7]+$/.test(stored) ? parseInt(stored, 8) : Number.NaN;
  if (value !== unsigned && value !== signed) {
    throw invalid(
      at === 0
        ? 'the stream is not a tar archive (bad header checksum at offset 0)'
        : `bad header checksum at offset ${at} (after ${previous}): the archive is corrupt`,
    );
  }
}

/** A NUL-terminated string field, decoded as UTF-8 (names in layers are UTF-8 in practice). */
function field(block: Buffer, [offset, width]: readonly [number, number]): string {
  let end = offset;
  while (end < offset + width && block[end] !== 0) end++;
  return block.toString('utf8', offset, end);
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul < 0 ? data.length : nul);
}

/** Octal (spaces and NULs around it allowed) or GNU base-256 (high bit of the first byte set). */
function readNumber(block: Buffer, [offset, width]: readonly [number, number], at: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    if (first === 0xff) v = -1n;
    for (let i = 1; i < width; i++) v = (v << 8n) | BigInt(block[offset + i]!);
    if (first === 0xff) v = BigInt.asIntN(width * 8, v);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw invalid(`a number in the header at offset ${at} is too large`);
    return n;
  }
  // Octal digits with spaces and NULs around them, parsed byte by byte (30k entries: this is hot).
  let start = offset;
  let end = offset + width;
  while (start < end && (block[start] === 0x20 || block[start] === 0)) start++;
  while (end > start && (block[end - 1] === 0x20 || block[end - 1] === 0)) end--;
  let v = 0;
  for (let i = start; i < end; i++) {
    const digit = block[i]! - 0x30;
    if (digit < 0 || digit > 7) {
      const s = block.toString('latin1', start, end);
      throw invalid(`the header at offset ${at} has a malformed number field ${JSON.stringify(s)}`);
    }
    v = v * 8 + digit;
  }
  return v;
}

/** Parses `"%d %s=%s\n"` records; values stay bytes (xattr values are binary). */
function parsePax(data: Buffer, at: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // Some writers pad the records with NULs.
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? Number.NaN : Number(data.toString('latin1', pos, space));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw invalid(`malformed pax header at offset ${at}`);
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw invalid(`malformed pax record at offset ${at}`);
    out.set(record.toString('utf8', 0, eq), record.subarray(eq + 1));
    pos += len;
  }
  return out;
}

/** Later records win; an empty value removes the key (POSIX: it undoes a global record). */
function mergeRecords(base: Map<string, Buffer>, over: Map<string, Buffer>): Map<string, Buffer> {
  const out = new Map(base);
  for (const [k, v] of over) {
    if (v.length === 0) out.delete(k);
    else out.set(k, v);
  }
  return out;
}

function parsePaxTime(value: string, name: string): [number, number] {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(value);
  if (!m) throw invalid(`${name}: pax mtime "${value}" is not a time`);
  const secs = Number(m[2]);
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  const nsec = Number(frac);
  if (m[1] !== '-') return [secs, nsec];
  return nsec === 0 ? [-secs, 0] : [-secs - 1, 1e9 - nsec];
}

function truncated(what: string): LadingError {
  return new LadingError('INVALID_ARCHIVE', `truncated tar stream: ${what}`);
}

function invalid(what: string): LadingError {
  return new LadingError('INVALID_ARCHIVE', `invalid tar stream: ${what}`);
}
