/**
 * composefs-dump(5) files, read into and written from the shared FileTree. A dump file is the text
 * form of a composefs image (one line per file: PATH SIZE MODE NLINK UID GID RDEV MTIME PAYLOAD
 * CONTENT DIGEST, then KEY=VALUE xattrs) and the input of `mkcomposefs --from-file`.
 *
 * The parser follows C `mkcomposefs` line for line, so the same files are accepted and refused:
 * parents before children, no `.`/`..` names, names ≤ 255 bytes, symlink targets and payloads
 * < 4096 bytes, inline content ≤ 5000 bytes, xattr names ≤ 255 bytes, at most 32767 bytes of xattrs
 * per file (counted as upstream counts them). `strict` is upstream's CFS_PARSE_STRICT: it also
 * requires a final newline, RDEV 0 on non-devices, and symlink SIZE equal to the target's length.
 * Deliberate differences: a DIGEST that is not 64 or 128 hex digits, an invalid GID or RDEV, and a
 * hardlink to a directory or in a cycle are refused at parse time (upstream ignores the first two
 * and fails only when writing the image for the last); names and targets must be UTF-8, because the
 * FileTree holds them as text.
 *
 * SIZE is kept as written for every type but symlinks (their target's length), so a dump survives a
 * round trip; the EROFS writer computes directory sizes itself.
 */
import { LadingError } from '../errors.js';
import { type Entry, type EntryType, FileTree, makeEntry } from '../fs/tree.js';
import { DumpSyntaxError, escape, parseUnsigned, unescape, unescapeOptional } from './dump-escape.js';

export interface DumpParseOptions {
  /** Upstream's CFS_PARSE_STRICT checks (see the module comment). Default false, as mkcomposefs. */
  strict?: boolean;
  /** Where the text came from, for error messages. */
  source?: string;
}

/** File-type bits of st_mode, both ways. */
const TYPE_OF_BITS = new Map<number, Exclude<EntryType, 'hardlink'>>([
  [0o140000, 'socket'],
  [0o120000, 'symlink'],
  [0o100000, 'file'],
  [0o060000, 'block'],
  [0o040000, 'directory'],
  [0o020000, 'char'],
  [0o010000, 'fifo'],
]);
export const TYPE_BITS: Record<Exclude<EntryType, 'hardlink'>, number> = {
  socket: 0o140000,
  symlink: 0o120000,
  file: 0o100000,
  block: 0o060000,
  directory: 0o040000,
  char: 0o020000,
  fifo: 0o010000,
};

/** Upstream limits (lcfs-writer.h, linux/limits.h). */
export const LIMITS = {
  nameMax: 255,
  pathMax: 4096,
  inlineContentMax: 5000,
  xattrNameMax: 255,
  xattrValueMax: 65535,
  externalXattrMax: 32767,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const FIELDS = 11;

/**
 * The per-file xattr budget exactly as libcomposefs counts it: 7 + name + value bytes per xattr
 * (entry header with worst-case alignment), plus a 12-byte header once the file has any.
 */
export function xattrBudget(xattrs: Map<string, Uint8Array>): number {
  let size = 0;
  for (const [k, v] of xattrs) size += 7 + Buffer.byteLength(k) + v.length;
  return size === 0 ? 0 : size + 12;
}

interface PendingLink {
  target: string | undefined;
  line: number;
}

interface ParseState {
  tree: FileTree | undefined;
  /** Hardlink entries by path, resolved once every line is read (targets may come later). */
  links: Map<string, PendingLink>;
  strict: boolean;
  line: number;
}

/** Parses a dump file into a FileTree; throws INVALID_DUMP naming the line at the first problem. */
export function parseDump(input: Uint8Array, options: DumpParseOptions = {}): FileTree {
  const source = options.source ?? 'dump file';
  const state: ParseState = { tree: undefined, links: new Map(), strict: options.strict ?? false, line: 0 };
  const fail = (msg: string, line = state.line): never => {
    throw new LadingError('INVALID_DUMP', `${source}, line ${line}: ${msg}`, { source, line: String(line) });
  };
  let start = 0;
  while (start < input.length) {
    state.line++;
    let end = input.indexOf(0x0a, start);
    if (end < 0) {
      if (options.strict) fail('missing newline at the end of the file');
      end = input.length;
    }
    const line = input.subarray(start, end);
    start = end + 1;
    try {
      parseLine(line, state);
    } catch (e) {
      if (e instanceof DumpSyntaxError) fail(e.message);
      throw e;
    }
  }
  const tree = state.tree;
  if (!tree) throw new LadingError('INVALID_DUMP', `${source}: no files in the dump file`, { source });
  for (const [path, link] of state.links) {
    try {
      tree.get(path)!.linkTarget = resolveLink(tree, state.links, path);
    } catch (e) {
      if (e instanceof DumpSyntaxError) fail(e.message, link.line);
      throw e;
    }
  }
  return tree;
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new DumpSyntaxError(`${what} is not valid UTF-8 (Lading holds names and targets as text)`);
  }
}

function splitFields(line: Uint8Array): { fields: Uint8Array[]; rest: Uint8Array } {
  const fields: Uint8Array[] = [];
  let pos = 0;
  for (let i = 0; i < FIELDS; i++) {
    const sp = line.indexOf(0x20, pos);
    if (sp < 0) {
      fields.push(line.subarray(pos));
      pos = line.length;
    } else {
      fields.push(line.subarray(pos, sp));
      pos = sp + 1;
    }
  }
  return { fields, rest: line.subarray(pos) };
}

/** Resolves PATH as upstream does: leading and repeated slashes skipped, the last name must be real. */
function placePath(tree: FileTree, raw: string): string {
  const segs = raw.split('/');
  const name = segs.pop()!;
  const dirs = segs.filter((s) => s !== '');
  if (name === '') throw new DumpSyntaxError(`empty file name in path ${raw}`);
  if (name === '.' || name === '..') throw new DumpSyntaxError(`invalid . or .. in path ${raw}`);
  if (Buffer.byteLength(name) > LIMITS.nameMax) throw new DumpSyntaxError(`file name longer than 255 bytes in path ${raw}`);
  const parentPath = dirs.join('/');
  const parent = tree.get(parentPath);
  if (!parent || dirs.includes('.') || dirs.includes('..')) throw new DumpSyntaxError(`parent directory missing for ${raw}`);
  if (parent.type !== 'directory') throw new DumpSyntaxError(`parent of ${raw} is not a directory`);
  const path = parentPath === '' ? name : `${parentPath}/${name}`;
  if (tree.has(path)) throw new DumpSyntaxError(`path ${raw} already exists`);
  return path;
}

function parseLine(line: Uint8Array, state: ParseState): void {
  const { tree, strict } = state;
  const nul = line.indexOf(0);
  if (nul >= 0) throw new DumpSyntaxError(`invalid embedded NUL character at position ${nul}`);
  const { fields, rest } = splitFields(line);
  const f = (i: number) => fields[i]!;
  const rawPath = text(unescape(f(0)), 'the path');
  if (rawPath === '') throw new DumpSyntaxError('empty path');

  let modeField = f(2);
  const isHardlink = modeField[0] === 0x40;
  if (isHardlink) modeField = modeField.subarray(1);
  const fullMode = Number(parseUnsigned(modeField, 8, 'mode') & 0xffffffffn);
  const type = TYPE_OF_BITS.get(fullMode & 0o170000);
  if (!type) throw new DumpSyntaxError(`invalid mode ${fullMode.toString(8)} (no valid file type)`);

  let path: string;
  if (rawPath === '/') {
    if (type !== 'directory') throw new DumpSyntaxError('the root must be a directory');
    if (tree) throw new DumpSyntaxError('the root appears twice');
    path = '';
  } else {
    if (!tree) throw new DumpSyntaxError(`${rawPath} comes before the root /`);
    path = placePath(tree, rawPath);
  }

  if (isHardlink) {
    if (type === 'directory') throw new DumpSyntaxError(`directories can't be hardlinked (${rawPath})`);
    const target = unescapeOptional(f(8));
    state.links.set(path, { target: target && text(target, 'the hardlink target'), line: state.line });
    tree!.set(makeEntry(path, 'hardlink', { linkTarget: '' }));
    return;
  }

  const size = parseUnsigned(f(1), 10, 'size');
  const nlink = Number(parseUnsigned(f(3), 10, 'nlink') & 0xffffffffn);
  const uid = Number(parseUnsigned(f(4), 10, 'uid') & 0xffffffffn);
  const gid = Number(parseUnsigned(f(5), 10, 'gid') & 0xffffffffn);
  const rdev = parseUnsigned(f(6), 10, 'rdev');
  const mtimeField = f(7);
  const dot = mtimeField.indexOf(0x2e);
  const sec = parseUnsigned(dot < 0 ? mtimeField : mtimeField.subarray(0, dot), 10, 'mtime seconds');
  const nsec = parseUnsigned(dot < 0 ? new Uint8Array() : mtimeField.subarray(dot + 1), 10, 'mtime nanoseconds');
  const payload = unescapeOptional(f(8));
  const content = unescapeOptional(f(9));
  if (content && BigInt(content.length) !== size) {
    throw new DumpSyntaxError(`content is ${content.length} bytes but SIZE says ${size}`);
  }
  // An empty DIGEST field (a short line) counts as absent; upstream reads it as zero digest bytes.
  const digestField = unescapeOptional(f(10));
  let verity: string | undefined;
  if (digestField && digestField.length > 0) {
    verity = digestField.toString('latin1').toLowerCase();
    if (!/^([0-9a-f]{64}|[0-9a-f]{128})$/.test(verity)) throw new DumpSyntaxError(`DIGEST must be 64 or 128 hex digits`);
  }

  const isDevice = type === 'char' || type === 'block';
  if (!isDevice && strict && rdev !== 0n) throw new DumpSyntaxError('non-zero RDEV on a file that is not a device');
  const fields2: Partial<Entry> = {
    mode: fullMode & 0o7777,
    uid,
    gid,
    mtime: Number(BigInt.asIntN(64, sec)),
    mtimeNsec: Number(nsec & 0xffffffffn),
    nlink,
    size: sizeNumber(size),
    ...(verity !== undefined && { verity }),
    ...(isDevice && { rdev: Number(rdev) }),
  };
  if (type === 'symlink') {
    if (!payload || payload.length === 0) throw new DumpSyntaxError(`symlink ${rawPath} has no target`);
    if (payload.length >= LIMITS.pathMax)
      throw new DumpSyntaxError(`symlink target of ${rawPath} is ${payload.length} bytes (at most 4095)`);
    if (strict && BigInt(payload.length) !== size) {
      throw new DumpSyntaxError(`symlink ${rawPath} has SIZE ${size} but its target is ${payload.length} bytes`);
    }
    if (strict && content && content.length > 0) throw new DumpSyntaxError(`symlink ${rawPath} cannot have content`);
    fields2.linkTarget = text(payload, 'the symlink target');
    fields2.size = payload.length;
  } else {
    if (payload && payload.length >= LIMITS.pathMax)
      throw new DumpSyntaxError(`payload of ${rawPath} is ${payload.length} bytes (at most 4095)`);
    if (content && content.length > LIMITS.inlineContentMax) {
      throw new DumpSyntaxError(`inline content of ${content.length} bytes exceeds the maximum of ${LIMITS.inlineContentMax}`);
    }
    if (type === 'file') {
      if (content && content.length > 0) fields2.content = { kind: 'bytes', data: content };
      else if (size > 0n) fields2.content = { kind: 'external' };
      if (payload) fields2.payload = text(payload, 'the payload');
    }
  }
  if (rest.length > 65535) throw new DumpSyntaxError('too many xattrs (the xattr part of the line exceeds 65535 bytes)');
  fields2.xattrs = parseXattrs(rest);
  const entry = makeEntry(path, type, fields2);
  if (path === '') state.tree = new FileTree();
  state.tree!.set(entry);
}

/** Sizes above 2^53 cannot be exact in a number; keep them above 2^53 so limits still refuse them. */
function sizeNumber(size: bigint): number {
  const n = Number(size);
  return size > 2n ** 53n && n <= 2 ** 53 ? 2 ** 53 + 2 : n;
}

function parseXattrs(rest: Uint8Array): Map<string, Uint8Array> {
  const xattrs = new Map<string, Uint8Array>();
  let budget = 0;
  let pos = 0;
  while (pos < rest.length) {
    let sp = rest.indexOf(0x20, pos);
    if (sp < 0) sp = rest.length;
    const item = rest.subarray(pos, sp);
    pos = sp + 1;
    const eq = item.indexOf(0x3d);
    if (eq < 0) throw new DumpSyntaxError('xattr without = between name and value');
    const keyBytes = unescape(item.subarray(0, eq));
    const value = unescape(item.subarray(eq + 1));
    if (keyBytes.length === 0) throw new DumpSyntaxError('empty xattr name');
    if (keyBytes.includes(0)) throw new DumpSyntaxError('xattr name contains a NUL byte');
    if (keyBytes.length > LIMITS.xattrNameMax) throw new DumpSyntaxError(`xattr name of ${keyBytes.length} bytes (at most 255)`);
    if (value.length > LIMITS.xattrValueMax) throw new DumpSyntaxError(`xattr value of ${value.length} bytes (at most 65535)`);
    const key = text(keyBytes, 'an xattr name');
    // Replacing a value first gives back its share of the budget, as lcfs_node_unset_xattr does.
    const old = xattrs.get(key);
    if (old) {
      xattrs.delete(key);
      budget = xattrs.size > 0 ? budget - (7 + keyBytes.length + old.length) : 0;
    }
    const cost = 7 + keyBytes.length + value.length + (xattrs.size === 0 ? 12 : 0);
    if (budget + cost > LIMITS.externalXattrMax) {
      throw new DumpSyntaxError(`xattrs exceed ${LIMITS.externalXattrMax} bytes for one file (at ${key})`);
    }
    budget += cost;
    xattrs.set(key, value);
  }
  return xattrs;
}

/** The final non-hardlink entry a hardlink's chain of targets leads to (upstream follows chains too). */
function resolveLink(tree: FileTree, links: Map<string, PendingLink>, path: string): string {
  const seen = new Set<string>([path]);
  let from = path;
  for (;;) {
    const raw = links.get(from)!.target;
    if (raw === undefined) throw new DumpSyntaxError(`hardlink /${from} has no target path`);
    const targetPath = lookupPath(tree, raw);
    if (targetPath === from) throw new DumpSyntaxError(`self-referential hardlink ${raw}`);
    const target = targetPath === undefined ? undefined : tree.get(targetPath);
    if (targetPath === undefined || !target) throw new DumpSyntaxError(`no target at ${raw} for hardlink /${from}`);
    if (target.type === 'directory') throw new DumpSyntaxError(`hardlink /${from} points to the directory ${raw}`);
    if (target.type !== 'hardlink') return targetPath;
    if (seen.has(targetPath)) throw new DumpSyntaxError(`hardlink /${path} is part of a cycle of hardlinks`);
    seen.add(targetPath);
    from = targetPath;
  }
}

/** Upstream's lookup_path: slashes skipped, every name must exist (so `.` and `..` never match). */
function lookupPath(tree: FileTree, raw: string): string | undefined {
  const parts = raw.split('/').filter((s) => s !== '');
  if (parts.some((p) => p === '.' || p === '..')) return undefined;
  const path = parts.join('/');
  return tree.has(path) ? path : undefined;
}

/** Counts, for each path, the hardlinks that lead to it (for NLINK when an entry does not record one). */
export function hardlinkCounts(tree: FileTree): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of tree.walk()) {
    if (e.type === 'hardlink' && e.linkTarget !== undefined) counts.set(e.linkTarget, (counts.get(e.linkTarget) ?? 0) + 1);
  }
  return counts;
}

/** The object path (`xx/rest`) composefs stores a file under, from its fs-verity digest. */
export function objectPath(verity: string): string {
  return `${verity.slice(0, 2)}/${verity.slice(2)}`;
}

/** Writes the tree as a dump file, depth first with siblings in byte order, as `composefs-info dump` does. */
export function writeDump(tree: FileTree): string {
  const links = hardlinkCounts(tree);
  const out: string[] = [];
  for (const e of tree.walk()) {
    const target = e.type === 'hardlink' ? tree.get(e.linkTarget ?? '') : e;
    if (!target || target.type === 'hardlink') {
      throw new LadingError('UNSUPPORTED_TREE', `hardlink /${e.path} points to ${e.linkTarget ?? 'nothing'}, which is not in the tree`);
    }
    out.push(dumpLine(tree, e, target, links));
  }
  return out.join('');
}

function dumpLine(tree: FileTree, e: Entry, t: Entry, links: Map<string, number>): string {
  const type = t.type as Exclude<EntryType, 'hardlink'>;
  const enc = (s: string) => Buffer.from(s, 'utf8');
  const size = type === 'symlink' ? Buffer.byteLength(t.linkTarget ?? '') : t.size;
  const nlink = t.nlink ?? (type === 'directory' ? 2 + subdirs(tree, t.path) : 1 + (links.get(t.path) ?? 0));
  const rdev = type === 'char' || type === 'block' ? (t.rdev ?? 0) : 0;
  let payload: string | undefined;
  if (e.type === 'hardlink') payload = `/${t.path}`;
  else if (type === 'symlink') payload = t.linkTarget;
  else if (type === 'file')
    payload = t.payload ?? (t.content?.kind !== 'bytes' && t.size > 0 && t.verity ? objectPath(t.verity) : undefined);
  const inline = type === 'file' && t.content?.kind === 'bytes' && t.size > 0 ? t.content.data : undefined;
  const fields = [
    escape(enc(e.path === '' ? '/' : `/${e.path}`)),
    String(size),
    `${e.type === 'hardlink' ? '@' : ''}${(TYPE_BITS[type] | t.mode).toString(8)}`,
    String(nlink),
    String(t.uid),
    String(t.gid),
    String(rdev),
    `${t.mtime}.${t.mtimeNsec}`,
    payload ? escape(enc(payload), { loneDash: true }) : '-',
    inline ? escape(inline, { loneDash: true }) : '-',
    t.verity ?? '-',
  ];
  for (const [k, v] of t.xattrs) fields.push(`${escape(enc(k), { equal: true })}=${escape(v, { equal: true })}`);
  return `${fields.join(' ')}\n`;
}

function subdirs(tree: FileTree, path: string): number {
  let n = 0;
  for (const name of tree.children(path) ?? []) if (tree.get(path === '' ? name : `${path}/${name}`)?.type === 'directory') n++;
  return n;
}
