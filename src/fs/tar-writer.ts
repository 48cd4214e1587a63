/**
 * The deterministic tar writer: a FileTree becomes the same bytes on every machine, so a layer's diff_id
 * depends on the tree alone. Hand-written because every library leaves something to the host or to the
 * caller's order (tar-stream writes what it is given, GNU tar emits `PaxHeaders.<pid>` names and atimes,
 * node-tar adds ctime/atime records): here order, header format and every field are fixed.
 *
 * What is written, and why:
 * - entries in `tree.walk()` order (depth first, siblings by UTF-8 bytes, parents first), the root left
 *   out, directories as explicit entries named with a trailing '/';
 * - a USTAR header whenever the entry fits one (name split into prefix/name as POSIX allows), and a pax
 *   'x' header only for what does not: long or non-ASCII names and link names, numbers too large for
 *   the octal fields (also written base-256 in the ustar field, as GNU tar and Go read), and xattrs as
 *   `SCHILY.xattr.<name>`; pax records in byte order of their keys;
 * - no atime/ctime, empty uname/gname, uid/gid/mode from the entry (never the host), whole-second mtimes
 *   clamped to `clampMtime` (sub-second times are not written: reproducible layers carry whole seconds);
 * - hardlinks as typeflag '1' pointing at the name written first: when a link sorts before its target,
 *   the first name in tar order carries the content and the others link to it (extractors need the
 *   target to exist when they meet the link); the filesystem that results is the same;
 * - sockets are skipped (tar has no socket type, as GNU tar says "socket ignored").
 *
 * Host files are read as they are written, in order; each file's size and mtime (and ctime) are checked
 * before and after reading, and a file that changed fails the tar ("file changed while it was read").
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fsError, LadingError } from '../errors.js';
import { BLOCK, checksums, devMajor, devMinor, F, isAscii, octalMax, padding } from './tar-format.js';
import { compareNames, type Entry, type FileTree } from './tree.js';

export interface TarWriteOptions {
  /** Every mtime above this (seconds since the epoch) is written as this: SOURCE_DATE_EPOCH. */
  clampMtime?: number;
  /** Opens content that is neither bytes nor a host file (a layer range, an external object). */
  openContent?: (entry: Entry) => Promise<Readable>;
}

const READ_CHUNK = 1024 * 1024;
/** Headers and small files are gathered into chunks of this size; larger files are streamed. */
const BATCH = 1024 * 1024;

/** A deterministic uncompressed tar of every entry of `tree` except the root; see the module comment. */
export function writeTar(tree: FileTree, options: TarWriteOptions = {}): Readable {
  return Readable.from(tarChunks(tree, options), { objectMode: false, highWaterMark: READ_CHUNK });
}

interface Planned {
  entry: Entry;
  /** What to write in the entry's place: itself, the content of a hardlink group, or a link to a name. */
  as: Entry;
}

/**
 * Headers and small files go into one batch buffer that is handed on when full: small host files are
 * read synchronously straight into it (page-cache reads of a few KiB cost microseconds, while the
 * promise machinery of an async read costs more than the read; GNU tar reads the same way), so a tree of
 * many small files costs neither a buffer per file nor a copy. Large files are streamed asynchronously
 * in 1 MiB reads, so the event loop (compression workers reporting back) keeps running meanwhile.
 */
async function* tarChunks(tree: FileTree, options: TarWriteOptions): AsyncGenerator<Buffer> {
  const planned = plan(tree);
  let buf = Buffer.allocUnsafe(BATCH);
  let len = 0;
  const flush = (): Buffer => {
    const out = buf.subarray(0, len);
    buf = Buffer.allocUnsafe(BATCH);
    len = 0;
    return out;
  };
  for (const { as } of planned) {
    const header = headerFor(as, options.clampMtime);
    if (len + header.length > BATCH) yield flush();
    if (header.length > BATCH) yield header;
    else len += header.copy(buf, len);
    if (as.type !== 'file') continue;
    const pad = padding(as.size);
    // One spare byte: the read asks for one byte more than the size, to see that the file did not grow.
    if (as.content?.kind === 'file' && as.size + pad + 1 <= BATCH) {
      if (len + as.size + pad + 1 > BATCH) yield flush();
      readSmallHostFileInto(as.content.path, as.size, buf, len);
      len += as.size;
      buf.fill(0, len, len + pad);
      len += pad;
      continue;
    }
    if (len > 0) yield flush();
    yield* fileContent(as, options);
    if (pad > 0) yield Buffer.alloc(pad);
  }
  if (len + 2 * BLOCK > BATCH) yield flush();
  buf.fill(0, len, len + 2 * BLOCK);
  len += 2 * BLOCK;
  yield flush();
}

/** The entries to write, in order, with hardlink groups arranged so every link follows its target. */
function plan(tree: FileTree): Planned[] {
  const entries: Entry[] = [];
  for (const e of tree.walk()) if (e.path !== '' && e.type !== 'socket') entries.push(e);
  const order = new Map<string, number>();
  entries.forEach((e, i) => order.set(e.path, i));
  const out: Planned[] = entries.map((entry) => ({ entry, as: entry }));

  // Group hardlinks by the entry that holds the content; the first member in tar order carries it.
  const groups = new Map<string, number[]>();
  for (const [i, e] of entries.entries()) {
    if (e.type !== 'hardlink') continue;
    const target = ultimateTarget(tree, e);
    const members = groups.get(target) ?? [order.get(target)!];
    members.push(i);
    groups.set(target, members);
  }
  for (const [target, members] of groups) {
    const first = Math.min(...members);
    const firstPath = entries[first]!.path;
    const holder = tree.get(target)!;
    for (const i of members) {
      const e = entries[i]!;
      if (i === first) out[i] = { entry: e, as: { ...holder, path: e.path } };
      else if (e.path === target) out[i] = { entry: e, as: { ...holder, path: e.path, type: 'hardlink', size: 0, linkTarget: firstPath } };
      else out[i] = { entry: e, as: { ...e, linkTarget: firstPath } };
    }
  }
  return out;
}

function ultimateTarget(tree: FileTree, link: Entry): string {
  const seen = new Set<string>([link.path]);
  let e = link;
  while (e.type === 'hardlink') {
    const target = e.linkTarget;
    if (target === undefined || target === '') {
      throw new LadingError('UNSAFE_PATH', `hardlink ${link.path} has no target`, { path: link.path });
    }
    if (seen.has(target)) throw new LadingError('UNSAFE_PATH', `hardlink ${link.path} is part of a hardlink loop`, { path: link.path });
    seen.add(target);
    const next = tree.get(target);
    if (next === undefined) {
      throw new LadingError('NOT_FOUND', `hardlink ${link.path} points at ${target}, which is not in the tree`, { path: link.path });
    }
    if (next.type === 'directory') {
      throw new LadingError('UNSAFE_PATH', `hardlink ${link.path} points at the directory ${target}: directories cannot be hardlinked`, {
        path: link.path,
      });
    }
    e = next;
  }
  return e.path;
}

const TYPEFLAG: Record<Exclude<Entry['type'], 'socket'>, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

/** The header block(s) of one entry: a pax 'x' header when needed, then the ustar header. */
export function headerFor(entry: Entry, clampMtime?: number): Buffer {
  const type = entry.type as Exclude<Entry['type'], 'socket'>;
  const name = type === 'directory' ? `${entry.path}/` : entry.path;
  const linkname = type === 'hardlink' || type === 'symlink' ? (entry.linkTarget ?? '') : '';
  const size = type === 'file' ? entry.size : 0;
  const mtime = clampMtime !== undefined && entry.mtime > clampMtime ? clampMtime : entry.mtime;
  const pax: [string, Uint8Array][] = [];

  const split = splitUstarName(name);
  if (split === undefined) pax.push(['path', Buffer.from(name, 'utf8')]);
  if (!isAscii(linkname) || Buffer.byteLength(linkname) > F.linkname[1]) pax.push(['linkpath', Buffer.from(linkname, 'utf8')]);
  const numbers: [string, number, readonly [number, number]][] = [
    ['size', size, F.size],
    ['uid', entry.uid, F.uid],
    ['gid', entry.gid, F.gid],
    ['mtime', mtime, F.mtime],
  ];
  for (const [key, value, [, width]] of numbers) {
    if (!Number.isSafeInteger(value))
      throw new LadingError('USAGE', `${entry.path}: ${key} ${value} is not an integer`, { path: entry.path });
    if (value < 0 || value > octalMax(width)) pax.push([key, Buffer.from(String(value))]);
  }
  for (const [key, value] of entry.xattrs) {
    if (key.includes('=') || key.includes('\0') || key === '') {
      throw new LadingError('USAGE', `${entry.path}: xattr name ${JSON.stringify(key)} cannot be written to a tar`, { path: entry.path });
    }
    pax.push([`SCHILY.xattr.${key}`, value]);
  }

  const block = Buffer.alloc(BLOCK);
  const fallback = split ?? fallbackName(name);
  writeString(block, F.name, fallback.name);
  writeString(block, F.prefix, fallback.prefix);
  writeNumber(block, F.mode, entry.mode & 0o7777);
  writeNumber(block, F.uid, entry.uid);
  writeNumber(block, F.gid, entry.gid);
  writeNumber(block, F.size, size);
  writeNumber(block, F.mtime, mtime);
  block.write(TYPEFLAG[type], F.typeflag[0], 'latin1');
  writeString(block, F.linkname, isAscii(linkname) && linkname.length <= F.linkname[1] ? linkname : asciiFallback(linkname, F.linkname[1]));
  block.write('ustar\u000000', F.magic[0], 'latin1');
  if (type === 'char' || type === 'block') {
    const rdev = entry.rdev ?? 0;
    writeNumber(block, F.devmajor, devMajor(rdev));
    writeNumber(block, F.devminor, devMinor(rdev));
  }
  sealChecksum(block);
  if (pax.length === 0) return block;
  return Buffer.concat([paxHeader(entry.path, pax), block]);
}

function paxHeader(path: string, records: [string, Uint8Array][]): Buffer {
  records.sort(([a], [b]) => compareNames(a, b));
  const body = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  const block = Buffer.alloc(BLOCK);
  const base = path.slice(path.lastIndexOf('/') + 1);
  writeString(block, F.name, asciiFallback(`PaxHeaders/${base}`, F.name[1]));
  writeNumber(block, F.mode, 0o644);
  writeNumber(block, F.uid, 0);
  writeNumber(block, F.gid, 0);
  writeNumber(block, F.size, body.length);
  writeNumber(block, F.mtime, 0);
  block.write('x', F.typeflag[0], 'latin1');
  block.write('ustar\u000000', F.magic[0], 'latin1');
  sealChecksum(block);
  return Buffer.concat([block, body, Buffer.alloc(padding(body.length))]);
}

/** One pax record, `"%d %s=%s\n"`, where the length counts itself. */
function paxRecord(key: string, value: Uint8Array): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n')]);
}

/**
 * The POSIX prefix/name split of an ASCII name, as Go's archive/tar does it (the last '/' within the
 * first 156 bytes); undefined when the name needs a pax record.
 */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= F.name[1]) return { prefix: '', name };
  let length = name.length;
  if (length > F.prefix[1] + 1) length = F.prefix[1] + 1;
  else if (name[length - 1] === '/') length--;
  const i = name.lastIndexOf('/', length - 1);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > F.name[1] || nlen === 0 || i > F.prefix[1]) return undefined;
  return { prefix: name.slice(0, i), name: name.slice(i + 1) };
}

/** What a reader without pax support sees in the name field: ASCII, cut to fit (the pax path is the name). */
function fallbackName(name: string): { prefix: string; name: string } {
  return { prefix: '', name: asciiFallback(name, F.name[1]) };
}

function asciiFallback(s: string, width: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, width);
}

function writeString(block: Buffer, [offset, width]: readonly [number, number], s: string): void {
  block.write(s, offset, width, 'latin1');
}

/** Octal with a terminating NUL when it fits; otherwise GNU base-256 (big-endian, high bit set). */
function writeNumber(block: Buffer, [offset, width]: readonly [number, number], value: number): void {
  if (value >= 0 && value <= octalMax(width)) {
    block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
    return;
  }
  let v = BigInt(value);
  for (let i = width - 1; i >= 1; i--) {
    block[offset + i] = Number(BigInt.asUintN(8, v));
    v >>= 8n;
  }
  block[offset] = value < 0 ? 0xff : 0x80;
}

function sealChecksum(block: Buffer): void {
  const { unsigned } = checksums(block);
  block.write(`${unsigned.toString(8).padStart(6, '0')}\0 `, F.chksum[0], 8, 'latin1');
}

async function* fileContent(entry: Entry, options: TarWriteOptions): AsyncGenerator<Buffer> {
  const content = entry.content;
  if (content?.kind === 'bytes') {
    if (content.data.byteLength !== entry.size) {
      throw new LadingError('USAGE', `${entry.path}: holds ${content.data.byteLength} bytes but its size says ${entry.size}`, {
        path: entry.path,
      });
    }
    yield Buffer.from(content.data.buffer, content.data.byteOffset, content.data.byteLength);
    return;
  }
  if (content?.kind === 'file') {
    yield* readHostFile(content.path, entry.size);
    return;
  }
  if (options.openContent === undefined) {
    throw new LadingError(
      'USAGE',
      `${entry.path}: its content (${content?.kind ?? 'none'}) cannot be read here: the caller must give openContent`,
      { path: entry.path },
    );
  }
  const stream = await options.openContent(entry);
  let count = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      count += b.length;
      if (count > entry.size) break;
      yield b;
    }
  } finally {
    stream.destroy();
  }
  if (count !== entry.size) {
    throw new LadingError(
      'SIZE_MISMATCH',
      `${entry.path}: its content has ${count > entry.size ? 'more' : count} bytes, not ${entry.size}`,
      {
        path: entry.path,
      },
    );
  }
}

function changed(path: string): LadingError {
  return new LadingError('FILE_CHANGED', `file changed while it was read: ${path}`, { path });
}

/** Streams a host file of the expected size, failing if it changes while it is read. */
async function* readHostFile(path: string, size: number): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fsError(e, 'read', path);
  });
  try {
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) throw new LadingError('USAGE', `${path} is not a regular file`, { path });
    if (before.size !== BigInt(size)) throw changed(path);
    let pos = 0;
    while (pos < size) {
      const n = Math.min(READ_CHUNK, size - pos);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, pos);
      if (bytesRead === 0) throw changed(path);
      pos += bytesRead;
      yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
    }
    await checkUnchanged(fh, before, path, size);
  } finally {
    await fh.close();
  }
}

/** Reads a small host file of the expected size into `target` at `offset`, failing if it changes meanwhile. */
function readSmallHostFileInto(path: string, size: number, target: Buffer, offset: number): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fsError(e, 'read', path);
  }
  try {
    const before = fstatSync(fd);
    if (!before.isFile()) throw new LadingError('USAGE', `${path} is not a regular file`, { path });
    if (before.size !== size) throw changed(path);
    let got = 0;
    for (;;) {
      const n = readSync(fd, target, offset + got, size + 1 - got, got);
      if (n === 0) break;
      got += n;
      if (got > size) throw changed(path);
    }
    const after = fstatSync(fd);
    if (got !== size || after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ctimeMs !== before.ctimeMs) {
      throw changed(path);
    }
  } catch (e) {
    throw fsError(e, 'read', path);
  } finally {
    closeSync(fd);
  }
}

async function checkUnchanged(
  fh: Awaited<ReturnType<typeof open>>,
  before: { size: bigint; mtimeNs: bigint; ctimeNs: bigint },
  path: string,
  size: number,
): Promise<void> {
  // One byte past the end must read nothing: a file that grew while we read it has changed.
  const probe = Buffer.allocUnsafe(1);
  const { bytesRead } = await fh.read(probe, 0, 1, size);
  const after = await fh.stat({ bigint: true });
  if (bytesRead !== 0 || after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs) {
    throw changed(path);
  }
}
